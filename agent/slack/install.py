"""Wiring into the FastAPI app: start/stop the scheduler (leader-elected) and the approval-card sweep.

`agent.slack.routes` is listed in `agent.api.ROUTER_MODULES`; the app calls its `install(app)`, which appends the
async startup/shutdown hooks below. The trading service is looked up lazily on every use, from
`app.state.trading` (or `desk.trading`), so whoever builds it can attach it at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from agent.scheduler import jobs as job_registry
from agent.scheduler.service import DeskScheduler
from agent.scheduler.system import system_jobs
from agent.slack.app import bundle_of

if TYPE_CHECKING:
    from trading.oms.service import TradingService

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 10.0  # approval expiry and card refresh
LOCK_TTL_S = 30.0
MISFIRE_GRACE_S = 3600


def trading_of(app: FastAPI) -> TradingService | None:
    """The app's service (`app.state.trading`, as the HTTP trading routes use), else the process-wide one from
    trading.oms.factory (built on first use, then kept on app.state). Blocking: call it off the event loop."""
    svc = getattr(app.state, "trading", None)
    if svc is not None:
        return svc  # type: ignore[no-any-return]
    from trading.oms.factory import get_trading_service

    svc = get_trading_service(app.state.settings, app.state.db)
    app.state.trading = svc
    return svc


async def startup(app: FastAPI) -> None:
    settings = app.state.settings
    db = app.state.db
    scheduler = DeskScheduler(db, lock_ttl_s=LOCK_TTL_S, misfire_grace_s=MISFIRE_GRACE_S)
    handlers: list[tuple[str, Any]] = []
    sys_jobs = system_jobs(settings, db)
    scheduler.add_source(lambda: [j.spec for j in sys_jobs])
    for job in sys_jobs:
        handlers.append((job.spec.kind, job.handler))
    bundle = bundle_of(getattr(app.state, "slack", None))
    sweep: asyncio.Task[None] | None = None
    if bundle is not None:
        bundle.runtime.trading_provider = lambda: trading_of(app)
        bundle.runtime.scheduler = scheduler
        scheduler.add_source(bundle.briefings.store.job_specs)
        handlers.append(("briefing", bundle.briefings.run_schedule))
        sweep = asyncio.create_task(bundle.approvals.sweep_forever(SWEEP_INTERVAL_S), name="slack-approval-sweep")
    for kind, handler in handlers:
        job_registry.register_handler(kind, handler)
    app.state.scheduler = scheduler
    app.state.slack_hooks = {"handlers": handlers, "sweep": sweep}
    if getattr(settings, "scheduler_enabled", True):
        await scheduler.start()


async def shutdown(app: FastAPI) -> None:
    hooks = getattr(app.state, "slack_hooks", None) or {}
    sweep = hooks.get("sweep")
    if sweep is not None:
        sweep.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sweep
    scheduler: DeskScheduler | None = getattr(app.state, "scheduler", None)
    if scheduler is not None:
        await scheduler.stop()
    for kind, handler in hooks.get("handlers", []):
        job_registry.unregister_handler(kind, handler)
    bundle = bundle_of(getattr(app.state, "slack", None))
    if bundle is not None:
        await bundle.runtime.shutdown()


def install(app: FastAPI) -> None:
    app.state.startup_hooks.append(startup)
    app.state.shutdown_hooks.append(shutdown)
