"""Build the process-wide TradingService from settings (paper by default; live only when explicitly enabled).

All of the service's async work runs on the shared exchange loop (`trading.exchanges.runner.background`), where the
venue adapters live: sync callers use `run(...)`, async callers `await arun(...)`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from pymongo.database import Database

from trading.exchanges.runner import background
from trading.execution.paper import PaperExchange
from trading.execution.venue import OrderVenue
from trading.oms.service import ServiceConfig, TradingService
from trading.risk.limits import limits_from_settings

log = logging.getLogger(__name__)
T = TypeVar("T")

_lock = threading.Lock()
_service: TradingService | None = None


def run(coro: Coroutine[Any, Any, T], timeout: float | None = 120.0) -> T:
    return background.run(coro, timeout)


async def arun(coro: Coroutine[Any, Any, T]) -> T:
    return await background.arun(coro)


def live_enabled(settings: Any) -> bool:
    key = getattr(settings, "exchange_api_key", None)
    secret = getattr(settings, "exchange_secret", None)
    return (
        bool(getattr(settings, "live_trading", False))
        and key is not None
        and secret is not None
        and bool(key.get_secret_value())
        and bool(secret.get_secret_value())
    )


def build_service(settings: Any, db: Database[dict[str, Any]], *, timers: bool = True) -> TradingService:
    """The service on the configured venues, reconciled. `timers` starts the reconcile and stop-watch timers (a
    one-shot CLI command does without: it exits before they would tick)."""
    from trading.exchanges.factory import get_market_source

    live = live_enabled(settings)
    venues: dict[str, OrderVenue] = {}
    initial: dict[str, dict[str, float]] = {}
    paper_usdt = float(getattr(settings, "paper_initial_usdt", 100_000.0))
    for exchange_id in getattr(settings, "exchanges", None) or [settings.exchange_id]:
        source = get_market_source(settings, exchange_id)
        adapter: Any = source.adapter
        run(adapter.load_markets())
        if live:
            if source.fallback_reason:
                raise RuntimeError(f"live trading refused: {exchange_id} unreachable ({source.fallback_reason})")
            venues[adapter.exchange_id] = adapter
            balances = run(adapter.fetch_balance())
            initial[adapter.exchange_id] = {a: b.total for a, b in balances.items() if b.total}
        else:
            # paper on a real venue's data holds stops the way that venue would (the simulator's venue holds none)
            kinds = getattr(adapter, "native_stop_kind", None) if getattr(settings, "native_stops", True) else None
            venues[adapter.exchange_id] = PaperExchange(
                adapter, balances={"USDT": paper_usdt}, db=db, exchange_id=adapter.exchange_id, stop_kinds=kinds
            )
            initial[adapter.exchange_id] = {"USDT": paper_usdt}
    approvers = getattr(settings, "slack_approvers", None) or None
    config = ServiceConfig(
        approval_ttl_s=int(getattr(settings, "approval_ttl_s", 900)),
        four_eyes=bool(getattr(settings, "four_eyes", False)),
        approvers=None if approvers is None else frozenset(approvers),
        live=live,
        native_stops=bool(getattr(settings, "native_stops", True)),
        native_stop_limit_pct=float(getattr(settings, "native_stop_limit_pct", 0.01)),
    )
    service = TradingService(db, venues, limits_from_settings(settings), config=config, initial_balances=initial)
    run(
        service.start(
            reconcile_interval_s=(float(getattr(settings, "reconcile_interval_s", 30.0)) or None) if timers else None,
            stop_watch_interval_s=(float(getattr(settings, "stop_watch_interval_s", 2.0)) or None) if timers else None,
        )
    )
    log.info("trading service ready: %s mode, venues %s", "live" if live else "paper", ", ".join(venues))
    return service


def get_trading_service(
    settings: Any = None, db: Database[dict[str, Any]] | None = None, *, timers: bool = True
) -> TradingService:
    """The process-wide service (built on first use; `timers` as in `build_service`)."""
    global _service
    if _service is not None:
        return _service
    with _lock:
        if _service is None:
            if settings is None:
                from core.settings import get_settings

                settings = get_settings()
            if db is None:
                from core.storage import get_db

                db = get_db(settings)
            _service = build_service(settings, db, timers=timers)
        return _service


def set_trading_service(service: TradingService | None) -> None:
    """Install a service (tests, the desk wiring its own venues); a replaced one's timers stop."""
    global _service
    with _lock:
        if _service is not None and _service is not service:
            _service.cancel_timers()
        _service = service


def stop_timers() -> None:
    """Stop the process-wide service's timers, if one was built (a CLI command ending, a worker shutting down)."""
    with _lock:
        if _service is not None:
            _service.cancel_timers()
