"""Fault injection on REST: retried faults recover, fatal ones surface a clear error, nothing is duplicated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.fakes.binance_server import FakeBinance
from trading.exchanges import (
    ExchangeUnavailable,
    InsufficientFunds,
    OrderNotSent,
    OrderOutcomeUnknown,
    OrderRejected,
    RateLimited,
    RetryPolicy,
    UnknownSymbol,
    open_exchange,
)
from trading.exchanges.ccxt_adapter import CcxtExchange
from trading.types import OrderType, Side

pytestmark = pytest.mark.fault
TICKER = "/api/v3/ticker/24hr"
ORDER = "/api/v3/order"


class Recorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(min(seconds, 0.05))  # do not really wait for Retry-After in tests


@pytest.fixture()
async def ex(fake_binance: FakeBinance) -> AsyncIterator[CcxtExchange]:
    adapter = open_exchange("binance", api_url=fake_binance.url, api_key="k", secret="s", timeout_ms=400,
                            retry=RetryPolicy(attempts=4, base_delay_s=0.02, max_delay_s=0.1))
    assert isinstance(adapter, CcxtExchange)
    adapter.sleep = Recorder()
    await adapter.load_markets()
    yield adapter
    await adapter.close()


async def test_429_retry_after_is_honoured(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    fake_binance.fail(TICKER, 429, times=2, retry_after=3)
    ticker = await ex.fetch_ticker("BTC/USDT")
    assert ticker.last == pytest.approx(65_000.0)
    assert fake_binance.count("GET", TICKER) == 3
    assert isinstance(ex.sleep, Recorder) and ex.sleep.delays == [3.0, 3.0]


async def test_429_with_too_long_retry_after_surfaces(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    fake_binance.fail(TICKER, 429, retry_after=3600)
    with pytest.raises(RateLimited, match="binance"):
        await ex.fetch_ticker("BTC/USDT")
    assert fake_binance.count("GET", TICKER) == 1


@pytest.mark.parametrize("status", [418, 500, 502, 503, 504])
async def test_transient_status_retried_with_backoff(ex: CcxtExchange, fake_binance: FakeBinance,
                                                     status: int) -> None:
    fake_binance.fail(TICKER, status, times=2)
    ticker = await ex.fetch_ticker("BTC/USDT")
    assert ticker.symbol == "BTC/USDT"
    assert fake_binance.count("GET", TICKER) == 3
    delays = ex.sleep.delays  # type: ignore[attr-defined]
    assert len(delays) == 2 and all(0 < d <= 0.1 for d in delays)


async def test_persistent_outage_surfaces_after_attempts(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    fake_binance.fail(TICKER, 503, times=10)
    with pytest.raises(ExchangeUnavailable):
        await ex.fetch_ticker("BTC/USDT")
    assert fake_binance.count("GET", TICKER) == 4


async def test_timeout_retried(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    fake_binance.delay("/api/v3/depth", 1.0)
    book = await ex.fetch_order_book("BTC/USDT", 5)
    assert book.best_bid is not None
    assert fake_binance.count("GET", "/api/v3/depth") == 2


async def test_malformed_json_retried(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    fake_binance.malformed(TICKER)
    ticker = await ex.fetch_ticker("ETH/USDT")
    assert ticker.last == pytest.approx(3_200.0)
    assert fake_binance.count("GET", TICKER) == 2


async def test_bad_symbol_from_venue_not_retried(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    del fake_binance.markets["SOL/USDT"]  # delisted after markets were loaded
    with pytest.raises(UnknownSymbol, match="SOL/USDT"):
        await ex.fetch_ticker("SOL/USDT")
    assert fake_binance.count("GET", TICKER) == 1


async def test_invalid_order_not_retried(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    with pytest.raises(OrderRejected, match="NOTIONAL"):
        await ex.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 0.00002, client_order_id="tiny")
    assert fake_binance.count("POST", ORDER) == 1


async def test_insufficient_funds_not_retried(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    with pytest.raises(InsufficientFunds):
        await ex.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 10.0, client_order_id="big")
    assert fake_binance.count("POST", ORDER) == 1


async def test_order_timeout_settled_by_lookup_not_resent(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    fake_binance.delay(ORDER, 0.6)  # processed after the client gave up
    order = await ex.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 0.01, client_order_id="slow-1")
    assert order.client_order_id == "slow-1" and order.status == "closed"
    assert fake_binance.count("POST", ORDER) == 1
    assert len(fake_binance.orders) == 1


async def test_order_garbled_reply_settled_by_lookup(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    fake_binance.malformed(ORDER)
    order = await ex.create_order("ETH/USDT", Side.SELL, OrderType.MARKET, 0.5, client_order_id="garbled-1")
    assert order.exchange_order_id is not None and order.filled == pytest.approx(0.5)
    assert fake_binance.count("POST", ORDER) == 1
    assert len(fake_binance.orders) == 1


async def test_order_5xx_unknown_outcome_never_resent(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    fake_binance.fail(ORDER, 503)
    with pytest.raises(OrderOutcomeUnknown) as info:
        await ex.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 0.01, client_order_id="lost-1")
    assert info.value.client_order_id == "lost-1"
    assert fake_binance.count("POST", ORDER) == 1
    assert fake_binance.orders == {}


async def test_order_rate_limited_is_resent_once_accepted(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    fake_binance.fail(ORDER, 429, retry_after=1)
    order = await ex.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 0.01, client_order_id="rl-1")
    assert order.status == "closed"
    assert fake_binance.count("POST", ORDER) == 2
    assert len(fake_binance.orders) == 1


async def test_order_rate_limited_to_the_end_is_not_sent(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    fake_binance.fail(ORDER, 429, times=10, retry_after=1)
    with pytest.raises(OrderNotSent) as info:
        await ex.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 0.01, client_order_id="rl-2")
    assert isinstance(info.value, OrderRejected) and info.value.retryable
    assert fake_binance.count("POST", ORDER) == 4 and fake_binance.orders == {}


async def test_order_for_unknown_symbol_is_rejected_before_sending(ex: CcxtExchange,
                                                                   fake_binance: FakeBinance) -> None:
    with pytest.raises(OrderRejected, match="BTC/USDT"):
        await ex.create_order("BTC/USTD", Side.BUY, OrderType.MARKET, 0.01, client_order_id="typo")
    assert fake_binance.count("POST", ORDER) == 0
