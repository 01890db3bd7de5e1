"""Model registry: versioned artifacts on disk with metadata in Mongo; the newest good model wins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymongo.database import Database

from models.lstm.data import prepare
from models.lstm.engine import LSTMEngine
from models.lstm.registry import ModelRegistry, code_version
from models.lstm.train import fit
from tests.lstm.conftest import synthetic_candles, tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine() -> LSTMEngine:
    cfg = tiny_config(epochs=1)
    prep = prepare(synthetic_candles(400), cfg)
    eng, _ = fit(prep, cfg, 0, 400)
    return eng


def _meta(n: int) -> dict[str, Any]:
    return {"data_range": {"from_ms": 0, "to_ms": n}, "data_hash": f"h{n}", "metrics": {"summary": {"h": 4}}}


def test_register_versions_and_load_newest_good(
    engine: LSTMEngine, mongo_db: Database[dict[str, Any]], tmp_path: Path
) -> None:
    reg = ModelRegistry(mongo_db, tmp_path / "models")
    assert reg.latest("BTC/USDT", "1h") is None
    r1 = reg.register(engine, symbol="BTC/USDT", timeframe="1h", metadata=_meta(1))
    r2 = reg.register(engine, symbol="BTC/USDT", timeframe="1h", metadata=_meta(2))
    other = reg.register(engine, symbol="ETH/USDT", timeframe="1h", metadata=_meta(3))
    assert (r1.version, r2.version, other.version) == (1, 2, 1)
    latest = reg.latest("BTC/USDT", "1h")
    assert latest is not None and latest.model_id == r2.model_id
    # artifacts on disk: model, scaler, engine config/calibration, metadata
    for name in ("model.keras", "scaler.json", "engine.json", "meta.json"):
        assert (r2.path / name).is_file()
    doc = mongo_db["lstm_models"].find_one({"model_id": r2.model_id})
    assert doc is not None
    meta = doc["metadata"]
    assert meta["symbol"] == "BTC/USDT" and meta["timeframe"] == "1h"
    assert meta["data_hash"] == "h2" and meta["data_range"]["to_ms"] == 2
    assert meta["code_version"] == code_version() and "+src." in meta["code_version"]
    assert meta["config"]["units"] == engine.config.units and meta["metrics"]["summary"]["h"] == 4

    # a rejected newest model is skipped; the previous good one is served
    assert reg.set_status(r2.model_id, "rejected")
    latest = reg.latest("BTC/USDT", "1h")
    assert latest is not None and latest.version == 1
    # a rejected registration never becomes "latest"
    reg.register(engine, symbol="BTC/USDT", timeframe="1h", metadata=_meta(4), status="rejected")
    latest = reg.latest("BTC/USDT", "1h")
    assert latest is not None and latest.version == 1
    assert [r.version for r in reg.list("BTC/USDT", "1h")] == [3, 2, 1]


def test_loaded_model_from_registry_predicts_like_the_original(
    engine: LSTMEngine, mongo_db: Database[dict[str, Any]], tmp_path: Path
) -> None:
    reg = ModelRegistry(mongo_db, tmp_path / "models")
    reg.register(engine, symbol="BTC/USDT", timeframe="1h", metadata=_meta(1))
    found = reg.load_latest("BTC/USDT", "1h")
    assert found is not None
    _, loaded = found
    prep = prepare(synthetic_candles(300, seed=4), engine.config)
    origins = prep.origins_with_targets(200, 300)
    np.testing.assert_allclose(
        loaded.predict_origins(prep, origins).mu, engine.predict_origins(prep, origins).mu, rtol=1e-5, atol=1e-7
    )


def test_version_numbers_skip_leftover_directories(
    engine: LSTMEngine, mongo_db: Database[dict[str, Any]], tmp_path: Path
) -> None:
    reg = ModelRegistry(mongo_db, tmp_path / "models")
    (tmp_path / "models" / "BTC-USDT" / "1h" / "v0001").mkdir(parents=True)  # crash leftover without a document
    rec = reg.register(engine, symbol="BTC/USDT", timeframe="1h", metadata=_meta(1))
    assert rec.version == 2
    assert not any((tmp_path / "models" / ".staging").iterdir())
    with pytest.raises(ValueError, match="status"):
        reg.set_status(rec.model_id, "great")
