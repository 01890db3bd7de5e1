"""`DeskScheduler`: APScheduler 3 (asyncio) on the MongoDB job store, run only by the leader of the deployment.

- Job owners declare jobs as `JobSpec`s through job sources (callables). The leader adds what is missing, replaces
  a job whose cadence changed and removes jobs no source declares any more; it does this on start and on every
  lock renewal, so a schedule written by another instance (a Slack command that reached a follower) is picked up.
- A job that was already in the store keeps its stored next run time, so after downtime a missed run fires once
  (coalesced) if it is within `misfire_grace_s`; older misses are skipped.
- Followers retry the lock every renewal period and start the scheduler when they win it; a leader that cannot
  renew stops its scheduler at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apscheduler.jobstores.mongodb import MongoDBJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pymongo.database import Database
from pymongo.errors import PyMongoError

from agent.scheduler.cadence import Cadence
from agent.scheduler.jobs import JOB_FUNC
from agent.scheduler.lock import LeaderLock
from core.clock import utcnow

log = logging.getLogger(__name__)
Doc = dict[str, Any]
JOBS_COLLECTION = "scheduler_jobs"


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: `run_job(kind, key)` on `cadence`. `id` is stable (e.g. `briefing:<schedule id>`)."""

    id: str
    kind: str
    key: str
    cadence: Cadence
    name: str = ""

    @property
    def fingerprint(self) -> str:
        return f"{self.kind}|{self.key}|{self.cadence.fingerprint()}"


JobSource = Callable[[], Iterable[JobSpec]]


class _SharedClientJobStore(MongoDBJobStore):  # type: ignore[misc]
    """MongoDBJobStore whose `shutdown` leaves the shared MongoClient open (the stock one closes it)."""

    def shutdown(self) -> None:
        return None


@dataclass
class SchedulerStatus:
    leader: bool
    owner: str
    holder: str | None
    jobs: list[Doc] = field(default_factory=list)

    def to_dict(self) -> Doc:
        return {"leader": self.leader, "owner": self.owner, "holder": self.holder, "jobs": self.jobs}


class DeskScheduler:
    def __init__(
        self,
        db: Database[Doc],
        *,
        lock_ttl_s: float = 30.0,
        misfire_grace_s: int = 3600,
        owner: str | None = None,
        sources: Iterable[JobSource] = (),
    ) -> None:
        self.db = db
        self.lock = LeaderLock(db, "scheduler", ttl_s=lock_ttl_s, owner=owner)
        self.misfire_grace_s = misfire_grace_s
        self.renew_every_s = max(0.05, lock_ttl_s / 3.0)
        self._sources: list[JobSource] = list(sources)
        self._scheduler: AsyncIOScheduler | None = None
        self._task: asyncio.Task[None] | None = None
        self._sync_lock = asyncio.Lock()

    # ------------------------------------------------------------------ sources
    def add_source(self, source: JobSource) -> None:
        self._sources.append(source)

    def desired(self) -> dict[str, JobSpec]:
        out: dict[str, JobSpec] = {}
        for source in self._sources:
            try:
                for spec in source():
                    out[spec.id] = spec
            except Exception:  # a broken source aborts this sync, so no job is removed by mistake
                log.exception("job source failed; job store left as it is")
                raise
        return out

    # ------------------------------------------------------------------ lifecycle
    @property
    def is_leader(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    async def start(self) -> None:
        """Try to lead now (so a single instance is scheduling when start returns), then keep trying/renewing."""
        await self._tick()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="desk-scheduler-leader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._stop_scheduler()
        try:
            await asyncio.to_thread(self.lock.release)
        except PyMongoError as exc:  # shutdown must finish: the lease expires on its own and another leader takes over
            log.warning("scheduler lock not released (%s); it expires in %.0f s", exc, self.lock.ttl_ms / 1000)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.renew_every_s)
            try:
                await self._tick()
            except Exception:  # keep electing; Mongo may be briefly unreachable
                log.exception("scheduler leader tick failed")

    async def _tick(self) -> None:
        held = await asyncio.to_thread(self.lock.try_acquire)
        if not held:
            if self._scheduler is not None:
                holder = (self.lock.holder() or {}).get("owner")
                log.warning("scheduler lock lost to %s; stopping the scheduler", holder)
                self._stop_scheduler()
            return
        if self._scheduler is None:
            self._start_scheduler()
        await self.sync()

    def _start_scheduler(self) -> None:
        store = _SharedClientJobStore(database=self.db.name, collection=JOBS_COLLECTION, client=self.db.client)
        scheduler = AsyncIOScheduler(
            jobstores={"default": store},
            job_defaults={"coalesce": True, "misfire_grace_time": self.misfire_grace_s, "max_instances": 1},
            timezone="UTC",
        )
        scheduler.start()
        self._scheduler = scheduler
        log.info("scheduler started as leader %s", self.lock.owner)

    def _stop_scheduler(self) -> None:
        if self._scheduler is not None:
            with contextlib.suppress(Exception):
                self._scheduler.shutdown(wait=False)
            self._scheduler = None

    # ------------------------------------------------------------------ jobs
    async def sync(self) -> None:
        """Make the job store match the declared jobs (leader only)."""
        if self._scheduler is None:
            return
        async with self._sync_lock:
            desired = self.desired()
            scheduler = self._scheduler
            existing = {job.id: job for job in scheduler.get_jobs()}
            for job_id in existing:
                if job_id not in desired:
                    scheduler.remove_job(job_id)
                    log.info("scheduler: removed %s", job_id)
            for job_id, spec in desired.items():
                job = existing.get(job_id)
                if job is not None and job.kwargs.get("fingerprint") == spec.fingerprint:
                    continue  # keep its stored next run time (misfire grace after downtime)
                scheduler.add_job(
                    JOB_FUNC,
                    trigger=spec.cadence.trigger(),
                    id=job_id,
                    name=spec.name or job_id,
                    kwargs={"kind": spec.kind, "key": spec.key, "fingerprint": spec.fingerprint},
                    replace_existing=True,
                )
                log.info("scheduler: %s %s (%s)", "replaced" if job else "added", job_id, spec.cadence.text)

    def jobs(self) -> list[Doc]:
        if self._scheduler is None:
            return []
        return [
            {
                "id": job.id,
                "name": job.name,
                "next_run_time": job.next_run_time.isoformat() if job.next_run_time else None,
                "kind": job.kwargs.get("kind"),
            }
            for job in self._scheduler.get_jobs()
        ]

    def next_run(self, job_id: str) -> datetime | None:
        if self._scheduler is None:
            return None
        job = self._scheduler.get_job(job_id)
        return None if job is None else job.next_run_time

    def fire_now(self, job_id: str) -> bool:
        """Move a job's next run to now: the scheduler runs it on its next wake-up (leader only)."""
        if self._scheduler is None or self._scheduler.get_job(job_id) is None:
            return False
        self._scheduler.modify_job(job_id, next_run_time=utcnow())
        self._scheduler.wakeup()
        return True

    def status(self) -> SchedulerStatus:
        holder = self.lock.holder()
        return SchedulerStatus(self.is_leader, self.lock.owner, holder.get("owner") if holder else None, self.jobs())
