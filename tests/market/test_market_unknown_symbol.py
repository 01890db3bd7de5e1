"""Unknown symbols end in a clear refusal on every path: the exchanges raise `UnknownSymbol` (with nearby names),
HTTP answers 404 with the request id, the CLI exits 2 with one sentence, the agent's tool gets a polite result."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core import settings as settings_mod
from trading.exchanges import UnknownSymbol
from trading.exchanges.sim import SimExchange

FIXED_MS = 1_780_336_800_000  # 2026-06-01T18:00Z: the simulated market is a pure function of time


def _sim() -> SimExchange:
    return SimExchange(clock=lambda: FIXED_MS)


@pytest.mark.parametrize(
    "call",
    [
        lambda ex: ex.fetch_ticker("FOO/USDT"),
        lambda ex: ex.fetch_order_book("FOO/USDT"),
        lambda ex: ex.fetch_ohlcv("FOO/USDT"),
        lambda ex: ex.fetch_trades("FOO/USDT"),
        lambda ex: ex.watch_ohlcv("FOO/USDT"),
        lambda ex: ex.fetch_open_orders("FOO/USDT"),
        lambda ex: ex.fetch_order_by_client_id("FOO/USDT", "x"),
        lambda ex: ex.cancel_order("FOO/USDT", client_order_id="x"),
    ],
    ids=["ticker", "book", "ohlcv", "trades", "watch_ohlcv", "open_orders", "by_client_id", "cancel"],
)
def test_sim_exchange_raises_unknown_symbol_not_key_error(call: Callable[[SimExchange], Any]) -> None:
    ex = _sim()
    ex.stream_interval_s = 0.0
    with pytest.raises(UnknownSymbol) as info:
        asyncio.run(call(ex))
    assert info.value.symbol == "FOO/USDT" and "unknown symbol 'FOO/USDT'" in str(info.value)


async def test_replay_exchange_raises_unknown_symbol(mongo_db: Any) -> None:
    from trading.exchanges.factory import open_replay
    from trading.market_data.candles import CandleStore
    from trading.market_data.history import download_history

    await download_history(_sim(), CandleStore(mongo_db), "BTC/USDT", "1h", FIXED_MS - 24 * 3_600_000,
                           now_ms=FIXED_MS)
    replay = open_replay(mongo_db, "sim", "1h", start_ms=FIXED_MS - 12 * 3_600_000)
    for call in (
        lambda: replay.fetch_ticker("FOO/USDT"),
        lambda: replay.fetch_order_book("FOO/USDT"),
        lambda: replay.fetch_ohlcv("FOO/USDT"),
        lambda: replay.fetch_open_orders("FOO/USDT"),
        lambda: replay.fetch_order_by_client_id("FOO/USDT", "x"),
        lambda: replay.cancel_order("FOO/USDT", client_order_id="x"),
    ):
        with pytest.raises(UnknownSymbol):
            await call()


def test_unknown_symbol_lists_close_matches() -> None:
    ex = _sim()
    with pytest.raises(UnknownSymbol) as info:
        asyncio.run(ex.fetch_ticker("BTC/USD"))
    assert "BTC/USDT" in info.value.suggestions and "BTC/USDT" in str(info.value)


def test_ccxt_adapter_raises_unknown_symbol(fake_binance: Any) -> None:
    from trading.exchanges.ccxt_adapter import CcxtExchange

    async def go() -> None:
        ex = CcxtExchange("binance", api_url=fake_binance.url, timeout_ms=2000)
        try:
            for call in (ex.fetch_ticker, ex.fetch_order_book, ex.fetch_ohlcv):
                with pytest.raises(UnknownSymbol) as info:
                    await call("FOO/USDT")
                assert "FOO/USDT" in str(info.value)
        finally:
            await ex.close()

    asyncio.run(go())


@pytest.fixture()
def sim_client(isolated_settings: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str]]:
    from agent.app import create_app
    from core.clock import use_clock
    from trading.exchanges import reset_market_sources

    monkeypatch.setenv("EXCHANGE_ID", "sim")
    monkeypatch.setenv("SIMULATED_EXCHANGE", "true")
    settings_mod.reset_settings()
    reset_market_sources()
    with use_clock(lambda: FIXED_MS):
        app = create_app(settings_mod.get_settings())
        with TestClient(app) as client:
            key, _ = app.state.api_keys.create("test", "read,trade")
            yield client, key
    reset_market_sources()


def test_http_unknown_symbol_is_404_with_a_sentence_and_the_request_id(sim_client: tuple[TestClient, str]) -> None:
    client, key = sim_client
    auth = {"Authorization": f"Bearer {key}", "X-Request-ID": "req-unknown-1"}
    for method, path, kwargs in (
        ("GET", "/v1/market/ticker", {"params": {"symbol": "FOO/USDT"}}),
        ("GET", "/v1/market/candles", {"params": {"symbol": "FOO/USDT"}}),
        ("POST", "/v1/analyze", {"json": {"symbol": "FOO/USDT"}}),
    ):
        r = client.request(method, path, headers=auth, **kwargs)
        assert r.status_code == 404, (path, r.status_code, r.text)
        body = r.json()
        assert "unknown symbol 'FOO/USDT'" in body["detail"], body
        assert body.get("request_id") == "req-unknown-1", body
        assert r.headers.get("x-request-id") == "req-unknown-1"
    # a question about it gets an answer that says so (the desk without an LLM answers deterministically)
    r = client.post("/v1/ask", json={"question": "how is FOO/USDT doing?"}, headers=auth)
    assert r.status_code == 200, r.text
    assert "unknown symbol 'FOO/USDT'" in r.json()["answer"]
    # the agent's tools get a polite result, never an exception
    from tools.registry import get_tool

    spec = get_tool("get_ticker")
    assert spec is not None
    out = spec.invoke({"symbol": "FOO/USDT"})
    assert out["ok"] is False and "unknown symbol 'FOO/USDT'" in out["error"]
    # a known symbol still works
    ok = client.get("/v1/market/ticker", params={"symbol": "BTC/USDT"}, headers=auth)
    assert ok.status_code == 200, ok.text


def test_unexpected_error_body_carries_the_real_request_id(sim_client: tuple[TestClient, str]) -> None:
    """The catch-all 500 runs outside the request-id middleware: it must still name the request."""
    client, _key = sim_client
    app: Any = client.app

    @app.get("/v1/_boom_for_test")
    async def boom() -> None:
        raise RuntimeError("boom")

    no_raise = TestClient(app, raise_server_exceptions=False)
    r = no_raise.get("/v1/_boom_for_test", headers={"X-Request-ID": "req-boom-7"})
    assert r.status_code == 500
    assert r.json()["request_id"] == "req-boom-7", r.text
    assert r.headers.get("x-request-id") == "req-boom-7"


def test_cli_analyze_unknown_symbol_exits_2_without_a_traceback(
    isolated_settings: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main
    from core.clock import use_clock
    from trading.exchanges import reset_market_sources

    monkeypatch.setenv("EXCHANGE_ID", "sim")
    monkeypatch.setenv("SIMULATED_EXCHANGE", "true")
    settings_mod.reset_settings()
    reset_market_sources()
    with use_clock(lambda: FIXED_MS):
        code = main(["analyze", "FOO/USDT"])
    out = capsys.readouterr()
    assert code == 2
    assert "unknown symbol 'FOO/USDT'" in out.err and "Traceback" not in out.err + out.out
    reset_market_sources()
