"""Briefings: now, scheduled per channel, surviving a restart, and fired by the scheduler after downtime."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from agent.scheduler.service import JOBS_COLLECTION, _SharedClientJobStore
from tests.slack.conftest import SlackDesk, blocks_text

PNG = b"\x89PNG\r\n\x1a\n"


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _uploaded_png(desk: SlackDesk, channel: str) -> bytes:
    done = desk.slack.wait_for("files.completeUploadExternal", predicate=lambda p: p.get("channel_id") == channel)
    file_id = done[-1]["files"][0]["id"]
    return desk.slack.uploads[file_id]


def test_briefing_now_posts_prices_sections_and_chart(slack_desk: Any, fake_exchange: Any) -> None:
    fake_exchange.set_price("BTC/USDT", 61_000.0)
    fake_exchange.set_price("ETH/USDT", 3_100.0)
    desk: SlackDesk = slack_desk()
    desk.attach_trading()
    ack = desk.command("/briefing", "now BTC/USDT,ETH/USDT")
    assert ack.json()["response_type"] == "ephemeral" and "Preparing a briefing" in ack.json()["text"]
    [msg] = desk.slack.wait_for("chat.postMessage", predicate=lambda p: "Market briefing" in blocks_text(p))
    text = blocks_text(msg)
    assert msg["channel"] == "C1"
    for expected in ("BTC/USDT", "61,000.00", "ETH/USDT", "3,100.00", "*Risk*", "Desk *active*", "*Positions*"):
        assert expected in text, (expected, text)
    assert "forecast" in text  # the forecast line, or the note saying why it is missing
    png = _uploaded_png(desk, "C1")
    assert png.startswith(PNG) and len(png) > 5_000
    complete = desk.slack.calls_of("files.completeUploadExternal")[-1]
    assert complete["thread_ts"] == msg.get("ts") or complete.get("thread_ts")


def test_briefing_usage_and_cancel(slack_desk: Any) -> None:
    desk: SlackDesk = slack_desk()
    bad = desk.command("/briefing", "schedule sometimes #markets")
    assert bad.json()["response_type"] == "ephemeral" and "unknown cadence" in bad.json()["text"]
    assert "Usage:" in bad.json()["text"]
    assert "No scheduled briefings" in desk.command("/briefing", "list").json()["text"]
    made = desk.command("/briefing", "schedule weekdays 07:30 Europe/London <#C7|desk> SOL/USDT").json()["text"]
    sid = re.search(r"`(b[0-9a-f]{6})`", made).group(1)
    db = desk.app.state.db
    _wait(lambda: db[JOBS_COLLECTION].count_documents({"_id": f"briefing:{sid}"}) == 1)
    listing = desk.command("/briefing", "list").json()["text"]
    assert sid in listing and "weekdays 07:30 Europe/London" in listing and "#desk" in listing and "SOL/USDT" in listing
    assert "next " in listing
    assert "Cancelled" in desk.command("/briefing", f"cancel {sid}").json()["text"]
    _wait(lambda: db[JOBS_COLLECTION].count_documents({"_id": f"briefing:{sid}"}) == 0)
    assert "No schedule" in desk.command("/briefing", f"cancel {sid}").json()["text"]


def test_schedule_survives_restart_and_fires_after_downtime(slack_desk: Any, fake_exchange: Any,
                                                            mongo_client: Any) -> None:
    fake_exchange.set_price("BTC/USDT", 62_500.0)
    first: SlackDesk = slack_desk()
    made = first.command("/briefing", "schedule daily 08:00 UTC <#C9|markets> BTC/USDT,ETH/USDT").json()["text"]
    sid = re.search(r"`(b[0-9a-f]{6})`", made).group(1)
    job_id = f"briefing:{sid}"
    db = first.app.state.db
    _wait(lambda: db[JOBS_COLLECTION].count_documents({"_id": job_id}) == 1)
    assert first.app.state.scheduler.is_leader
    first.client.__exit__(None, None, None)  # process stops (its Mongo client closes); the lock is released
    db = mongo_client[db.name]
    assert db["scheduler_locks"].count_documents({}) == 0

    # While the desk was down, 08:00 passed: the stored next run time is now 10 minutes in the past.
    # (Edited in the job store itself: a scheduler, even paused, may process due jobs while shutting down.)
    store = _SharedClientJobStore(database=db.name, collection=JOBS_COLLECTION, client=db.client)
    store.start(BackgroundScheduler(timezone="UTC"), "default")  # never started: only lends its time zone
    job = store.lookup_job(job_id)
    job._modify(next_run_time=datetime.now(UTC) - timedelta(minutes=10))
    store.update_job(job)
    assert not [c for c in first.slack.calls_of("chat.postMessage") if c.get("channel") == "C9"]

    second: SlackDesk = slack_desk()  # same database: schedules and jobs come back
    listing = second.command("/briefing", "list").json()["text"]
    assert sid in listing and "daily 08:00 UTC" in listing and "#markets" in listing
    [msg] = second.slack.wait_for("chat.postMessage", predicate=lambda p: p.get("channel") == "C9")
    assert "62,500.00" in blocks_text(msg) and "ETH/USDT" in blocks_text(msg)
    assert _uploaded_png(second, "C9").startswith(PNG)
    _wait(lambda: (db["briefing_schedules"].find_one({"_id": sid}) or {}).get("last_status") == "ok")
    # after the catch-up run the job is due again at the next 08:00 UTC, not again now
    _wait(lambda: second.app.state.scheduler.next_run(job_id) is not None
          and second.app.state.scheduler.next_run(job_id) > datetime.now(UTC))
    nxt = second.app.state.scheduler.next_run(job_id).astimezone(UTC)
    assert (nxt.hour, nxt.minute) == (8, 0)
    audit = list(db["audit_log"].find({"action": "slack.briefing.scheduled"}))
    assert len(audit) == 1 and audit[0]["details"]["schedule_id"] == sid
