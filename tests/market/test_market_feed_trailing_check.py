"""The book feed rate-limits stop checks per symbol, but a book that arrives inside the interval is checked when it
ends: a move through a stop right before the market goes quiet must not wait for a book that never comes."""

from __future__ import annotations

import asyncio
from typing import Any

from core.events import Event
from tests.money.helpers import make_book
from trading.market_data.events import book_event
from trading.market_data.live import BookFeed
from trading.types import OrderBook


class Sink:
    """What the feed needs from the trading service: books in, armed stops, the exit price, stop evaluation."""

    def __init__(self) -> None:
        self.venues = {"alpha": object()}
        self.book: OrderBook | None = None
        self.checked: list[float] = []

    def set_book(self, venue: str, book: OrderBook) -> None:
        self.book = book

    def stops(self, symbol: str) -> list[dict[str, Any]]:
        return [{"symbol": symbol}]

    def exit_price(self, symbol: str) -> float | None:
        return self.book.best_bid if self.book else None

    async def on_price(self, symbol: str, price: float) -> list[Any]:
        self.checked.append(price)
        return []


class NoBus:
    async def ack(self, *_a: Any) -> None:
        return None


def _event(mid: float, ts: int, n: int) -> Event:
    book = make_book("BTC/USDT", mid)
    book = OrderBook(book.exchange, book.symbol, ts, book.bids, book.asks)
    return Event("market.book", book_event(book).payload, id=f"b{n}")


async def test_a_book_inside_the_interval_is_checked_when_it_ends() -> None:
    sink = Sink()
    feed = BookFeed(NoBus(), sink, stop_check_interval_s=0.05)  # type: ignore[arg-type]
    await feed.handle(_event(50_000.0, 1, 1))
    await feed.handle(_event(49_000.0, 2, 2))  # inside the interval: deferred, not dropped
    await feed.handle(_event(47_000.0, 3, 3))  # still inside: the deferred check will see this, the latest book
    assert len(sink.checked) == 1
    await asyncio.sleep(0.12)
    assert len(sink.checked) == 2 and sink.checked[-1] < 47_000.0
    assert feed.stats.stop_checks == 2 and not feed.stats.errors


async def test_close_cancels_a_deferred_check() -> None:
    sink = Sink()
    feed = BookFeed(NoBus(), sink, stop_check_interval_s=0.05)  # type: ignore[arg-type]
    await feed.handle(_event(50_000.0, 1, 1))
    await feed.handle(_event(49_000.0, 2, 2))
    await feed.close()
    await asyncio.sleep(0.1)
    assert len(sink.checked) == 1
