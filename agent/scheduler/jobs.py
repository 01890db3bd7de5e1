"""Job entry points referenced by text from the job store (`agent.scheduler.jobs:run_job`).

A stored job names a `kind` and a `key`; the process that runs the scheduler registers one async handler per kind
(Slack registers `briefing`; the app registers `retrain` and `ingest_news` when those packages are installed).
A job whose kind has no handler in this process is logged and skipped, never crashes the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

JobHandler = Callable[[str], Awaitable[object]]

_HANDLERS: dict[str, JobHandler] = {}

JOB_FUNC = "agent.scheduler.jobs:run_job"


def register_handler(kind: str, handler: JobHandler) -> None:
    _HANDLERS[kind] = handler


def unregister_handler(kind: str, handler: JobHandler | None = None) -> None:
    if handler is None or _HANDLERS.get(kind) is handler:
        _HANDLERS.pop(kind, None)


def handler_for(kind: str) -> JobHandler | None:
    return _HANDLERS.get(kind)


async def run_job(kind: str, key: str, **_meta: object) -> object:
    handler = _HANDLERS.get(kind)
    if handler is None:
        log.warning("scheduled job %s/%s skipped: no handler for %r in this process", kind, key, kind)
        return None
    try:
        return await handler(key)
    except Exception:  # a failing job is logged; the scheduler and the other jobs go on
        log.exception("scheduled job %s/%s failed", kind, key)
        return None
