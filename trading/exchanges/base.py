"""The adapter interface every venue implements (ccxt, sim, replay), plus timeframe helpers."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from trading.exchanges import errors
from trading.types import Balance, Candle, ExchangeOrder, Market, OrderBook, OrderType, Side, Ticker, Trade

TIMEFRAME_MS: dict[str, int] = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}


def timeframe_ms(timeframe: str) -> int:
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise ValueError(f"unknown timeframe '{timeframe}'; valid: {', '.join(TIMEFRAME_MS)}") from None


def timeframe_floor(ts_ms: int, timeframe: str) -> int:
    """Open time of the candle containing `ts_ms` (weekly candles open on Monday 00:00 UTC, like Binance)."""
    step = timeframe_ms(timeframe)
    offset = 4 * 86_400_000 if timeframe == "1w" else 0  # 1970-01-05 was a Monday
    return ((ts_ms - offset) // step) * step + offset


@runtime_checkable
class ExchangeAdapter(Protocol):
    """Async market access for one venue. All prices and sizes are the project's own types."""

    exchange_id: str
    simulated: bool

    async def load_markets(self, reload: bool = False) -> dict[str, Market]: ...

    def market(self, symbol: str) -> Market:
        """The loaded market for `symbol` (call `load_markets` first); UnknownSymbol lists nearby ones."""
        ...

    @property
    def symbols(self) -> list[str]: ...

    async def fetch_ticker(self, symbol: str) -> Ticker: ...

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook: ...

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1h", since: int | None = None, limit: int = 500
    ) -> list[Candle]: ...

    async def fetch_trades(self, symbol: str, since: int | None = None, limit: int = 100) -> list[Trade]: ...

    async def create_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: float,
        price: float | None = None,
        *,
        client_order_id: str,
    ) -> ExchangeOrder: ...

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> ExchangeOrder | None: ...

    async def cancel_order(
        self, symbol: str, *, client_order_id: str | None = None, exchange_order_id: str | None = None
    ) -> ExchangeOrder: ...

    async def fetch_open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]: ...

    async def fetch_balance(self) -> dict[str, Balance]: ...

    async def watch_ticker(self, symbol: str) -> Ticker: ...

    async def watch_order_book(self, symbol: str, limit: int = 20) -> OrderBook: ...

    async def watch_trades(self, symbol: str) -> list[Trade]: ...

    async def watch_ohlcv(self, symbol: str, timeframe: str = "1m") -> list[Candle]: ...

    async def close(self) -> None: ...


class FixedMarkets:
    """Markets known up front (the simulated and replay venues): lookup with the adapter's error for unknown ones."""

    exchange_id: str
    _markets: dict[str, Market]

    async def load_markets(self, reload: bool = False) -> dict[str, Market]:
        return dict(self._markets)

    def market(self, symbol: str) -> Market:
        m = self._markets.get(symbol)
        if m is None:
            raise errors.UnknownSymbol(symbol, self._markets, exchange=self.exchange_id)
        return m

    @property
    def symbols(self) -> list[str]:
        return sorted(self._markets)


def settle_fill(
    quote: list[float], base: list[float], order: ExchangeOrder, qty: float, cost: float, fee: float
) -> None:
    """Move balances ([free, used] per asset) for `qty` filled at total `cost` with `fee` in the quote currency.

    A resting limit order had reserved its funds (quote at the limit price for a buy, base for a sell): release the
    reservation for the filled part, then settle at the fill.
    """
    if order.side is Side.BUY:
        if order.type is OrderType.LIMIT and order.price is not None:
            quote[1] -= qty * order.price
            quote[0] += qty * order.price
        quote[0] -= cost + fee
        base[0] += qty
    else:
        if order.type is OrderType.LIMIT:
            base[1] -= qty
            base[0] += qty
        base[0] -= qty
        quote[0] += cost - fee
