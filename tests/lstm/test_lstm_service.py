"""Train + register + forecast: every forecast carries the measured skill and says plainly when it has none."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database

from models.lstm.charts import forecast_chart_png
from models.lstm.data import DataError
from models.lstm.jobs import retrain_job
from models.lstm.registry import ModelRegistry
from models.lstm.service import (
    ForecastError,
    ForecastStore,
    NoModelError,
    load_engine,
    make_forecast,
    skill_verdict,
    train_and_register,
)
from tests.lstm.conftest import HOUR_MS, synthetic_candles, tiny_config

pytestmark = pytest.mark.slow


def test_train_register_and_forecast_with_skill(mongo_db: Database[dict[str, Any]], tmp_path: Path) -> None:
    candles = synthetic_candles(900, seed=31)
    reg = ModelRegistry(mongo_db, tmp_path)
    outcome = train_and_register(candles, symbol="BTC/USDT", timeframe="1h", registry=reg, config=tiny_config(epochs=1))
    summary = outcome.to_dict()
    # a random walk: no skill to find, and the status says so (never a blanket "good")
    assert summary["model"]["status"] in ("no_skill_calibrated", "no_skill_miscalibrated")
    assert summary["skill"]["h"] == 4 and summary["skill_h1"]["h"] == 1
    assert len(summary["walk_forward"]["folds"]) == 2
    meta = outcome.record.metadata
    assert meta["data_range"]["n_candles"] == 900 and len(meta["data_hash"]) == 64

    record, engine = load_engine(reg, "BTC/USDT", "1h")
    now = datetime.fromtimestamp((int(candles["timestamp_ms"].iloc[-1]) + HOUR_MS) / 1000, UTC)
    fc = make_forecast(engine, record, candles, horizon=3, now=now)
    assert fc["horizon"] == 3 and len(fc["path"]) == 3 and not fc["stale"]
    for p in fc["path"]:
        assert p["lower"] <= p["price"] <= p["upper"]
    assert fc["path"][0]["timestamp_ms"] == int(candles["timestamp_ms"].iloc[-1]) + HOUR_MS
    assert fc["skill"]["h"] == 3
    # a random walk has no skill to find: the verdict must say so plainly
    assert fc["beats_random_walk"] is False
    assert "does NOT beat a random walk" in fc["verdict"]
    png = forecast_chart_png(candles, fc)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    with pytest.raises(ForecastError, match=r"1\.\.4"):
        make_forecast(engine, record, candles, horizon=24)
    with pytest.raises(NoModelError, match="crypto-agent train"):
        load_engine(reg, "ETH/USDT", "1h")

    store = ForecastStore(mongo_db)
    store.save(fc)
    latest = store.latest_per_symbol(["BTC/USDT", "ETH/USDT"])
    assert latest["ETH/USDT"] is None
    assert latest["BTC/USDT"] is not None and latest["BTC/USDT"]["model_id"] == record.model_id


def test_verdicts() -> None:
    assert "unknown" in skill_verdict(None)
    good = {"h": 1, "rmse_ratio_rw": 0.9, "dm_p": 0.001, "dir_acc": 0.6, "beats_random_walk": True}
    assert "beat the random walk" in skill_verdict(good, "1h")
    bad = {**good, "rmse_ratio_rw": 1.01, "dm_p": 0.4, "beats_random_walk": False}
    assert "does NOT beat a random walk" in skill_verdict(bad, "1h")


def test_retrain_job_reports_each_symbol(mongo_db: Database[dict[str, Any]], tmp_path: Path) -> None:
    def loader(symbol: str, timeframe: str) -> Any:
        if symbol == "BAD/USDT":
            raise DataError("no candles for BAD/USDT")
        return synthetic_candles(600, seed=41)

    results = retrain_job(
        ["BTC/USDT", "BAD/USDT"],
        "1h",
        db=mongo_db,
        root=tmp_path,
        config=tiny_config(epochs=1, folds=1),
        candle_loader=loader,
    )
    assert [r["ok"] for r in results] == [True, False]
    assert "no candles" in results[1]["error"]
    assert ModelRegistry(mongo_db, tmp_path).latest("BTC/USDT", "1h") is not None
    assert "verdict" in results[0]
