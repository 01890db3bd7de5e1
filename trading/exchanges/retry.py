"""Retry policy per ccxt exception class.

Retried with exponential backoff and full jitter: network errors, timeouts, exchange-not-available (5xx),
DDoS protection (418) and rate limits (429, honouring Retry-After), malformed responses on reads.
Never retried: invalid order, insufficient funds, bad symbol, authentication, any other exchange error.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import ccxt.async_support as ccxt

from trading.exchanges import errors

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4  # total tries, first included
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    max_retry_after_s: float = 30.0  # a longer Retry-After is not waited for: the error surfaces
    jitter: bool = True

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number `attempt` (1-based): full jitter over an exponential ceiling."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        if not self.jitter:
            return ceiling
        return (rng or random).uniform(ceiling / 2, ceiling)


NO_RETRY = RetryPolicy(attempts=1)

# Order matters: subclasses before their parents.
_FATAL: tuple[type[BaseException], ...] = (
    ccxt.BadSymbol,
    ccxt.InsufficientFunds,
    ccxt.OrderNotFound,
    ccxt.InvalidOrder,
    ccxt.AuthenticationError,
    ccxt.PermissionDenied,
    ccxt.AccountSuspended,
    ccxt.NotSupported,
    ccxt.BadRequest,
    ccxt.ArgumentsRequired,
)
_RETRYABLE: tuple[type[BaseException], ...] = (
    ccxt.RateLimitExceeded,
    ccxt.DDoSProtection,
    ccxt.RequestTimeout,
    ccxt.ExchangeNotAvailable,
    ccxt.InvalidNonce,
    ccxt.NetworkError,
    ccxt.BadResponse,
    ccxt.OperationFailed,  # binance -1000/-1001 (unknown error, internal disconnect): transient by definition
)


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, _FATAL):
        return False
    return isinstance(exc, (*_RETRYABLE, asyncio.TimeoutError, errors.ExchangeUnavailable))


def translate(exc: BaseException, exchange: str, *, symbols: list[str] | None = None,
              symbol: str | None = None, retry_after_s: float | None = None) -> errors.ExchangeError:
    """Map a ccxt exception to the project's error classes, keeping ccxt's message."""
    msg = f"{exchange}: {exc}"
    if isinstance(exc, errors.ExchangeError):
        return exc
    if isinstance(exc, ccxt.BadSymbol) and symbol is not None:
        return errors.UnknownSymbol(symbol, symbols or [], exchange=exchange)
    if isinstance(exc, ccxt.InsufficientFunds):
        return errors.InsufficientFunds(msg, exchange=exchange)
    if isinstance(exc, ccxt.OrderNotFound):
        return errors.OrderNotFound(msg, exchange=exchange)
    if isinstance(exc, ccxt.InvalidOrder):
        return errors.OrderRejected(msg, exchange=exchange)
    if isinstance(exc, (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended)):
        return errors.AuthenticationFailed(msg, exchange=exchange)
    if isinstance(exc, ccxt.NotSupported):
        return errors.UnsupportedOperation(msg, exchange=exchange)
    if isinstance(exc, ccxt.ChecksumError):
        return errors.SequenceGap(msg, exchange=exchange)
    if isinstance(exc, ccxt.DDoSProtection):  # 429 and 418 (binance raises DDoSProtection for both)
        return errors.RateLimited(msg, exchange=exchange, retry_after_s=retry_after_s)
    if isinstance(exc, ccxt.BadResponse):
        return errors.BadExchangeResponse(msg, exchange=exchange)
    if isinstance(exc, (ccxt.OperationFailed, asyncio.TimeoutError)):
        return errors.ExchangeUnavailable(msg or f"{exchange}: timeout", exchange=exchange)
    return errors.ExchangeError(msg, exchange=exchange)


async def with_retry(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    retry_after: Callable[[BaseException], float | None] = lambda exc: None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `call` until it succeeds, a fatal error occurs, or attempts run out (the last error is re-raised)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as exc:
            if attempt >= policy.attempts or not is_retryable(exc):
                raise
            delay = policy.backoff(attempt)
            hinted = retry_after(exc)
            if hinted is not None:
                if hinted > policy.max_retry_after_s:
                    raise
                delay = max(delay, hinted)
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            await sleep(delay)
