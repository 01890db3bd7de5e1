"""The desk's own recurring jobs: LSTM retraining (models.lstm.jobs.retrain_job), the LSTM interval's online update
(models.lstm.jobs.update_intervals_job, `interval_update_schedule`) and news ingestion
(`ingest_job` in knowledge, when that package provides one). Each is registered only if its code is installed;
cadences come from settings when present (`retrain_schedule`, `news_ingest_schedule`, e.g. "daily 02:00 UTC";
"off" disables), else the defaults below.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pymongo.database import Database

from agent.scheduler.cadence import Cadence, CadenceError, parse_cadence
from agent.scheduler.jobs import JobHandler
from agent.scheduler.service import JobSpec
from core.settings import Settings

log = logging.getLogger(__name__)
Doc = dict[str, Any]

DEFAULT_RETRAIN = "daily 02:00 UTC"
DEFAULT_INGEST = "hourly :05"
DEFAULT_INTERVAL_UPDATE = "hourly :01"  # just after each hourly candle closes
INGEST_MODULES = ("knowledge.jobs", "knowledge.ingest", "knowledge.pipeline", "knowledge.service")


@dataclass(frozen=True)
class SystemJob:
    spec: JobSpec
    handler: JobHandler


def _cadence(settings: Settings, name: str, default: str) -> Cadence | None:
    text = str(getattr(settings, name, None) or default).strip()
    if text.lower() in ("off", "none", "disabled", "false", "0"):
        return None
    try:
        cadence, _ = parse_cadence(text.split())
    except CadenceError as exc:
        log.error("setting %s=%r is not a schedule (%s); using %s", name, text, exc, default)
        cadence, _ = parse_cadence(default.split())
    return cadence


def _call_with(fn: Callable[..., Any], available: Doc) -> Any:
    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in available.items() if k in params}
    return fn(**kwargs)


def _find_ingest() -> Callable[..., Any] | None:
    for name in INGEST_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        fn = getattr(module, "ingest_job", None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


def _per_symbol_job(
    settings: Settings,
    db: Database[Doc],
    fn: Callable[..., Any],
    report: Callable[[Any], None] | None = None,
) -> JobHandler:
    """A scheduler handler that runs `fn(symbols, db=db)` off the event loop; the key 'all' means SYMBOLS."""

    async def run(key: str) -> object:
        symbols = list(settings.symbols) if key == "all" else key.split(",")
        results = await asyncio.to_thread(fn, symbols, db=db)
        if report is not None:
            report(results)
        return results

    return run


def system_jobs(settings: Settings, db: Database[Doc]) -> list[SystemJob]:
    jobs: list[SystemJob] = []
    retrain_cadence = _cadence(settings, "retrain_schedule", DEFAULT_RETRAIN)
    interval_cadence = _cadence(settings, "interval_update_schedule", DEFAULT_INTERVAL_UPDATE)
    lstm_jobs: ModuleType | None = None
    if retrain_cadence is not None:
        try:
            from models.lstm import jobs as lstm_jobs
        except ImportError:
            lstm_jobs = None
    if retrain_cadence is not None and lstm_jobs is not None:
        retrain_fn = lstm_jobs.retrain_job

        def log_retrain(results: Any) -> None:
            log.info("retrain job: %s", [(r["symbol"], r["ok"]) for r in results])

        jobs.append(SystemJob(JobSpec("system:retrain", "retrain", "all", retrain_cadence, "LSTM retraining"),
                              _per_symbol_job(settings, db, retrain_fn, log_retrain)))
        # the interval's online update belongs to the LSTM models: off when their retraining is off
        if interval_cadence is not None:
            jobs.append(SystemJob(JobSpec("system:interval_update", "interval_update", "all", interval_cadence,
                                          "LSTM interval: learn from closed candles (adaptive conformal)"),
                                  _per_symbol_job(settings, db, lstm_jobs.update_intervals_job)))
    ingest_cadence = _cadence(settings, "news_ingest_schedule", DEFAULT_INGEST)
    ingest_fn = _find_ingest()
    if ingest_cadence is not None and ingest_fn is not None:
        fn = ingest_fn

        async def ingest(key: str) -> object:
            return await asyncio.to_thread(_call_with, fn, {"db": db, "settings": settings})

        jobs.append(SystemJob(JobSpec("system:ingest_news", "ingest_news", "all", ingest_cadence, "news ingestion"),
                              ingest))
    return jobs
