"""HTTP: GET /v1/market/ticker, /orderbook, /candles, /compare (scope read). Same payloads as the agent tools;
every answer says whether its data is simulated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query

from agent.api.auth import require_scope
from core.cache import TTLCache
from tools.market import _norm_symbol, candles_view, compare_view, order_book_view, ticker_view
from trading.exchanges import ExchangeError, ExchangeUnavailable, UnknownExchange, UnknownSymbol
from trading.exchanges.base import TIMEFRAME_MS

router = APIRouter(
    prefix="/v1/market",
    tags=["market"],
    dependencies=[Depends(require_scope("read"))],
    responses={
        400: {"description": "the venue refused the request (`detail` says why)"},
        404: {"description": "unknown symbol or exchange (`detail` names nearby ones)"},
        503: {"description": "the venue cannot be reached; retry shortly"},
    },
)

SymbolQ = Query(min_length=3, max_length=30, description="market symbol, e.g. BTC/USDT", examples=["BTC/USDT"])
ExchangeQ = Query(default=None, max_length=30, pattern=r"^[a-z0-9_.-]+$", description="ccxt exchange id")


# Many clients asking for the same market within half a second share one fetch (the venue's own rate limits and
# our latency both benefit); every answer carries its own timestamp.
_views: TTLCache[dict[str, Any]] = TTLCache(0.5)


def install(app: FastAPI) -> None:
    """Each app starts with an empty view cache (a new app may point at another venue)."""

    async def _clear(_: FastAPI) -> None:
        _views.clear()

    app.state.startup_hooks.append(_clear)


async def _call(key: tuple[Any, ...], fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return await _views.aget_or_compute(key, fn)
    except (UnknownSymbol, UnknownExchange) as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except ExchangeUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    except (ExchangeError, ValueError) as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc


@router.get("/ticker", summary="Latest price, bid/ask, 24h change")
async def get_ticker(symbol: str = SymbolQ, exchange: str | None = ExchangeQ) -> dict[str, Any]:
    sym = _norm_symbol(symbol)
    return await _call(("ticker", sym, exchange), lambda: ticker_view(sym, exchange))


@router.get("/orderbook", summary="Top of the order book")
async def get_orderbook(symbol: str = SymbolQ, exchange: str | None = ExchangeQ,
                        depth: int = Query(default=10, ge=1, le=50)) -> dict[str, Any]:
    sym = _norm_symbol(symbol)
    return await _call(("book", sym, exchange, depth), lambda: order_book_view(sym, exchange, depth))


@router.get("/candles", summary="Recent OHLCV candles, oldest first")
async def get_candles(symbol: str = SymbolQ, exchange: str | None = ExchangeQ,
                timeframe: str = Query(default="1h", description=f"one of {', '.join(TIMEFRAME_MS)}"),
                limit: int = Query(default=48, ge=1, le=500)) -> dict[str, Any]:
    if timeframe not in TIMEFRAME_MS:
        raise HTTPException(status_code=400, detail=f"timeframe must be one of {', '.join(TIMEFRAME_MS)}")
    sym = _norm_symbol(symbol)
    return await _call(("candles", sym, exchange, timeframe, limit),
                       lambda: candles_view(sym, exchange, timeframe, limit))


@router.get("/compare", summary="Compare venues all-in (price + taker fee + slippage)")
async def get_compare(symbol: str = SymbolQ, side: Literal["buy", "sell"] = "buy",
                amount: float | None = Query(default=None, gt=0, le=1e9, description="base units"),
                exchanges: str | None = Query(default=None, max_length=300,
                                              description="comma-separated venue ids; default: configured")
                ) -> dict[str, Any]:
    venues = [v.strip().lower() for v in exchanges.split(",") if v.strip()] if exchanges else None
    if venues is not None and len(venues) > 10:
        raise HTTPException(status_code=400, detail="at most 10 venues")
    sym = _norm_symbol(symbol)
    key = ("compare", sym, side, amount, tuple(venues) if venues else None)
    return await _call(key, lambda: compare_view(sym, side, amount, venues))
