"""Opening venues: `open_exchange` (async adapters) and `get_market_source` (sync facade with offline fallback)."""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from trading.exchanges import errors
from trading.exchanges.base import ExchangeAdapter
from trading.exchanges.ccxt_adapter import CcxtExchange, known_exchanges
from trading.exchanges.retry import RetryPolicy
from trading.exchanges.runner import BackgroundLoop, background
from trading.exchanges.sim import SimExchange
from trading.types import Candle, Market, OrderBook, Ticker, Trade

log = logging.getLogger(__name__)
T = TypeVar("T")

SIM_IDS = ("sim",)
FALLBACK_RETRY_S = 60.0  # after falling back to sim, try the real venue again after this long


def open_exchange(
    exchange_id: str,
    *,
    api_url: str | None = None,
    ws_url: str | None = None,
    simulated: bool = False,
    api_key: str | None = None,
    secret: str | None = None,
    password: str | None = None,
    timeout_ms: int = 10_000,
    retry: RetryPolicy | None = None,
    seed: int = 7,
    clock: Callable[[], int] | None = None,
    stream_interval_s: float = 1.0,
    options: dict[str, Any] | None = None,
) -> ExchangeAdapter:
    """An async adapter for `exchange_id` (any ccxt id, or 'sim'). No I/O happens here.

    `simulated=True` (or id 'sim') gives a SimExchange named after `exchange_id`, with that venue's fees.
    `api_url` replaces the origin of the venue's REST URLs (a loopback fake in tests); `ws_url` its websocket origin.
    """
    exchange_id = exchange_id.strip().lower()
    if simulated or exchange_id in SIM_IDS:
        if exchange_id not in SIM_IDS and exchange_id not in known_exchanges():
            raise errors.UnknownExchange(exchange_id, [*SIM_IDS, *known_exchanges()])
        return SimExchange(exchange_id, seed=seed, clock=clock, stream_interval_s=stream_interval_s)
    if exchange_id not in known_exchanges():
        raise errors.UnknownExchange(exchange_id, [*SIM_IDS, *known_exchanges()])
    return CcxtExchange(exchange_id, api_url=api_url, ws_url=ws_url, api_key=api_key, secret=secret,
                        password=password, timeout_ms=timeout_ms, retry=retry, options=options)


def open_replay(db: Any, source_exchange: str, timeframe: str = "1h", **kwargs: Any) -> ExchangeAdapter:
    """A ReplayExchange over candles stored for `source_exchange` (see trading.exchanges.replay)."""
    from trading.exchanges.replay import ReplayExchange
    from trading.market_data.candles import CandleStore

    store = db if isinstance(db, CandleStore) else CandleStore(db)
    return ReplayExchange(store, source_exchange=source_exchange, timeframe=timeframe, **kwargs)


class MarketSource:
    """A sync facade over one adapter living on the shared background loop (tools, CLI, HTTP use this).

    `simulated` says the data is generated (the reply must say so); `fallback_reason` says why, when the real venue
    could not be reached. Async code can await `arun(source.adapter.fetch_x(...))`.
    """

    def __init__(self, adapter: ExchangeAdapter, *, requested: str, fallback_reason: str | None = None,
                 loop: BackgroundLoop = background, timeout_s: float = 60.0) -> None:
        self.adapter = adapter
        self.requested = requested
        self.fallback_reason = fallback_reason
        self.created = time.monotonic()
        self._loop = loop
        self._timeout_s = timeout_s

    @property
    def exchange_id(self) -> str:
        return self.adapter.exchange_id

    @property
    def simulated(self) -> bool:
        return bool(self.adapter.simulated)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coro, self._timeout_s)

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        return await self._loop.arun(coro)

    def load_markets(self) -> dict[str, Market]:
        return self.run(self.adapter.load_markets())

    def market(self, symbol: str) -> Market:
        self.load_markets()
        return self.adapter.market(symbol)

    @property
    def symbols(self) -> list[str]:
        self.load_markets()
        return self.adapter.symbols

    def fetch_ticker(self, symbol: str) -> Ticker:
        return self.run(self.adapter.fetch_ticker(symbol))

    def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        return self.run(self.adapter.fetch_order_book(symbol, limit))

    def fetch_ohlcv(self, symbol: str, timeframe: str = "1h", since: int | None = None,
                    limit: int = 500) -> list[Candle]:
        return self.run(self.adapter.fetch_ohlcv(symbol, timeframe, since, limit))

    def fetch_trades(self, symbol: str, since: int | None = None, limit: int = 100) -> list[Trade]:
        return self.run(self.adapter.fetch_trades(symbol, since, limit))

    def close(self) -> None:
        self.run(self.adapter.close())


_sources: dict[tuple[Any, ...], MarketSource] = {}
_sources_lock = threading.Lock()


def _settings_value(settings: Any, name: str, default: Any = None) -> Any:
    value = getattr(settings, name, default)
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value() or None
    return value


def get_market_source(settings: Any = None, exchange_id: str | None = None, *,
                      probe_timeout_ms: int | None = None) -> MarketSource:
    """The configured venue as a MarketSource, cached per venue; the simulated venue when it cannot be reached.

    `settings` defaults to `core.settings.get_settings()` (fields exchange_id, exchange_api_url,
    exchange_timeout_ms, exchange_api_key, exchange_secret, simulated_exchange). Unknown exchange ids raise
    UnknownExchange (a configuration error is not an outage). After a fallback the real venue is tried again
    after FALLBACK_RETRY_S seconds.
    """
    if settings is None:
        from core.settings import get_settings

        settings = get_settings()
    venue = (exchange_id or _settings_value(settings, "exchange_id", "binance")).strip().lower()
    api_url = _settings_value(settings, "exchange_api_url")
    force_sim = bool(_settings_value(settings, "simulated_exchange", False)) or venue in SIM_IDS
    timeout_ms = int(_settings_value(settings, "exchange_timeout_ms", 10_000))
    key = (venue, api_url, force_sim)
    with _sources_lock:
        cached = _sources.get(key)
        if cached is not None and (cached.fallback_reason is None
                                   or time.monotonic() - cached.created < FALLBACK_RETRY_S):
            return cached
        if force_sim:
            source = MarketSource(open_exchange(venue, simulated=True), requested=venue)
            _sources[key] = source
            return source
        adapter = open_exchange(venue, api_url=api_url, timeout_ms=probe_timeout_ms or timeout_ms,
                                api_key=_settings_value(settings, "exchange_api_key"),
                                secret=_settings_value(settings, "exchange_secret"),
                                retry=RetryPolicy(attempts=2, base_delay_s=0.2))
        try:
            background.run(adapter.load_markets(), timeout=(probe_timeout_ms or timeout_ms) / 1000 * 3 + 5)
        except (errors.ExchangeUnavailable, errors.AuthenticationFailed, TimeoutError, OSError) as exc:
            reason = f"{venue} unreachable ({type(exc).__name__}: {str(exc)[:160]}); using simulated data"
            log.warning(reason)
            _close_quietly(adapter)
            source = MarketSource(open_exchange(venue, simulated=True), requested=venue, fallback_reason=reason)
            _sources[key] = source
            return source
        if isinstance(adapter, CcxtExchange):
            adapter.ccxt.timeout = timeout_ms
            adapter.retry = RetryPolicy()
        if cached is not None:
            _close_quietly(cached.adapter)
        source = MarketSource(adapter, requested=venue)
        _sources[key] = source
        return source


def _close_quietly(adapter: ExchangeAdapter) -> None:
    try:
        background.run(adapter.close(), timeout=5)
    except Exception:
        log.debug("closing %s failed", adapter.exchange_id, exc_info=True)


def reset_market_sources() -> None:
    """Close and forget every cached source (tests, settings changes)."""
    with _sources_lock:
        sources = list(_sources.values())
        _sources.clear()
    for source in sources:
        _close_quietly(source.adapter)


atexit.register(reset_market_sources)  # runs before the background loop stops (atexit is LIFO)
