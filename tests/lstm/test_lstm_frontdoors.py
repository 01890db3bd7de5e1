"""Front doors: CLI `crypto-agent train` / `forecast`, tool `forecast_price`, POST /v1/forecasts, GET /predictions."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agent.cli import main
from tests.lstm.conftest import synthetic_candles

pytestmark = pytest.mark.slow

TINY = ["--window", "16", "--horizon", "4", "--layers", "1", "--units", "8", "--epochs", "1", "--folds", "1",
        "--test-size", "100", "--features", "range,volume"]


def _json_out(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # --json prints exactly one JSON object
    parsed: dict[str, Any] = json.loads(out[0])
    return parsed


@pytest.fixture(scope="module")
def trained_env(embedded_mongo: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One CLI training run shared by the module's front-door tests (settings point at a module data dir)."""
    from core import settings as settings_mod
    from core import storage

    tmp = tmp_path_factory.mktemp("lstm_frontdoors")
    csv = tmp / "btc.csv"
    synthetic_candles(800, seed=51).to_csv(csv, index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATA_DIR", str(tmp / "data"))
        mp.setenv("MONGO_URI", embedded_mongo.uri)
        mp.setenv("MONGO_DB", f"t_{uuid.uuid4().hex[:12]}")
        settings_mod.reset_settings()
        storage.close()
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(["train", "--symbol", "btc/usdt", "--timeframe", "1h", "--data", str(csv), "--json", *TINY])
        lines = buf.getvalue().strip().splitlines()
        assert len(lines) == 1, lines  # --json prints exactly one JSON object
        out = json.loads(lines[0])
        assert rc == 0, out
        assert out["ok"] and out["model"]["symbol"] == "BTC/USDT" and out["model"]["version"] == 1
        assert out["skill"]["h"] == 4 and "random walk" in out["verdict"]
        assert out["data"]["source"] == f"file:{csv}"
        assert (tmp / "data" / "models" / "lstm" / "BTC-USDT" / "1h" / "v0001" / "model.keras").is_file()
        yield csv
        storage.close()
        settings_mod.reset_settings()


@pytest.fixture()
def trained(trained_env: Path) -> Path:
    return trained_env


def test_cli_train_then_forecast(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "fc.png"
    rc = main(["forecast", "--symbol", "BTC/USDT", "--horizon", "4", "--data", str(trained), "--chart", str(chart),
               "--json"])
    out = _json_out(capsys)
    assert rc == 0 and out["ok"]
    assert len(out["path"]) == 4 and out["final"]["lower"] <= out["final"]["price"] <= out["final"]["upper"]
    assert out["skill"]["h"] == 4 and isinstance(out["beats_random_walk"], bool) and out["verdict"]
    assert chart.read_bytes()[:4] == b"\x89PNG"

    rc = main(["forecast", "--symbol", "BTC/USDT", "--horizon", "24", "--data", str(trained), "--json"])
    out = _json_out(capsys)
    assert rc == 2 and not out["ok"] and "1..4" in out["error"]  # bad input: exit 2

    rc = main(["forecast", "--symbol", "ETH/USDT", "--timeframe", "1h", "--data", str(trained)])
    assert rc == 1 and "no trained model" in capsys.readouterr().err  # the input is fine; there is no model

    rc = main(["forecast", "--symbol", "BTC/USDT", "--horizon", "2", "--data", str(trained)])
    text = capsys.readouterr().out
    assert rc == 0 and "80% interval" in text and "random walk" in text
    # the 1h model's candles claimed as 4h: refused before any forecast
    rc = main(["forecast", "--symbol", "BTC/USDT", "--timeframe", "4h", "--horizon", "2", "--data", str(trained)])
    assert rc == 2 and "1h apart" in capsys.readouterr().err


def test_cli_train_reports_bad_data(
    isolated_settings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "short.csv"
    synthetic_candles(30).to_csv(csv, index=False)
    rc = main(["train", "--symbol", "BTC/USDT", "--data", str(csv), "--json"])
    out = _json_out(capsys)
    assert rc == 2 and "too few" in out["error"]
    rc = main(["train", "--symbol", "BTC/USDT", "--data", str(tmp_path / "nope.csv"), "--json"])
    assert rc == 2 and "does not exist" in _json_out(capsys)["error"]


def test_tool_forecast_price(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tools.forecast as tf_mod
    from models.lstm.data import load_csv
    from tools.registry import get_tool

    monkeypatch.setattr(
        tf_mod, "load_candles",
        lambda symbol, timeframe, data_path=None, limit=0: (load_csv(trained), {"source": "test", "simulated": True}),
    )
    spec = get_tool("forecast_price")
    assert spec is not None
    res = spec.invoke({"symbol": "BTCUSDT", "horizon": 3, "chart": True})
    assert res["ok"], res
    result = res["result"]
    assert result["symbol"] == "BTC/USDT" and result["horizon"] == 3 and len(result["path"]) == 3
    assert "skill" in result and "SIMULATED" in result["verdict"]
    assert Path(result["chart"]).read_bytes()[:4] == b"\x89PNG"
    assert spec.invoke({"symbol": "BTC/USDT", "horizon": 99})["error"].find("1..4") >= 0
    assert not spec.invoke({"symbol": "BTC/USDT", "horizon": 0})["ok"]  # bounds checked by the args model
    assert "no trained model" in spec.invoke({"symbol": "ETH/USDT"})["error"]


def test_http_forecasts_and_predictions(trained: Path) -> None:
    from agent.api.auth import ApiKeyStore
    from agent.api.forecast import router
    from core.settings import get_settings
    from core.storage import get_db
    from models.lstm.data import load_csv

    app = FastAPI()
    app.include_router(router)
    db = get_db()
    app.state.db = db
    app.state.settings = get_settings()
    app.state.api_keys = ApiKeyStore(db)
    key, _ = app.state.api_keys.create("t", "read")
    auth = {"Authorization": f"Bearer {key}"}
    rows = load_csv(trained).to_numpy().tolist()[-200:]
    client = TestClient(app)

    assert client.post("/v1/forecasts", json={"symbol": "BTC/USDT", "candles": rows}).status_code == 401
    r = client.post("/v1/forecasts", json={"symbol": "BTC/USDT", "horizon": 4, "candles": rows,
                                           "include_chart": True}, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["horizon"] == 4 and body["skill"]["h"] == 4 and body["verdict"]
    assert base64.b64decode(body["chart_png_base64"])[:4] == b"\x89PNG"

    r = client.post("/v1/forecasts", json={"symbol": "BTC/USDT", "horizon": 9, "candles": rows}, headers=auth)
    assert r.status_code == 422 and "1..4" in r.json()["detail"]
    r = client.post("/v1/forecasts", json={"symbol": "BTC/USDT", "candles": [[1, 2, 3]]}, headers=auth)
    assert r.status_code == 422
    # daily candles given to the 1h model: refused, not forecast as if they were hourly
    daily = [[1_704_067_200_000 + i * 86_400_000, *row[1:]] for i, row in enumerate(rows)]
    r = client.post("/v1/forecasts", json={"symbol": "BTC/USDT", "timeframe": "1h", "horizon": 4, "candles": daily},
                    headers=auth)
    assert r.status_code == 422 and "1d apart" in r.json()["detail"], r.text
    # no timeframe given: the spacing picks the model, and there is no daily one
    r = client.post("/v1/forecasts", json={"symbol": "BTC/USDT", "horizon": 4, "candles": daily}, headers=auth)
    assert r.status_code == 404 and "BTC/USDT 1d" in r.json()["detail"], r.text
    r = client.post("/v1/forecasts", json={"symbol": "ETH/USDT", "candles": rows}, headers=auth)
    assert r.status_code == 404 and "no trained model" in r.json()["detail"]

    r = client.get("/predictions", headers=auth)
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert set(preds) == set(get_settings().symbols)
    assert preds["BTC/USDT"]["model"].startswith("BTC-USDT:1h") and preds["ETH/USDT"] is None
    assert client.get("/predictions?timeframe=7h", headers=auth).status_code == 422


def test_cli_pair_feature_needs_and_uses_the_second_symbol(
    isolated_settings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    btc, eth = tmp_path / "btc.csv", tmp_path / "eth.csv"
    synthetic_candles(600, seed=61).to_csv(btc, index=False)
    synthetic_candles(600, seed=62).to_csv(eth, index=False)
    tiny = [*TINY[:-1], "pair"]
    rc = main(["train", "--symbol", "BTC/USDT", "--data", str(btc), "--pair-symbol", "ETH/USDT", "--pair-data",
               str(eth), "--json", *tiny])
    out = _json_out(capsys)
    assert rc == 0, out
    rc = main(["forecast", "--symbol", "BTC/USDT", "--horizon", "2", "--data", str(btc), "--pair-data", str(eth),
               "--json"])
    out = _json_out(capsys)
    assert rc == 0 and out["ok"] and len(out["path"]) == 2
