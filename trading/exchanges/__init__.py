"""Exchange adapters: ccxt (any venue), `sim` (seeded generator), `replay` (stored candles).

Public API:
- `open_exchange(exchange_id, *, api_url=None, simulated=False, ...) -> ExchangeAdapter` (async methods)
- `get_market_source(settings=None, exchange_id=None) -> MarketSource` (sync facade, sim fallback, `.simulated`)
- `open_replay(db, source_exchange, timeframe) -> ReplayExchange` (stored candles, no look-ahead)
- errors: `ExchangeError`, `UnknownSymbol`, `UnknownExchange`, `ExchangeUnavailable`, `RateLimited`,
  `OrderRejected`, `InsufficientFunds`, `OrderNotFound`, `OrderOutcomeUnknown`
"""

from trading.exchanges.base import TIMEFRAME_MS, ExchangeAdapter, timeframe_floor, timeframe_ms
from trading.exchanges.errors import (
    AuthenticationFailed,
    BadExchangeResponse,
    ExchangeError,
    ExchangeUnavailable,
    InsufficientFunds,
    OrderNotFound,
    OrderNotSent,
    OrderOutcomeUnknown,
    OrderRejected,
    RateLimited,
    SequenceGap,
    UnknownExchange,
    UnknownSymbol,
    UnsupportedOperation,
)
from trading.exchanges.factory import (
    MarketSource,
    get_market_source,
    open_exchange,
    open_replay,
    reset_market_sources,
)
from trading.exchanges.retry import RetryPolicy
from trading.exchanges.runner import background

__all__ = [
    "TIMEFRAME_MS",
    "AuthenticationFailed",
    "BadExchangeResponse",
    "ExchangeAdapter",
    "ExchangeError",
    "ExchangeUnavailable",
    "InsufficientFunds",
    "MarketSource",
    "OrderNotFound",
    "OrderNotSent",
    "OrderOutcomeUnknown",
    "OrderRejected",
    "RateLimited",
    "RetryPolicy",
    "SequenceGap",
    "UnknownExchange",
    "UnknownSymbol",
    "UnsupportedOperation",
    "background",
    "get_market_source",
    "open_exchange",
    "open_replay",
    "reset_market_sources",
    "timeframe_floor",
    "timeframe_ms",
]
