"""Exchange errors the rest of the project sees (ccxt's classes never leak past the adapter).

Each error says whether retrying can help. Unknown symbols and exchanges list the nearby valid names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ExchangeError(Exception):
    """Base class. `retryable` is a hint for callers that retry at a higher level (the adapter already did)."""

    retryable = False

    def __init__(self, message: str, *, exchange: str | None = None) -> None:
        super().__init__(message)
        self.exchange = exchange


class ExchangeUnavailable(ExchangeError):
    """Network failure, timeout, 5xx, DDoS protection: retried with backoff, then raised."""

    retryable = True


class RateLimited(ExchangeUnavailable):
    def __init__(self, message: str, *, exchange: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message, exchange=exchange)
        self.retry_after_s = retry_after_s


class SequenceGap(ExchangeUnavailable):
    """A stream skipped updates (order book sequence/checksum mismatch): resubscribe and resnapshot."""


class BadExchangeResponse(ExchangeUnavailable):
    """The venue answered something unparseable (malformed JSON, empty body)."""


class UnknownExchange(ExchangeError, ValueError):
    def __init__(self, exchange_id: str, valid: Iterable[str]) -> None:
        near = suggest(exchange_id, valid)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        super().__init__(f"unknown exchange '{exchange_id}'{hint}", exchange=exchange_id)
        self.suggestions = near


class UnknownSymbol(ExchangeError, ValueError):
    def __init__(self, symbol: str, valid: Iterable[str], *, exchange: str | None = None) -> None:
        near = suggest(symbol, valid)
        where = f" on {exchange}" if exchange else ""
        hint = f"; nearby valid symbols: {', '.join(near)}" if near else ""
        super().__init__(f"unknown symbol '{symbol}'{where}{hint}", exchange=exchange)
        self.symbol = symbol
        self.suggestions = near


class UnsupportedOperation(ExchangeError):
    pass


class AuthenticationFailed(ExchangeError):
    pass


class OrderRejected(ExchangeError):
    """Invalid order (size, price, filters, duplicate client id): never retried."""


class InsufficientFunds(OrderRejected):
    pass


class OrderNotSent(OrderRejected):
    """The order certainly did not reach the matching engine (rate limited, connection refused, venue down before
    sending). Safe to try again later with the same client order id."""

    retryable = True


class OrderNotFound(ExchangeError):
    pass


class OrderOutcomeUnknown(ExchangeError):
    """An order was sent but the reply was lost and a lookup by client order id could not settle it.

    The OMS marks such orders `unresolved` and reconciles later; it must never re-send them blindly.
    """

    def __init__(self, message: str, *, exchange: str | None = None, client_order_id: str | None = None) -> None:
        super().__init__(message, exchange=exchange)
        self.client_order_id = client_order_id


def suggest(name: str, valid: Iterable[str], n: int = 5) -> list[str]:
    """Nearby names: close spellings first, then names sharing the base or quote asset, case-insensitively."""
    pool = sorted(set(valid))
    if not pool:
        return []
    upper = {v.upper(): v for v in pool}
    key = name.upper().replace("-", "/").replace("_", "/")
    close = [upper[m] for m in difflib.get_close_matches(key, list(upper), n=n, cutoff=0.6)]
    if len(close) < n and "/" in key:
        base = key.split("/")[0]
        close += [v for v in pool if v.upper().startswith(base + "/") and v not in close][: n - len(close)]
    if len(close) < n and "/" not in key:
        close += [v for v in pool if v.upper().startswith(key + "/") and v not in close][: n - len(close)]
    return close[:n]
