"""Shared fixtures: one embedded MongoDB (nx-27017) per test session, a fresh database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pymongo import MongoClient
from pymongo.database import Database

from core.embedded_mongo import EmbeddedMongo


@pytest.fixture(scope="session")
def embedded_mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMongo]:
    server = EmbeddedMongo(Path(tmp_path_factory.mktemp("mongo")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo_client(embedded_mongo: EmbeddedMongo) -> Iterator[MongoClient[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(embedded_mongo.uri, tz_aware=True)
    yield client
    client.close()


@pytest.fixture()
def mongo_db(mongo_client: MongoClient[dict[str, Any]]) -> Database[dict[str, Any]]:
    return mongo_client[f"t_{uuid.uuid4().hex[:12]}"]


# Dates the clock-owning tests run at: the simulated market is a pure function of time, so each date is a different
# but reproducible market, and a test that passes at all of them does not depend on the day it runs.
FIXED_DATES = ("2024-02-29T13:00:00+00:00", "2025-07-15T03:30:00+00:00", "2026-12-04T15:00:00+00:00")


@pytest.fixture(params=FIXED_DATES)
def fixed_clock(request: pytest.FixtureRequest) -> Iterator[int]:
    """Process-wide clock that starts at a fixed date and ticks with real time (timers and expiries still run)."""
    from datetime import datetime

    from core.clock import ticking_from, use_clock

    start = int(datetime.fromisoformat(request.param).timestamp() * 1000)
    with use_clock(ticking_from(start)):
        yield start


@pytest.fixture()
def one_date_clock() -> Iterator[int]:
    """The first of FIXED_DATES, for tests that read the simulated market but are not about dates."""
    from datetime import datetime

    from core.clock import ticking_from, use_clock

    start = int(datetime.fromisoformat(FIXED_DATES[0]).timestamp() * 1000)
    with use_clock(ticking_from(start)):
        yield start


@pytest.fixture()
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded_mongo: EmbeddedMongo) -> Iterator[Path]:
    """Settings pointing at a temp data dir and the session's embedded Mongo, with a fresh database name."""
    from core import settings as settings_mod
    from core import storage

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MONGO_URI", embedded_mongo.uri)
    monkeypatch.setenv("MONGO_DB", f"t_{uuid.uuid4().hex[:12]}")
    monkeypatch.delenv("LLM_API_KEY", raising=False)
    settings_mod.reset_settings()
    storage.close()
    _reset_singletons()
    yield tmp_path / "data"
    _reset_singletons()
    storage.close()
    settings_mod.reset_settings()


def _reset_singletons() -> None:
    """Process-wide services hold a database handle: never let one outlive the test that built it."""
    from knowledge.service import set_service
    from trading.oms.factory import set_trading_service

    set_trading_service(None)
    set_service(None)
