"""Deterministic market sources and venue wrappers for money-path tests."""

from __future__ import annotations

import math
from typing import Any

from trading.execution.paper import PaperExchange
from trading.types import BookLevel, Candle, ExchangeOrder, Market, OrderBook, OrderType, Side


def make_market(symbol: str = "BTC/USDT", venue: str = "alpha", fee: float = 0.001) -> Market:
    base, quote = symbol.split("/")
    return Market(
        exchange=venue,
        symbol=symbol,
        base=base,
        quote=quote,
        price_precision=0.01,
        amount_precision=0.0001,
        min_amount=0.0001,
        min_cost=5.0,
        max_amount=1000.0,
        taker_fee=fee,
        maker_fee=fee,
    )


def make_book(
    symbol: str,
    mid: float,
    *,
    venue: str = "alpha",
    spread: float = 0.0002,
    levels: int = 10,
    size: float = 1.0,
    step_pct: float = 0.0005,
) -> OrderBook:
    bid0 = mid * (1 - spread / 2)
    ask0 = mid * (1 + spread / 2)
    bids = tuple(BookLevel(round(bid0 * (1 - i * step_pct), 2), size) for i in range(levels))
    asks = tuple(BookLevel(round(ask0 * (1 + i * step_pct), 2), size) for i in range(levels))
    return OrderBook(venue, symbol, 0, bids, asks)


class StaticSource:
    """A MarketSource whose books the test sets (price moves are explicit)."""

    def __init__(
        self, venue: str = "alpha", fee: float = 0.001, mids: dict[str, float] | None = None, size: float = 1.0
    ) -> None:
        self.exchange_id = venue
        self.fee = fee
        self.size = size
        self.books: dict[str, OrderBook] = {}
        self.candles: dict[str, list[Candle]] = {}  # what fetch_ohlcv serves (none: the venue has no candles)
        self.ohlcv_calls = 0
        for sym, mid in (mids or {"BTC/USDT": 50_000.0, "ETH/USDT": 3_000.0}).items():
            self.set_mid(sym, mid)

    def set_mid(self, symbol: str, mid: float, **kw: Any) -> None:
        kw.setdefault("size", self.size)
        self.books[symbol] = make_book(symbol, mid, venue=self.exchange_id, **kw)

    def market(self, symbol: str) -> Market:
        if symbol not in self.books:
            raise KeyError(symbol)
        return make_market(symbol, self.exchange_id, self.fee)

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        return self.books[symbol]

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1h", since: int | None = None, limit: int = 500
    ) -> list[Candle]:
        self.ohlcv_calls += 1
        if symbol not in self.candles:
            raise KeyError(f"no candles for {symbol}")
        return self.candles[symbol][-limit:]


def candles_from_returns(start: float, returns: list[float], t0_ms: int = 1_799_000_000_000) -> list[Candle]:
    """Hourly candles whose closes follow `returns` (log returns) from `start`."""
    out: list[Candle] = []
    price = start
    for i, r in enumerate(returns):
        nxt = price * math.exp(r)
        out.append(Candle(t0_ms + i * 3_600_000, price, max(price, nxt), min(price, nxt), nxt, 10.0))
        price = nxt
    return out


class ProcessDied(BaseException):
    """Simulates the process dying: not an Exception, so no handler in the service catches it."""


class CrashAfterSend:
    """Wraps a venue: the order reaches the venue, then the process 'dies' before the answer is recorded."""

    def __init__(self, inner: PaperExchange) -> None:
        self.inner = inner
        self.exchange_id = inner.exchange_id
        self.creates = 0
        self.crash = True

    def market(self, symbol: str) -> Market:
        return self.inner.market(symbol)

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        return await self.inner.fetch_order_book(symbol, limit)

    async def create_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: float,
        price: float | None = None,
        *,
        client_order_id: str,
    ) -> ExchangeOrder:
        self.creates += 1
        eo = await self.inner.create_order(symbol, side, type, amount, price, client_order_id=client_order_id)
        if self.crash:
            raise ProcessDied("killed after send")
        return eo

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        return await self.inner.fetch_order_by_client_id(symbol, client_order_id)

    async def cancel_order(
        self, symbol: str, *, client_order_id: str | None = None, exchange_order_id: str | None = None
    ) -> ExchangeOrder:
        return await self.inner.cancel_order(
            symbol, client_order_id=client_order_id, exchange_order_id=exchange_order_id
        )

    async def fetch_open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        return await self.inner.fetch_open_orders(symbol)

    async def fetch_balance(self) -> Any:
        return await self.inner.fetch_balance()


class LostReply(CrashAfterSend):
    """The order reaches the venue but the reply is lost (a network error, not a crash)."""

    async def create_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: float,
        price: float | None = None,
        *,
        client_order_id: str,
    ) -> ExchangeOrder:
        self.creates += 1
        await self.inner.create_order(symbol, side, type, amount, price, client_order_id=client_order_id)
        raise TimeoutError("reply lost")


class FakeClock:
    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)
