"""`crypto-agent backtest` and the agent tool on a CSV written by the test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from tests.backtest.conftest import dislocated_pair, wave_bars
from trading.strategies.base import Bars

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KNOWN_PAIRS = ["window=100", "test=none", "entry_z=2.5", "exit_z=0.5", "stop_z=10"]
# CSV files carry real epoch milliseconds: times before 1973 (< 1e11) are read as seconds, so bars built from 0
# would land 1000x too far apart and fail the timeframe check against their spacing
EPOCH_MS = 1_704_067_200_000


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the signature and the chunk's CRC."""
    import struct
    import zlib

    assert data[:8] == PNG_MAGIC
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16:29]
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(kind + body)
    assert data[-12:-4] == b"\x00\x00\x00\x00IEND"
    w, h = struct.unpack(">II", body[:8])
    return int(w), int(h)


def _write_csv(path: Path, b: Bars) -> Path:
    rows = ["timestamp_ms,open,high,low,close,volume"]
    rows += [f"{t + EPOCH_MS},{o!r},{h!r},{lo!r},{c!r},{v!r}" for t, o, h, lo, c, v in
             zip(b.timestamp_ms.tolist(), b.open.tolist(), b.high.tolist(), b.low.tolist(), b.close.tolist(),
                 b.volume.tolist(), strict=True)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _csv(path: Path, n: int = 1500) -> Path:
    b = wave_bars(n)
    rows = ["timestamp_ms,open,high,low,close,volume"]
    rows += [f"{t + EPOCH_MS},{o},{h},{lo},{c},{v}" for t, o, h, lo, c, v in
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
    # include_chart: the PNG comes back base64-encoded and decodes to a valid image
    import base64

    r = client.post("/v1/backtests", json={**body, "include_chart": True}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    assert _png_size(base64.b64decode(r.json()["chart_png_base64"])) == (1000, 600)
    assert "chart" not in r.json()
    # pairs: two series, both legs trade around the inventory, the spread's PnL is reported
    y, x = dislocated_pair()
    series = [[[int(t), o, h, lo, c, v] for t, o, h, lo, c, v in
               zip(b.timestamp_ms, b.open, b.high, b.low, b.close, b.volume, strict=True)] for b in (y, x)]
    pairs = {"strategy": "pairs", "symbols": ["ETH/USDT", "BTC/USDT"], "candles": series, "participation": 1.0,
             "params": {"window": 100, "test": "none", "entry_z": 2.5, "exit_z": 0.5, "stop_z": 10.0}}
    r = client.post("/v1/backtests", json=pairs, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["book"]["kind"] == "relative_value"
    assert {(t["symbol"], t["side"]) for t in out["trades"]} == {
        ("ETH/USDT", "long"), ("ETH/USDT", "short"), ("BTC/USDT", "long"), ("BTC/USDT", "short")}
    assert out["spread"]["pnl"] > 0
    bad = client.post("/v1/backtests", json={**pairs, "inventory": 0.7}, headers={"Authorization": f"Bearer {key}"})
    assert bad.status_code == 422


def test_cli_pairs_backtest_trades_both_legs_and_reports_the_spread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    y, x = dislocated_pair()
    fy, fx = _write_csv(tmp_path / "eth.csv", y), _write_csv(tmp_path / "btc.csv", x)
    params = [a for kv in KNOWN_PAIRS for a in ("--param", kv)]
    base = ["backtest", "--strategy", "pairs", "--symbol", "ETH/USDT", "--symbol2", "BTC/USDT", "--data", str(fy),
            "--data2", str(fx), "--participation", "1", *params, "--json"]
    outs = []
    for mode in ("event", "vectorized"):
        assert main([*base, "--mode", mode]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    ev, vec = outs
    assert ev["book"]["kind"] == "relative_value" and ev["symbols"] == ["ETH/USDT", "BTC/USDT"]
    assert [(t["symbol"], t["side"], t["entry_bar"], t["exit_bar"]) for t in ev["trades"]] == [
        ("BTC/USDT", "short", 301, 314), ("ETH/USDT", "long", 301, 314),
        ("BTC/USDT", "long", 451, 463), ("ETH/USDT", "short", 451, 463)]
    assert [leg["closed_trades"] for leg in ev["spread"]["legs"]] == [2, 2]
    assert ev["spread"]["pnl"] > 0
    assert ev["fingerprint"] == vec["fingerprint"]
    # the cash book is still there on request, and says what it refused
    assert main([*base, "--book", "cash"]) == 0
    cash = json.loads(capsys.readouterr().out)
    assert cash["book"]["kind"] == "cash" and cash["rejected_orders"] == 2
    # a bad book setting exits 2 with the reason
    assert main([*base, "--inventory", "0.9"]) == 2
    assert "inventory" in capsys.readouterr().err


def test_cli_chart_writes_a_valid_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _csv(tmp_path / "btc.csv", 600)
    chart = tmp_path / "out" / "eq.png"
    assert main(["backtest", "--strategy", "trend", "--symbol", "BTC/USDT", "--data", str(f), "--param", "fast=10",
                 "--param", "slow=40", "--chart", str(chart)]) == 0
    assert f"chart: {chart}" in capsys.readouterr().out
    assert _png_size(chart.read_bytes()) == (1000, 600)  # figsize 10x6 at 100 dpi


def test_plot_equity_draws_the_drawdown_it_was_given(tmp_path: Path) -> None:
    import matplotlib.image as mpimg
    import numpy as np

    from trading.backtest.engine import run_event
    from trading.backtest.report import plot_equity
    from trading.strategies import make_strategy

    res = run_event(make_strategy("trend", {"fast": 10, "slow": 40}), wave_bars(800))
    path = plot_equity(res, tmp_path / "eq.png")
    img = mpimg.imread(path)
    assert img.shape[:2] == (600, 1000)
    # the drawdown panel is filled red (tab:red at alpha .4 over white): some pixels are clearly reddish
    rgb = img[..., :3]
    reddish = (rgb[..., 0] > 0.8) & (rgb[..., 1] < 0.75) & (rgb[..., 2] < 0.75)
    assert int(np.sum(reddish)) > 500


def test_backtest_tool_runs_pairs_from_the_candle_store(isolated_settings: Path) -> None:
    from core.storage import get_db
    from tools.registry import get_tool
    from trading.market_data.candles import CandleStore
    from trading.types import Candle

    store = CandleStore(get_db())
    for b in dislocated_pair():
        store.upsert("binance", b.symbol, "1h", [
            Candle(int(t), float(o), float(h), float(lo), float(c), float(v)) for t, o, h, lo, c, v in
            zip(b.timestamp_ms, b.open, b.high, b.low, b.close, b.volume, strict=True)])
    spec = get_tool("backtest_strategy")
    assert spec is not None
    params = dict(kv.split("=") for kv in KNOWN_PAIRS)
    res = spec.invoke({"strategy": "pairs", "symbols": ["ETH/USDT", "BTC/USDT"], "limit": 600,
                       "params": {k: (v if k in ("test",) else float(v) if "." in v else int(v))
                                  for k, v in params.items()}})
    assert res["ok"], res
    r = res["result"]
    assert r["book"] == "relative_value" and r["bars"] == 600
    assert all("candle store (600 candles)" in n for n in r["data"])
    assert [leg["closed_trades"] for leg in r["spread"]["legs"]] == [2, 2]
    assert r["spread"]["pnl"] > 0
