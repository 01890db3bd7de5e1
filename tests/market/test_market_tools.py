"""Agent tools over the market source: real venue (fake), fallback to simulated data, errors as data."""

from __future__ import annotations

import threading

import pytest

from tests.fakes.binance_server import FakeBinance
from tools.registry import get_tool


@pytest.fixture(autouse=True)
def _load_tools() -> None:
    import tools.market  # noqa: F401


def test_get_ticker_from_venue(market_env: FakeBinance) -> None:
    market_env.set_price("ETH/USDT", 3_333.0)
    out = get_tool("get_ticker").invoke({"symbol": "eth-usdt"})
    assert out["ok"], out
    res = out["result"]
    assert res["exchange"] == "binance" and res["symbol"] == "ETH/USDT" and res["simulated"] is False
    assert res["last"] == pytest.approx(3_333.0)
    assert res["bid"] < res["last"] < res["ask"]
    assert set(res) >= {"exchange", "symbol", "last", "bid", "ask", "change_pct_24h", "volume", "timestamp",
                        "simulated"}


def test_get_ticker_unknown_symbol_is_data(market_env: FakeBinance) -> None:
    out = get_tool("get_ticker").invoke({"symbol": "ETH/USTD"})
    assert out["ok"] is False
    assert out["error"].startswith("unknown symbol 'ETH/USTD' on binance; nearby valid symbols: ETH/USDT")


def test_get_ticker_thread_safe(market_env: FakeBinance) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def call() -> None:
        ok = get_tool("get_ticker").invoke({"symbol": "SOL/USDT"})["ok"]
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 8


def test_unreachable_venue_falls_back_to_sim(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import reset_settings
    from trading.exchanges import reset_market_sources

    monkeypatch.setenv("EXCHANGE_API_URL", "http://127.0.0.1:9")  # discard port: connection refused
    monkeypatch.setenv("EXCHANGE_TIMEOUT_MS", "500")
    reset_settings()
    reset_market_sources()
    try:
        out = get_tool("get_ticker").invoke({"symbol": "BTC/USDT"})
        assert out["ok"], out
        assert out["result"]["simulated"] is True
        assert "unreachable" in out["result"]["note"]
        assert out["result"]["last"] > 0
    finally:
        reset_market_sources()
        reset_settings()


def test_order_book_and_candles_tools(market_env: FakeBinance) -> None:
    book = get_tool("get_order_book").invoke({"symbol": "BTC/USDT", "depth": 3})
    assert book["ok"] and len(book["result"]["bids"]) == 3 and book["result"]["spread"] > 0
    candles = get_tool("get_candles").invoke({"symbol": "BTC/USDT", "timeframe": "1h", "limit": 4})
    assert candles["ok"] and candles["result"]["count"] == 4
    bad = get_tool("get_candles").invoke({"symbol": "BTC/USDT", "timeframe": "7m"})
    assert not bad["ok"] and "timeframe" in bad["error"]


def test_compare_venues_tool_flags_simulated_venue(market_env: FakeBinance) -> None:
    # kraken's API is not at the fake's URL: it cannot be reached and falls back to simulated data
    out = get_tool("compare_venues").invoke({"symbol": "BTC/USDT", "side": "buy", "amount": 0.1,
                                            "exchanges": ["binance", "kraken"]})
    assert out["ok"], out
    res = out["result"]
    by_venue = {r["exchange"]: r for r in res["ranking"]}
    assert set(by_venue) == {"binance", "kraken"}
    assert by_venue["binance"]["simulated"] is False and by_venue["kraken"]["simulated"] is True
    assert res["simulated"] is True
    assert by_venue["binance"]["taker_fee"] == pytest.approx(0.001)
    assert by_venue["kraken"]["taker_fee"] == pytest.approx(0.0026)
