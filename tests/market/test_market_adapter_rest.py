"""Real ccxt (async) against the fake Binance: normalisation, errors with suggestions, orders."""

from __future__ import annotations

import itertools

import pytest

from tests.fakes.binance_server import FakeBinance
from trading.exchanges import UnknownExchange, UnknownSymbol, open_exchange
from trading.exchanges.ccxt_adapter import CcxtExchange
from trading.types import OrderType, Side


@pytest.fixture()
async def ex(fake_binance: FakeBinance):
    adapter = open_exchange("binance", api_url=fake_binance.url, api_key="k", secret="s", timeout_ms=2000)
    yield adapter
    await adapter.close()


async def test_load_markets_reads_filters(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    markets = await ex.load_markets()
    btc = markets["BTC/USDT"]
    assert (btc.base, btc.quote) == ("BTC", "USDT")
    assert btc.price_precision == pytest.approx(0.01)
    assert btc.amount_precision == pytest.approx(0.00001)
    assert btc.min_cost == pytest.approx(5.0)
    assert btc.min_amount == pytest.approx(0.00001)
    # load_markets touches only exchangeInfo (DESIGN: fetchMarkets spot, no currencies, no margins)
    assert {p for _, p, _ in fake_binance.requests} == {"/api/v3/exchangeInfo"}


async def test_ticker_book_candles_trades_normalised(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    fake_binance.set_price("BTC/USDT", 70_000.0)
    t = await ex.fetch_ticker("BTC/USDT")
    assert t.exchange == "binance" and t.symbol == "BTC/USDT" and not t.simulated
    assert t.last == pytest.approx(70_000.0)
    assert t.bid is not None and t.ask is not None and t.bid < t.last < t.ask
    assert t.change_pct_24h == pytest.approx((70_000 / fake_binance.markets["BTC/USDT"].open_24h - 1) * 100,
                                             abs=1e-3)
    book = await ex.fetch_order_book("BTC/USDT", 5)
    assert len(book.bids) == 5 and len(book.asks) == 5
    assert book.best_bid == pytest.approx(t.bid) and book.best_ask == pytest.approx(t.ask)
    assert all(a.price > b.price for a, b in zip(book.bids, book.bids[1:], strict=False))
    assert book.nonce == fake_binance.markets["BTC/USDT"].book_version
    candles = await ex.fetch_ohlcv("BTC/USDT", "1h", None, 5)
    assert len(candles) == 5
    assert all(b.timestamp_ms - a.timestamp_ms == 3_600_000 for a, b in itertools.pairwise(candles))
    assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in candles)
    trades = await ex.fetch_trades("ETH/USDT", None, 3)
    assert len(trades) == 3 and all(tr.symbol == "ETH/USDT" and tr.side is not None for tr in trades)


async def test_unknown_symbol_lists_nearby(ex: CcxtExchange) -> None:
    with pytest.raises(UnknownSymbol) as info:
        await ex.fetch_ticker("BTC/USTD")
    assert "BTC/USDT" in str(info.value)
    assert info.value.suggestions[0] == "BTC/USDT"


def test_unknown_exchange_lists_nearby() -> None:
    with pytest.raises(UnknownExchange) as info:
        open_exchange("binanse")
    assert "binance" in info.value.suggestions


async def test_orders_roundtrip_by_client_id(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    filled = await ex.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 0.01, client_order_id="cid-1")
    assert filled.status == "closed" and filled.filled == pytest.approx(0.01)
    assert filled.client_order_id == "cid-1" and filled.exchange_order_id
    assert filled.fee_cost > 0
    resting = await ex.create_order("BTC/USDT", Side.BUY, OrderType.LIMIT, 0.01, 50_000.0, client_order_id="cid-2")
    assert resting.status == "open"
    found = await ex.fetch_order_by_client_id("BTC/USDT", "cid-2")
    assert found is not None and found.exchange_order_id == resting.exchange_order_id
    assert await ex.fetch_order_by_client_id("BTC/USDT", "never-sent") is None
    assert [o.client_order_id for o in await ex.fetch_open_orders("BTC/USDT")] == ["cid-2"]
    cancelled = await ex.cancel_order("BTC/USDT", client_order_id="cid-2")
    assert cancelled.status == "canceled"
    assert await ex.fetch_open_orders("BTC/USDT") == []
    balances = await ex.fetch_balance()
    assert balances["BTC"].free == pytest.approx(1.01)


@pytest.mark.parametrize("exchange_id", ["binance", "kraken", "okx"])
async def test_built_adapters_run_ccxt_rate_limiter(exchange_id: str) -> None:
    adapter = open_exchange(exchange_id, timeout_ms=2000)
    try:
        assert isinstance(adapter, CcxtExchange)
        assert adapter._ex.enableRateLimit is True
        assert adapter._ex.rateLimit > 0
    finally:
        await adapter.close()


def test_configured_market_source_runs_ccxt_rate_limiter(market_env: FakeBinance) -> None:
    from trading.exchanges import get_market_source

    source = get_market_source()
    assert not source.simulated
    assert isinstance(source.adapter, CcxtExchange)
    assert source.adapter._ex.enableRateLimit is True
