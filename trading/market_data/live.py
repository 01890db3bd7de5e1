"""Live streams wired into the running desk: `MarketStreamer` publishes normalised events to the bus and a
`BookFeed` consumer turns `market.book` events into the trading service's books, evaluating armed stops at the
streamed bid. The service's REST stop-watch poll keeps running as the fallback for a silent or broken stream.

    streams = await start_market_streams(adapter, service, symbols=["BTC/USDT"])   # on the adapter's loop
    ...
    await streams.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.events import Event, EventBus, InProcessBus
from trading.exchanges.base import ExchangeAdapter
from trading.exchanges.retry import RetryPolicy
from trading.market_data.events import TOPIC_BOOK, book_from_payload
from trading.market_data.streams import MarketStreamer
from trading.types import OrderBook

log = logging.getLogger(__name__)
FEED_GROUP = "oms-books"


class BookSink(Protocol):
    """What the feed needs from the trading service (`trading.oms.service.TradingService`)."""

    venues: dict[str, Any]

    def set_book(self, venue: str, book: OrderBook) -> None: ...

    def stops(self, symbol: str | None = None) -> list[dict[str, Any]]: ...

    def exit_price(self, symbol: str) -> float | None: ...

    def on_price(self, symbol: str, price: float) -> Awaitable[list[Any]]: ...


@dataclass
class FeedStats:
    books: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    foreign: int = 0
    stop_checks: int = 0
    stop_actions: int = 0
    errors: int = 0
    last_error: str | None = None
    last_ts: dict[tuple[str, str], int] = field(default_factory=dict)


class BookFeed:
    """Consumes `market.book` and feeds `sink.set_book`; at most every `stop_check_interval_s` per symbol (the check
    reads Mongo) it evaluates the symbol's armed stops at the best fresh bid. A book that arrives inside that interval
    is checked when it ends (trailing edge): the last move before a quiet market is never left unchecked.
    Idempotent: delivery is at-least-once, so an event id seen recently, or a book older than the last one fed for
    its venue and symbol, is skipped."""

    def __init__(
        self,
        bus: EventBus,
        sink: BookSink,
        *,
        group: str = FEED_GROUP,
        consumer: str = "feed",
        stop_check_interval_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus = bus
        self.sink = sink
        self.group = group
        self.consumer = consumer
        self.stop_check_interval_s = stop_check_interval_s
        self._clock = clock
        self.stats = FeedStats()
        self._seen: deque[str] = deque(maxlen=4096)
        self._seen_set: set[str] = set()
        self._last_check: dict[str, float] = {}
        self._deferred: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        async for event in self.bus.subscribe(TOPIC_BOOK, self.group, self.consumer):
            try:
                await self.handle(event)
            except Exception as exc:  # one bad event must not stop the feed; the REST poll still covers stops
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("book feed: event %s failed", event.id)
            await self.bus.ack(TOPIC_BOOK, self.group, event.id)

    def _first_time(self, event_id: str) -> bool:
        if event_id in self._seen_set:
            return False
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(event_id)
        self._seen_set.add(event_id)
        return True

    async def handle(self, event: Event) -> None:
        if not self._first_time(event.id):
            self.stats.duplicates += 1
            return
        book = book_from_payload(event.payload)
        if book.exchange not in self.sink.venues:
            self.stats.foreign += 1
            return
        key = (book.exchange, book.symbol)
        if book.timestamp_ms < self.stats.last_ts.get(key, 0):
            self.stats.out_of_order += 1
            return
        self.stats.last_ts[key] = book.timestamp_ms
        self.sink.set_book(book.exchange, book)
        self.stats.books += 1
        since = self._clock() - self._last_check.get(book.symbol, float("-inf"))
        if since < self.stop_check_interval_s:
            if book.symbol not in self._deferred:
                self._deferred[book.symbol] = asyncio.create_task(
                    self._check_later(book.symbol, self.stop_check_interval_s - since), name="book-feed-check"
                )
            return
        await self._check(book.symbol)

    async def _check_later(self, symbol: str, delay_s: float) -> None:
        try:
            await asyncio.sleep(delay_s)
            self._deferred.pop(symbol, None)  # a book arriving during the check below schedules the next one
            await self._check(symbol)
        except Exception as exc:  # as in run(): the REST poll still covers stops
            self.stats.errors += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("book feed: deferred stop check for %s failed", symbol)
        finally:
            if self._deferred.get(symbol) is asyncio.current_task():
                self._deferred.pop(symbol, None)

    async def _check(self, symbol: str) -> None:
        self._last_check[symbol] = self._clock()
        if not self.sink.stops(symbol):
            return
        price = self.sink.exit_price(symbol)
        if price is None:
            return
        self.stats.stop_checks += 1
        self.stats.stop_actions += len(await self.sink.on_price(symbol, price))

    async def close(self) -> None:
        """Cancel deferred checks (the streams are stopping)."""
        tasks = list(self._deferred.values())
        self._deferred.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class MarketStreams:
    """The streamer and the book feed of one venue, started and stopped together on the adapter's loop."""

    def __init__(self, streamer: MarketStreamer, feed: BookFeed, bus: EventBus, *, own_bus: bool) -> None:
        self.streamer = streamer
        self.feed = feed
        self.bus = bus
        self._own_bus = own_bus
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [self.streamer.start(), asyncio.create_task(self.feed.run(), name="book-feed")]

    async def stop(self) -> None:
        await self.streamer.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.feed.close()
        if self._own_bus:
            await self.bus.close()

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)


async def start_market_streams(
    adapter: ExchangeAdapter,
    sink: BookSink,
    *,
    symbols: Sequence[str],
    kinds: Sequence[str] = ("ticker", "book"),
    bus: EventBus | None = None,
    stale_after_s: float = 30.0,
    backoff: RetryPolicy | None = None,
) -> MarketStreams:
    """Start streams for `symbols` on `adapter` and the book feed into `sink`. Must run on the loop that owns the
    adapter (the shared exchange loop). Without `bus`, an in-process bus: the books a replica keeps are its own."""
    kinds = list(kinds)
    if "book" not in kinds:
        kinds.append("book")  # the feed is the point of wiring streams in
    own = bus is None
    the_bus: EventBus = InProcessBus() if bus is None else bus
    if isinstance(the_bus, InProcessBus):
        # groups exist before the first publish, so that no book is dropped; other topics have no consumer yet
        the_bus.register(TOPIC_BOOK, FEED_GROUP)
    streamer = MarketStreamer(adapter, the_bus, symbols=symbols, kinds=kinds, stale_after_s=stale_after_s,
                              backoff=backoff)
    streams = MarketStreams(streamer, BookFeed(the_bus, sink), the_bus, own_bus=own)
    streams.start()
    log.info("market streams on %s: %s for %s", adapter.exchange_id, ",".join(kinds), ",".join(symbols))
    return streams

