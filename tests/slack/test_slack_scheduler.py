"""Scheduler pieces: the Mongo leader lock, leader failover between two schedulers, cadence parsing, job sync."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.scheduler import jobs as job_registry
from agent.scheduler.cadence import CadenceError, parse_cadence
from agent.scheduler.lock import LeaderLock
from agent.scheduler.service import JOBS_COLLECTION, DeskScheduler, JobSpec


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def test_leader_lock_is_exclusive_until_it_expires(mongo_db: Any) -> None:
    clock = Clock()
    a = LeaderLock(mongo_db, ttl_s=30, owner="a", clock=clock)
    b = LeaderLock(mongo_db, ttl_s=30, owner="b", clock=clock)
    assert a.try_acquire() and not b.try_acquire()
    clock.ms += 20_000
    assert a.renew() and not b.try_acquire()  # renewed: expiry moved to +50 s
    clock.ms += 29_000
    assert not b.try_acquire()
    clock.ms += 2_000  # a stopped renewing and its lock ran out
    assert b.try_acquire() and not a.renew()
    assert b.holder()["owner"] == "b"
    assert not a.release() and b.release()
    assert a.try_acquire()


def test_cadences() -> None:
    daily, rest = parse_cadence("daily 08:00 UTC #markets BTC/USDT".split())
    assert (daily.minute, daily.hour, daily.timezone, daily.text) == ("0", "8", "UTC", "daily 08:00 UTC")
    assert rest == ["#markets", "BTC/USDT"]
    fire = daily.trigger().get_next_fire_time(None, datetime(2030, 1, 1, 9, 0, tzinfo=UTC))
    assert fire == datetime(2030, 1, 2, 8, 0, tzinfo=UTC)
    weekdays, _ = parse_cadence("weekdays 07:30 Europe/London".split())
    assert weekdays.day_of_week == "mon-fri" and weekdays.timezone == "Europe/London"
    sat = datetime(2030, 1, 5, 12, 0, tzinfo=UTC)  # a Saturday
    assert weekdays.trigger().get_next_fire_time(None, sat).weekday() == 0
    assert parse_cadence(["weekly", "Fri", "17:00"])[0].day_of_week == "fri"
    assert parse_cadence(["hourly", ":15"])[0].minute == "15"
    assert parse_cadence("cron 0 */4 * * *".split())[0].hour == "*/4"
    for bad in ("daily", "daily 25:00", "weekly 09:00", "sometimes 08:00", "cron 0 * *", "cron 99 * * * *"):
        with pytest.raises(CadenceError):
            parse_cadence(bad.split())


async def test_one_leader_runs_jobs_and_a_follower_takes_over(mongo_db: Any) -> None:
    ran: list[str] = []

    async def handler(key: str) -> None:
        ran.append(key)

    job_registry.register_handler("probe", handler)
    daily, _ = parse_cadence("daily 03:00 UTC".split())
    specs = [JobSpec("probe:x", "probe", "x", daily)]
    a = DeskScheduler(mongo_db, lock_ttl_s=0.6, owner="a", sources=[lambda: specs])
    b = DeskScheduler(mongo_db, lock_ttl_s=0.6, owner="b", sources=[lambda: specs])
    try:
        await a.start()
        await b.start()
        assert a.is_leader and not b.is_leader
        assert [j["id"] for j in a.jobs()] == ["probe:x"] and b.jobs() == []
        assert mongo_db[JOBS_COLLECTION].count_documents({}) == 1
        assert a.fire_now("probe:x") and not b.fire_now("probe:x")
        for _ in range(100):
            if ran:
                break
            await asyncio.sleep(0.02)
        assert ran == ["x"]
        await a.stop()  # the leader goes away; the follower wins the lock on its next renewal tick
        for _ in range(100):
            if b.is_leader:
                break
            await asyncio.sleep(0.02)
        assert b.is_leader and [j["id"] for j in b.jobs()] == ["probe:x"]
        assert mongo_db[JOBS_COLLECTION].count_documents({}) == 1
        specs.clear()  # the declared job goes away: the leader removes it from the store
        await b.sync()
        assert mongo_db[JOBS_COLLECTION].count_documents({}) == 0
    finally:
        await a.stop()
        await b.stop()
        job_registry.unregister_handler("probe", handler)


async def test_unknown_job_kind_is_skipped_not_fatal() -> None:
    assert await job_registry.run_job("nobody-handles-this", "k") is None


async def test_misfire_older_than_the_grace_is_skipped_a_recent_one_runs(mongo_db: Any) -> None:
    from datetime import timedelta

    from apscheduler.schedulers.background import BackgroundScheduler

    from agent.scheduler.service import _SharedClientJobStore

    ran: list[str] = []

    async def handler(key: str) -> None:
        ran.append(key)

    job_registry.register_handler("probe", handler)
    daily, _ = parse_cadence("daily 03:00 UTC".split())
    specs = [JobSpec("probe:old", "probe", "old", daily), JobSpec("probe:recent", "probe", "recent", daily)]
    first = DeskScheduler(mongo_db, lock_ttl_s=0.6, owner="first", misfire_grace_s=60, sources=[lambda: specs])
    second = DeskScheduler(mongo_db, lock_ttl_s=0.6, owner="second", misfire_grace_s=60, sources=[lambda: specs])
    try:
        await first.start()
        assert {j["id"] for j in first.jobs()} == {"probe:old", "probe:recent"}
        await first.stop()  # downtime: the stored next run times pass while nobody leads
        store = _SharedClientJobStore(database=mongo_db.name, collection=JOBS_COLLECTION, client=mongo_db.client)
        store.start(BackgroundScheduler(timezone="UTC"), "default")  # never started: only lends its time zone
        now = datetime.now(UTC)
        for job_id, missed_by in (("probe:old", timedelta(minutes=10)), ("probe:recent", timedelta(seconds=10))):
            job = store.lookup_job(job_id)
            job._modify(next_run_time=now - missed_by)
            store.update_job(job)
        await second.start()
        for _ in range(150):
            if ran:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # time for a wrongly late run of the old one to show
        assert ran == ["recent"], "within the grace: run once; older than the grace: skipped"
        for job_id in ("probe:old", "probe:recent"):
            nxt = second.next_run(job_id)
            assert nxt is not None and nxt > datetime.now(UTC)  # both due again at the next 03:00
            assert (nxt.astimezone(UTC).hour, nxt.minute) == (3, 0)
    finally:
        await first.stop()
        await second.stop()
        job_registry.unregister_handler("probe", handler)
