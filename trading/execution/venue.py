"""The small interface the execution layer needs from a venue.

Both `trading.execution.paper.PaperExchange` and the live ccxt adapter (`trading.exchanges`) satisfy it.
Errors: `trading.exchanges.errors.OrderRejected` (and subclasses) means the venue definitely refused the
order; any other exception from `create_order` means the outcome is unknown: the order becomes `unresolved`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from trading.types import Balance, ExchangeOrder, Market, OrderBook, OrderType, Side


@runtime_checkable
class OrderVenue(Protocol):
    exchange_id: str

    def market(self, symbol: str) -> Market: ...

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook: ...

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


@runtime_checkable
class NativeStopVenue(Protocol):
    """A venue that can hold a sell stop itself (live ccxt venues whose markets list a stop order type), so the
    position stays protected while the desk is down. Paper venues don't: the desk watches their stops."""

    def native_stop_kind(self, symbol: str) -> str | None:
        """'stop_market', 'stop_limit', or None for a symbol the venue cannot hold a stop for."""
        ...

    def native_trailing(self, symbol: str) -> bool:
        """Whether the venue can also trail that stop below the highest price since placement."""
        ...

    async def create_stop_order(
        self,
        symbol: str,
        side: Side,
        amount: float,
        trigger_price: float,
        limit_price: float | None = None,
        *,
        client_order_id: str,
        trail_pct: float | None = None,
    ) -> ExchangeOrder: ...


@runtime_checkable
class MarketSource(Protocol):
    """Read-only market access (what the paper exchange fills against)."""

    exchange_id: str

    def market(self, symbol: str) -> Market: ...

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook: ...


TERMINAL_EXCHANGE_STATUSES = frozenset({"closed", "canceled", "cancelled", "rejected", "expired"})
