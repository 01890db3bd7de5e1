"""ccxt.pro websocket streams against the fake: events on the bus, dropped connections, sequence gaps, staleness."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator

import pytest

from core.events import InProcessBus
from tests.fakes.binance_server import FakeBinance
from trading.exchanges import RetryPolicy, open_exchange
from trading.exchanges.ccxt_adapter import CcxtExchange
from trading.market_data.events import TOPIC_BOOK, TOPIC_CANDLE, TOPIC_STATUS, TOPIC_TICKER, TOPIC_TRADE
from trading.market_data.streams import MarketStreamer

pytestmark = pytest.mark.fault
FAST = RetryPolicy(attempts=1_000, base_delay_s=0.02, max_delay_s=0.1)


@pytest.fixture()
async def ex(fake_binance: FakeBinance) -> AsyncIterator[CcxtExchange]:
    adapter = open_exchange("binance", api_url=fake_binance.url, timeout_ms=2000)
    assert isinstance(adapter, CcxtExchange)
    await adapter.load_markets()
    yield adapter
    await adapter.close()


def _bus() -> InProcessBus:
    bus = InProcessBus()
    for topic in (TOPIC_TICKER, TOPIC_BOOK, TOPIC_TRADE, TOPIC_STATUS):
        bus.register(topic, "test")
    return bus


@contextlib.asynccontextmanager
async def pumping(fake: FakeBinance, symbol: str, start: float, step: float = 1.0) -> AsyncIterator[list[float]]:
    """Move the fake's price every 30 ms (each move pushes ticker, depth diff, trade, kline)."""
    prices: list[float] = []

    async def pump() -> None:
        price = start
        while True:
            price += step
            prices.append(price)
            fake.set_price(symbol, price)
            await asyncio.sleep(0.03)

    task = asyncio.create_task(pump())
    try:
        yield prices
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_until(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def test_streams_publish_normalised_events(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    bus = _bus()
    streamer = MarketStreamer(ex, bus, symbols=["BTC/USDT"], kinds=("ticker", "book", "trades"), backoff=FAST)
    task = streamer.start()
    async with pumping(fake_binance, "BTC/USDT", 65_000.0):
        await wait_until(lambda: all(s.updates >= 3 for s in streamer.stats.values()))
    await streamer.stop()
    task.cancel()
    tickers = bus.drain(TOPIC_TICKER, "test")
    books = bus.drain(TOPIC_BOOK, "test")
    trades = bus.drain(TOPIC_TRADE, "test")
    assert tickers and books and trades
    assert all(e.payload["exchange"] == "binance" and e.payload["symbol"] == "BTC/USDT" for e in tickers)
    last_book = books[-1].payload
    assert last_book["bids"][0][0] < last_book["asks"][0][0]
    assert all(b.payload["nonce"] < a.payload["nonce"] for b, a in itertools.pairwise(books))
    trade_ids = [e.id for e in trades]
    assert len(trade_ids) == len(set(trade_ids)), "no trade published twice"
    assert streamer.total("errors") == 0


async def test_dropped_websocket_reconnects(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    bus = _bus()
    streamer = MarketStreamer(ex, bus, symbols=["ETH/USDT"], kinds=("ticker",), backoff=FAST)
    task = streamer.start()
    stats = streamer.stats[("ticker", "ETH/USDT")]
    async with pumping(fake_binance, "ETH/USDT", 3_000.0) as prices:
        await wait_until(lambda: stats.updates >= 2)
        connections = fake_binance.ws_connections
        fake_binance.drop_websockets()
        await wait_until(lambda: stats.reconnects >= 1)
        before = stats.updates
        await wait_until(lambda: stats.updates >= before + 3)
        assert fake_binance.ws_connections > connections
        assert bus.drain(TOPIC_TICKER, "test")[-1].payload["last"] > prices[0]
    await streamer.stop()
    task.cancel()
    statuses = [e.payload["status"] for e in bus.drain(TOPIC_STATUS, "test")]
    assert "reconnect" in statuses


async def test_book_sequence_gap_resnapshots(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    bus = _bus()
    streamer = MarketStreamer(ex, bus, symbols=["BTC/USDT"], kinds=("book",), backoff=FAST)
    task = streamer.start()
    stats = streamer.stats[("book", "BTC/USDT")]
    async with pumping(fake_binance, "BTC/USDT", 60_000.0):
        await wait_until(lambda: stats.updates >= 2)
        snapshots = fake_binance.count("GET", "/api/v3/depth")
        fake_binance.skip_depth_sequence("BTC/USDT")
        await wait_until(lambda: stats.gaps >= 1)
        before = stats.updates
        await wait_until(lambda: stats.updates >= before + 3)
        assert fake_binance.count("GET", "/api/v3/depth") > snapshots, "a gap forces a new snapshot"
    await streamer.stop()
    task.cancel()
    book = bus.drain(TOPIC_BOOK, "test")[-1].payload
    market = fake_binance.markets["BTC/USDT"]
    assert book["bids"][0][0] == pytest.approx(market.bid(), rel=1e-3)
    assert "gap" in [e.payload["status"] for e in bus.drain(TOPIC_STATUS, "test")]


async def test_silent_stream_marked_stale_and_resubscribed(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    bus = _bus()
    streamer = MarketStreamer(ex, bus, symbols=["SOL/USDT"], kinds=("trades",), stale_after_s=0.3, backoff=FAST)
    task = streamer.start()
    stats = streamer.stats[("trades", "SOL/USDT")]
    await asyncio.sleep(0.2)
    connections = fake_binance.ws_connections
    await wait_until(lambda: stats.stale >= 1)  # nobody trades: no update within 0.3 s
    async with pumping(fake_binance, "SOL/USDT", 150.0, 0.01):
        await wait_until(lambda: stats.updates >= 2)
    assert fake_binance.ws_connections > connections, "stale stream resubscribed on a new connection"
    await streamer.stop()
    task.cancel()
    assert "stale" in [e.payload["status"] for e in bus.drain(TOPIC_STATUS, "test")]


async def test_candle_stream_publishes_and_detects_a_skipped_period(ex: CcxtExchange,
                                                                    fake_binance: FakeBinance) -> None:
    bus = _bus()
    bus.register(TOPIC_CANDLE, "test")
    minute = 60_000
    start = (fake_binance.now_ms() // minute) * minute
    fake_binance.fixed_now_ms = start + 1_000
    streamer = MarketStreamer(ex, bus, symbols=["BTC/USDT"], kinds=("candles",), timeframe="1m", backoff=FAST)
    task = streamer.start()
    stats = streamer.stats[("candles", "BTC/USDT")]
    async with pumping(fake_binance, "BTC/USDT", 64_000.0):
        await wait_until(lambda: stats.updates >= 2)
        fake_binance.fixed_now_ms = start + minute + 1_000  # the next period: contiguous, no gap
        await wait_until(lambda: stats.last_candle_ms == start + minute)
        assert stats.gaps == 0
        fake_binance.fixed_now_ms = start + 4 * minute + 1_000  # periods 2 and 3 never arrive
        await wait_until(lambda: stats.gaps >= 1)
    await streamer.stop()
    task.cancel()
    candles = [e.payload for e in bus.drain(TOPIC_CANDLE, "test")]
    assert {c["ts"] for c in candles} >= {start, start + minute, start + 4 * minute}
    assert all(c["timeframe"] == "1m" and c["symbol"] == "BTC/USDT" and c["low"] <= c["close"] <= c["high"]
               for c in candles)
    gaps = [e.payload["detail"] for e in bus.drain(TOPIC_STATUS, "test") if e.payload["status"] == "gap"]
    assert gaps == [f"candles skipped {start + minute} -> {start + 4 * minute}"]


async def test_trade_stream_detects_skipped_trade_ids(ex: CcxtExchange, fake_binance: FakeBinance) -> None:
    bus = _bus()
    streamer = MarketStreamer(ex, bus, symbols=["ETH/USDT"], kinds=("trades",), backoff=FAST)
    task = streamer.start()
    stats = streamer.stats[("trades", "ETH/USDT")]
    async with pumping(fake_binance, "ETH/USDT", 3_000.0):
        await wait_until(lambda: stats.updates >= 3)
        assert stats.gaps == 0, "consecutive trade ids are no gap"
        before = stats.last_trade_id
        assert before is not None
        fake_binance.skip_trade_ids(7)
        await wait_until(lambda: stats.gaps >= 1)
    await streamer.stop()
    task.cancel()
    gaps = [e.payload["detail"] for e in bus.drain(TOPIC_STATUS, "test") if e.payload["status"] == "gap"]
    assert len(gaps) == 1 and gaps[0].startswith("trade ids skipped")
    skipped_from, skipped_to = (int(x) for x in gaps[0].removeprefix("trade ids skipped ").split(" -> "))
    assert skipped_to - skipped_from > 7
    trades = bus.drain(TOPIC_TRADE, "test")
    assert len({e.id for e in trades}) == len(trades)
