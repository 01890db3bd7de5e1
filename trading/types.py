"""The project's own market types. Exchange adapters normalise into these; everything above reads only these."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


# Kinds of sell stop a venue can hold itself: a market sell when the trigger trades, or a limit sell at a price the
# desk sets below the trigger (Binance spot lists only the limit kind for many pairs).
STOP_MARKET = "stop_market"
STOP_LIMIT = "stop_limit"


def stop_shape_error(symbol: str, kind: str, limit_price: float | None) -> str | None:
    """Why a stop of `kind` cannot be sent with this limit price (a stop-limit needs one, a stop-market has none)."""
    if (limit_price is None) == (kind == STOP_MARKET):
        return None
    detail = "a limit price is required" if kind == STOP_LIMIT else "no limit price"
    return f"{symbol} takes {kind} stops ({detail})"


@dataclass(frozen=True, slots=True)
class Ticker:
    exchange: str
    symbol: str
    timestamp_ms: int
    bid: float | None
    ask: float | None
    last: float
    open_24h: float | None = None
    high_24h: float | None = None
    low_24h: float | None = None
    base_volume_24h: float | None = None
    quote_volume_24h: float | None = None
    change_pct_24h: float | None = None
    simulated: bool = False

    @property
    def mid(self) -> float:
        if self.bid is not None and self.ask is not None and self.bid > 0 and self.ask > 0:
            return (self.bid + self.ask) / 2.0
        return self.last


@dataclass(frozen=True, slots=True)
class BookLevel:
    price: float
    amount: float


@dataclass(frozen=True, slots=True)
class OrderBook:
    exchange: str
    symbol: str
    timestamp_ms: int
    bids: tuple[BookLevel, ...]  # best first (descending price)
    asks: tuple[BookLevel, ...]  # best first (ascending price)
    nonce: int | None = None  # exchange sequence number when the venue provides one
    simulated: bool = False

    @property
    def best_bid(self) -> float | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0].price if self.asks else None

    @property
    def mid(self) -> float | None:
        if self.bids and self.asks:
            return (self.bids[0].price + self.asks[0].price) / 2.0
        return None


@dataclass(frozen=True, slots=True)
class Trade:
    exchange: str
    symbol: str
    timestamp_ms: int
    price: float
    amount: float
    side: Side | None = None
    trade_id: str | None = None


@dataclass(frozen=True, slots=True)
class Candle:
    timestamp_ms: int  # candle open time
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class Market:
    exchange: str
    symbol: str
    base: str
    quote: str
    price_precision: float | None  # tick size
    amount_precision: float | None  # step size
    min_amount: float | None
    min_cost: float | None
    max_amount: float | None = None
    taker_fee: float = 0.001
    maker_fee: float = 0.001
    spot: bool = True
    active: bool = True


@dataclass(slots=True)
class Balance:
    asset: str
    free: float
    used: float = 0.0

    @property
    def total(self) -> float:
        return self.free + self.used


@dataclass(slots=True)
class ExchangeOrder:
    """An order as the exchange reports it (the OMS keeps its own record and reconciles against this)."""

    exchange: str
    symbol: str
    client_order_id: str
    exchange_order_id: str | None
    side: Side
    type: OrderType
    amount: float
    price: float | None
    status: str  # open | closed | canceled | rejected | expired
    filled: float = 0.0
    average: float | None = None
    fee_cost: float = 0.0
    fee_currency: str | None = None
    timestamp_ms: int = 0
    fills: list[Trade] = field(default_factory=list)
    trigger_price: float | None = None  # a stop order's trigger (None for plain orders)
