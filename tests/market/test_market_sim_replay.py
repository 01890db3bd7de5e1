"""The simulated venue (seeded, realistic statistics, streams, orders) and the replay venue (no look-ahead)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from pymongo.database import Database

from core.events import InProcessBus
from trading.exchanges import InsufficientFunds, OrderRejected, UnknownSymbol, open_exchange, open_replay
from trading.exchanges.replay import ReplayExchange, ReplayFinished
from trading.exchanges.sim import SimExchange
from trading.market_data.candles import CandleStore
from trading.market_data.events import TOPIC_BOOK, TOPIC_TICKER
from trading.market_data.history import download_history, parse_time
from trading.market_data.streams import MarketStreamer
from trading.types import Candle, OrderType, Side

T0 = parse_time("2025-06-01T12:00:00Z")


def sim(exchange: str = "sim", seed: int = 7, t: int = T0) -> SimExchange:
    return SimExchange(exchange, seed=seed, clock=lambda: t, stream_interval_s=0.0)


async def test_sim_is_deterministic_per_seed() -> None:
    a, b, c = sim(seed=1), sim(seed=1), sim(seed=2)
    assert await a.fetch_ticker("BTC/USDT") == await b.fetch_ticker("BTC/USDT")
    assert await a.fetch_ohlcv("ETH/USDT", "1h", T0 - 48 * 3_600_000, 48) == \
        await b.fetch_ohlcv("ETH/USDT", "1h", T0 - 48 * 3_600_000, 48)
    assert (await a.fetch_ticker("BTC/USDT")).last != (await c.fetch_ticker("BTC/USDT")).last
    # history does not depend on when it is asked for
    later = sim(seed=1, t=T0 + 86_400_000)
    assert await later.fetch_ohlcv("BTC/USDT", "1h", T0 - 24 * 3_600_000, 10) == \
        await a.fetch_ohlcv("BTC/USDT", "1h", T0 - 24 * 3_600_000, 10)


async def test_sim_returns_have_fat_tails_and_volatility_clustering() -> None:
    ex = sim()
    rows = await ex.fetch_ohlcv("BTC/USDT", "1h", T0 - 1500 * 3_600_000, 1500)
    assert len(rows) == 1500
    r = np.diff(np.log([c.close for c in rows]))
    kurtosis = float(((r - r.mean()) ** 4).mean() / r.var() ** 2 - 3)
    assert kurtosis > 1.0, "fat tails"
    a = np.abs(r)
    assert float(np.corrcoef(a[1:], a[:-1])[0, 1]) > 0.1, "volatility clustering"
    assert all(c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close) for c in rows)
    assert all(b.timestamp_ms - a.timestamp_ms == 3_600_000 for a, b in itertools.pairwise(rows))


async def test_sim_spread_widens_with_volatility() -> None:
    ex = sim()
    samples = []
    for k in range(0, 60 * 24 * 20, 97):  # twenty days, every 97 minutes
        ex._clock = lambda t=T0 - k * 60_000: t  # type: ignore[misc]
        book = await ex.fetch_order_book("ETH/USDT", 10)
        _, _, _, sigma = ex._quote("ETH/USDT", book.timestamp_ms)
        spread = (book.asks[0].price - book.bids[0].price) / book.mid  # type: ignore[operator]
        depth = sum(lv.amount for lv in book.bids)
        samples.append((sigma, spread, depth))
    s = np.array(samples)
    assert np.corrcoef(s[:, 0], s[:, 1])[0, 1] > 0.5, "spread widens with volatility"
    assert np.corrcoef(s[:, 0], s[:, 2])[0, 1] < 0, "depth thins with volatility"


async def test_sim_venues_share_a_market_but_differ_in_fees() -> None:
    binance, kraken = sim("binance"), sim("kraken")
    tb, tk = await binance.fetch_ticker("BTC/USDT"), await kraken.fetch_ticker("BTC/USDT")
    assert tb.simulated and tk.simulated
    assert abs(tb.last / tk.last - 1) < 0.001
    assert binance.market("BTC/USDT").taker_fee < kraken.market("BTC/USDT").taker_fee
    with pytest.raises(UnknownSymbol, match="BTC/USDT"):
        binance.market("BTC/USTD")


async def test_sim_orders_and_balances() -> None:
    ex = sim()
    filled = await ex.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 0.1, client_order_id="m1")
    assert filled.status == "closed" and filled.filled == pytest.approx(0.1) and filled.fee_cost > 0
    ask = (await ex.fetch_order_book("BTC/USDT", 1)).asks[0].price
    assert filled.average is not None and filled.average >= ask - 1e-9
    resting = await ex.create_order("BTC/USDT", Side.BUY, OrderType.LIMIT, 0.1, ask * 0.5, client_order_id="l1")
    assert resting.status == "open"
    bal = await ex.fetch_balance()
    assert bal["USDT"].used == pytest.approx(0.1 * ask * 0.5)
    assert [o.client_order_id for o in await ex.fetch_open_orders()] == ["l1"]
    assert (await ex.cancel_order("BTC/USDT", client_order_id="l1")).status == "canceled"
    assert (await ex.fetch_balance())["USDT"].used == pytest.approx(0.0)
    with pytest.raises(OrderRejected, match="duplicate"):
        await ex.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 0.1, client_order_id="m1")
    with pytest.raises(InsufficientFunds):
        await ex.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 1000, client_order_id="big")
    with pytest.raises(OrderRejected, match="minimum"):
        await ex.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 0.000001, client_order_id="tiny")


async def test_sim_streams_publish_to_bus() -> None:
    ex = open_exchange("sim", stream_interval_s=0.01)
    bus = InProcessBus()
    bus.register(TOPIC_TICKER, "t")
    bus.register(TOPIC_BOOK, "t")
    streamer = MarketStreamer(ex, bus, symbols=["BTC/USDT", "SOL/USDT"], kinds=("ticker", "book"))
    task = streamer.start()
    import asyncio

    while min(s.updates for s in streamer.stats.values()) < 3:
        await asyncio.sleep(0.01)
    await streamer.stop()
    task.cancel()
    tickers = bus.drain(TOPIC_TICKER, "t")
    assert {e.payload["symbol"] for e in tickers} == {"BTC/USDT", "SOL/USDT"}
    assert all(e.payload["simulated"] for e in tickers)
    assert bus.drain(TOPIC_BOOK, "t")


async def test_replay_plays_stored_candles_without_lookahead(mongo_db: Database[dict[str, Any]]) -> None:
    store = CandleStore(mongo_db)
    source = sim("binance")
    result = await download_history(source, store, "BTC/USDT", "1h", T0 - 72 * 3_600_000, now_ms=T0)
    assert result.stored == 72
    replay = open_replay(mongo_db, "binance", "1h", start_ms=T0 - 48 * 3_600_000)
    assert isinstance(replay, ReplayExchange) and replay.simulated
    stored = store.load("binance", "BTC/USDT", "1h")
    t = await replay.fetch_ticker("BTC/USDT")
    current = next(c for c in stored if c.timestamp_ms == T0 - 48 * 3_600_000)
    assert t.last == pytest.approx(current.close) and t.timestamp_ms == current.timestamp_ms + 3_600_000
    seen = await replay.fetch_ohlcv("BTC/USDT", "1h", None, 500)
    assert seen[-1] == current and all(c.timestamp_ms <= current.timestamp_ms for c in seen)
    four = await replay.fetch_ohlcv("BTC/USDT", "4h", None, 500)
    assert all(c.timestamp_ms + 4 * 3_600_000 <= replay.now_ms for c in four)
    order = await replay.create_order("BTC/USDT", Side.BUY, OrderType.LIMIT, 0.01, current.close * 0.97,
                                      client_order_id="dip")
    ticks = []
    while True:
        try:
            ticks.append(await replay.watch_ticker("BTC/USDT"))
        except ReplayFinished:
            break
    assert len(ticks) == 47
    assert [x.last for x in ticks] == [c.close for c in stored[-47:]]
    final = await replay.fetch_order_by_client_id("BTC/USDT", "dip")
    low = min(c.low for c in stored[-47:])
    assert final is not None and (final.status == "closed") == (low <= order.price)  # type: ignore[operator]


def test_replay_without_data_says_what_to_do(mongo_db: Database[dict[str, Any]]) -> None:
    with pytest.raises(Exception, match="data download"):
        open_replay(mongo_db, "binance", "1h")
    CandleStore(mongo_db).upsert("binance", "ETH/USDT", "1h", [Candle(0, 1, 1, 1, 1, 1)])
    with pytest.raises(UnknownSymbol, match="ETH/USDT"):
        open_replay(mongo_db, "binance", "1h", symbols=["BTC/USDT"])
