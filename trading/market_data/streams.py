"""Live market streams: watch_* loops with reconnect and backoff, gap and stale detection, resubscribe, and
publication of normalised events to the event bus.

    streamer = MarketStreamer(adapter, bus, symbols=["BTC/USDT"], kinds=("ticker", "book", "trades"))
    task = streamer.start()
    ...
    await streamer.stop()

Per stream (kind, symbol):
- an error (dropped connection, network, sequence/checksum gap) counts, publishes a `market.status` event, waits
  a jittered exponential backoff and resubscribes (the adapter closes its websockets, so books are resnapshotted);
- no update for `stale_after_s`, or updates whose exchange timestamp lags the clock by more than that, mark the
  stream stale (status event) and force a resubscribe;
- order-book nonces that go backwards, trade ids that skip, and candles that skip a period are counted as gaps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.clock import now_ms
from core.events import Event, EventBus
from core.metrics import STREAM_LAG, STREAM_RECONNECTS
from trading.exchanges import errors
from trading.exchanges.base import ExchangeAdapter, timeframe_ms
from trading.exchanges.retry import RetryPolicy
from trading.market_data import events as ev
from trading.types import Candle, OrderBook, Ticker, Trade

log = logging.getLogger(__name__)
KINDS = ("ticker", "book", "trades", "candles")


@dataclass
class StreamStats:
    updates: int = 0
    events: int = 0
    errors: int = 0
    reconnects: int = 0
    gaps: int = 0
    stale: int = 0
    last_update_ms: int | None = None
    last_error: str | None = None
    last_nonce: int | None = None
    last_trade_id: int | None = None
    last_candle_ms: int | None = None
    seen_trade_ids: set[str] = field(default_factory=set)


class MarketStreamer:
    def __init__(
        self,
        adapter: ExchangeAdapter,
        bus: EventBus,
        *,
        symbols: Sequence[str],
        kinds: Sequence[str] = ("ticker", "book"),
        timeframe: str = "1m",
        book_depth: int = 20,
        stale_after_s: float = 30.0,
        backoff: RetryPolicy | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown stream kinds {unknown}; valid: {', '.join(KINDS)}")
        timeframe_ms(timeframe)
        self.adapter = adapter
        self.bus = bus
        self.symbols = list(symbols)
        self.kinds = list(kinds)
        self.timeframe = timeframe
        self.book_depth = book_depth
        self.stale_after_s = stale_after_s
        self.backoff = backoff or RetryPolicy(attempts=1_000_000, base_delay_s=0.5, max_delay_s=30.0)
        self._clock = clock or now_ms
        self.stats: dict[tuple[str, str], StreamStats] = {(k, s): StreamStats() for k in self.kinds
                                                          for s in self.symbols}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reset_lock = asyncio.Lock()
        self._last_reset = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> asyncio.Task[None]:
        return asyncio.create_task(self.run(), name=f"streams-{self.adapter.exchange_id}")

    async def run(self) -> None:
        self._stop.clear()
        self._tasks = [asyncio.create_task(self._loop(kind, symbol), name=f"stream-{kind}-{symbol}")
                       for kind in self.kinds for symbol in self.symbols]
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def total(self, name: str) -> int:
        return sum(int(getattr(s, name)) for s in self.stats.values())

    # ------------------------------------------------------------------ one stream
    async def _watch(self, kind: str, symbol: str) -> Any:
        if kind == "ticker":
            return await self.adapter.watch_ticker(symbol)
        if kind == "book":
            return await self.adapter.watch_order_book(symbol, self.book_depth)
        if kind == "trades":
            return await self.adapter.watch_trades(symbol)
        return await self.adapter.watch_ohlcv(symbol, self.timeframe)

    async def _loop(self, kind: str, symbol: str) -> None:
        stats = self.stats[(kind, symbol)]
        failures = 0
        while not self._stop.is_set():
            try:
                update = await asyncio.wait_for(self._watch(kind, symbol), timeout=self.stale_after_s)
            except TimeoutError:
                stats.stale += 1
                await self._status(kind, symbol, "stale", f"no update for {self.stale_after_s:g}s")
                await self._resubscribe()
                continue
            except asyncio.CancelledError:
                raise
            except (errors.UnknownSymbol, errors.UnsupportedOperation, errors.AuthenticationFailed) as exc:
                stats.errors += 1
                stats.last_error = str(exc)
                await self._status(kind, symbol, "error", str(exc))
                log.error("stream %s %s stopped: %s", kind, symbol, exc)
                return
            except Exception as exc:
                stats.errors += 1
                stats.last_error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, errors.SequenceGap):
                    stats.gaps += 1
                    await self._status(kind, symbol, "gap", str(exc))
                failures += 1
                delay = self.backoff.backoff(min(failures, 30))
                await self._status(kind, symbol, "reconnect", f"{stats.last_error}; retry in {delay:.2f}s")
                stats.reconnects += 1
                STREAM_RECONNECTS.labels(self.adapter.exchange_id, kind).inc()
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                    return
                except TimeoutError:
                    pass
                await self._resubscribe()
                continue
            failures = 0
            stats.updates += 1
            stats.last_update_ms = self._clock()
            ts = _update_ts(update)
            if ts is not None:
                STREAM_LAG.labels(self.adapter.exchange_id, kind).set(max(0.0, (stats.last_update_ms - ts) / 1000.0))
            out = self._normalise(kind, symbol, update, stats)
            if out:
                stats.events += await self.bus.publish_many(out)

    async def _resubscribe(self) -> None:
        reset = getattr(self.adapter, "reset_streams", None)
        if reset is None:
            return
        async with self._reset_lock:
            # one reset serves every stream that failed at the same moment
            if time.monotonic() - self._last_reset < 0.05:
                return
            self._last_reset = time.monotonic()
            with contextlib.suppress(Exception):
                await reset()

    async def _status(self, kind: str, symbol: str, status: str, detail: str) -> None:
        with contextlib.suppress(Exception):
            await self.bus.publish(ev.status_event(self.adapter.exchange_id, symbol, kind, status, detail,
                                                   self._clock()))

    # ------------------------------------------------------------------ normalisation + checks
    def _lagging(self, ts_ms: int) -> bool:
        return self._clock() - ts_ms > self.stale_after_s * 1000

    def _normalise(self, kind: str, symbol: str, update: Any, stats: StreamStats) -> list[Event]:
        out: list[Event] = []
        exchange = self.adapter.exchange_id
        if kind == "ticker":
            ticker: Ticker = update
            if self._lagging(ticker.timestamp_ms):
                stats.stale += 1
                out.append(ev.status_event(exchange, symbol, kind, "stale", "exchange timestamp lags the clock",
                                           self._clock()))
            out.append(ev.ticker_event(ticker))
        elif kind == "book":
            book: OrderBook = update
            if book.nonce is not None and stats.last_nonce is not None and book.nonce < stats.last_nonce:
                stats.gaps += 1
                out.append(ev.status_event(exchange, symbol, kind, "gap",
                                           f"book nonce went back {stats.last_nonce} -> {book.nonce}", self._clock()))
            if book.nonce is not None:
                stats.last_nonce = book.nonce
            if self._lagging(book.timestamp_ms):
                stats.stale += 1
                out.append(ev.status_event(exchange, symbol, kind, "stale", "book timestamp lags the clock",
                                           self._clock()))
            if book.bids and book.asks and book.bids[0].price >= book.asks[0].price:
                stats.gaps += 1
                out.append(ev.status_event(exchange, symbol, kind, "gap", "crossed book", self._clock()))
            out.append(ev.book_event(book, self.book_depth))
        elif kind == "trades":
            trades: list[Trade] = update
            for trade in trades:
                tid = trade.trade_id or f"{trade.timestamp_ms}:{trade.price}:{trade.amount}"
                if tid in stats.seen_trade_ids:
                    continue
                stats.seen_trade_ids.add(tid)
                if trade.trade_id is not None and trade.trade_id.isdigit():
                    n = int(trade.trade_id)
                    if stats.last_trade_id is not None and n > stats.last_trade_id + 1:
                        stats.gaps += 1
                        out.append(ev.status_event(exchange, symbol, kind, "gap",
                                                   f"trade ids skipped {stats.last_trade_id} -> {n}", self._clock()))
                    stats.last_trade_id = max(n, stats.last_trade_id or n)
                out.append(ev.trade_event(trade))
            if len(stats.seen_trade_ids) > 10_000:
                stats.seen_trade_ids = set(list(stats.seen_trade_ids)[-5_000:])
        else:
            candles: list[Candle] = update
            step = timeframe_ms(self.timeframe)
            for candle in candles:
                if stats.last_candle_ms is not None and candle.timestamp_ms > stats.last_candle_ms + step:
                    stats.gaps += 1
                    out.append(ev.status_event(exchange, symbol, kind, "gap",
                                               f"candles skipped {stats.last_candle_ms} -> {candle.timestamp_ms}",
                                               self._clock()))
                stats.last_candle_ms = max(candle.timestamp_ms, stats.last_candle_ms or 0)
                out.append(ev.candle_event(exchange, symbol, self.timeframe, candle))
        return out


def _update_ts(update: Any) -> int | None:
    """The exchange timestamp (ms) of a stream update: an object or dict with one, or the last of a list."""
    if isinstance(update, list | tuple) and update:
        update = update[-1]
    ts = getattr(update, "timestamp_ms", None)
    if ts is None and isinstance(update, dict):
        ts = update.get("timestamp_ms") or update.get("timestamp")
    if ts is None and isinstance(update, list | tuple) and update and isinstance(update[0], int | float):
        ts = update[0]
    return int(ts) if isinstance(ts, int | float) else None
