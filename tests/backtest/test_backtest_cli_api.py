"""`crypto-agent backtest` and the agent tool on a CSV written by the test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from tests.backtest.conftest import wave_bars


def _csv(path: Path, n: int = 1500) -> Path:
    b = wave_bars(n)
    rows = ["timestamp_ms,open,high,low,close,volume"]
    rows += [f"{t},{o},{h},{lo},{c},{v}" for t, o, h, lo, c, v in
             zip(b.timestamp_ms, b.open, b.high, b.low, b.close, b.volume, strict=True)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_json_prints_metrics_and_buy_and_hold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _csv(tmp_path / "btc.csv")
    rc = main(["backtest", "--strategy", "trend", "--symbol", "BTC/USDT", "--timeframe", "1h", "--data", str(f),
               "--param", "fast=10", "--param", "slow=40", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["strategy"]["params"]["fast"] == 10
    assert out["metrics"]["trades"] > 0 and "sharpe" in out["metrics"]
    assert out["buy_and_hold"]["total_return"] is not None
    assert len(out["fingerprint"]) == 64


def test_cli_bad_file_exits_2_naming_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp_ms,open,close\n1,2,3\n")
    assert main(["backtest", "--strategy", "trend", "--symbol", "BTC/USDT", "--data", str(bad)]) == 2
    assert "lacks column(s) high, low, volume" in capsys.readouterr().err
    assert main(["backtest", "--strategy", "trend", "--symbol", "BTC/USDT", "--data", str(tmp_path / "no.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    broken = tmp_path / "broken.csv"
    broken.write_text("timestamp_ms,open,high,low,close,volume\n1,2,3,1,2,5\n2,2,x,1,2,5\n")
    assert main(["backtest", "--strategy", "trend", "--symbol", "BTC/USDT", "--data", str(broken)]) == 2
    assert "line 3" in capsys.readouterr().err


def test_backtest_tool_returns_compact_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    import tools.backtest as tb
    from tools.registry import get_tool

    monkeypatch.setattr(tb, "load_market", lambda s, tf, limit: (wave_bars(1200, symbol=s), "test candles"))
    spec = get_tool("backtest_strategy")
    assert spec is not None
    res: dict[str, Any] = spec.invoke({"strategy": "zscore", "symbols": ["btcusdt"], "timeframe": "1h"})
    assert res["ok"], res
    assert res["result"]["symbols"] == ["BTC/USDT"] and "sharpe" in res["result"]["metrics"]
    bad = spec.invoke({"strategy": "zscore", "symbols": ["BTC/USDT"], "params": {"window": 1}})
    assert not bad["ok"] and "window" in bad["error"]
    sig = get_tool("strategy_signal")
    assert sig is not None
    r = sig.invoke({"strategy": "trend", "symbols": ["BTC/USDT"], "params": {"fast": 10, "slow": 40}})
    assert r["ok"] and r["result"]["target"][0] in (0.0, 1.0)


def test_http_post_backtests_needs_read_scope_and_validates(mongo_db: Any) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from agent.api.auth import ApiKeyStore
    from agent.api.backtest import router

    app = FastAPI()
    app.include_router(router)
    app.state.api_keys = ApiKeyStore(mongo_db)
    key, _ = app.state.api_keys.create("reader", "read")
    client = TestClient(app)
    b = wave_bars(800)
    candles = [[int(t), o, h, lo, c, v] for t, o, h, lo, c, v in
               zip(b.timestamp_ms, b.open, b.high, b.low, b.close, b.volume, strict=True)]
    body = {"strategy": "trend", "symbols": ["BTC/USDT"], "params": {"fast": 10, "slow": 40}, "candles": [candles]}
    assert client.post("/v1/backtests", json=body).status_code == 401
    r = client.post("/v1/backtests", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    assert r.json()["buy_and_hold"]["total_return"] is not None
    bad = client.post("/v1/backtests", json={**body, "params": {"fast": 50, "slow": 10}},
                      headers={"Authorization": f"Bearer {key}"})
    assert bad.status_code == 422 and "fast" in bad.json()["detail"]
