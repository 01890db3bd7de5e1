"""HTTP: GET /v1/market/ticker, /orderbook, /candles, /compare (scope read). Same payloads as the agent tools;
every answer says whether its data is simulated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from agent.api.auth import require_scope
from tools.market import _norm_symbol, candles_view, compare_view, order_book_view, ticker_view
from trading.exchanges import ExchangeError, ExchangeUnavailable, UnknownExchange, UnknownSymbol
from trading.exchanges.base import TIMEFRAME_MS

router = APIRouter(prefix="/v1/market", tags=["market"], dependencies=[Depends(require_scope("read"))])

SymbolQ = Query(min_length=3, max_length=30, description="market symbol, e.g. BTC/USDT", examples=["BTC/USDT"])
ExchangeQ = Query(default=None, max_length=30, pattern=r"^[a-z0-9_.-]+$", description="ccxt exchange id")


def _call(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except (UnknownSymbol, UnknownExchange) as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except ExchangeUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    except (ExchangeError, ValueError) as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc


@router.get("/ticker", summary="Latest price, bid/ask, 24h change")
def get_ticker(symbol: str = SymbolQ, exchange: str | None = ExchangeQ) -> dict[str, Any]:
    return _call(lambda: ticker_view(_norm_symbol(symbol), exchange))


@router.get("/orderbook", summary="Top of the order book")
def get_orderbook(symbol: str = SymbolQ, exchange: str | None = ExchangeQ,
                  depth: int = Query(default=10, ge=1, le=50)) -> dict[str, Any]:
    return _call(lambda: order_book_view(_norm_symbol(symbol), exchange, depth))


@router.get("/candles", summary="Recent OHLCV candles, oldest first")
def get_candles(symbol: str = SymbolQ, exchange: str | None = ExchangeQ,
                timeframe: str = Query(default="1h", description=f"one of {', '.join(TIMEFRAME_MS)}"),
                limit: int = Query(default=48, ge=1, le=500)) -> dict[str, Any]:
    if timeframe not in TIMEFRAME_MS:
        raise HTTPException(status_code=400, detail=f"timeframe must be one of {', '.join(TIMEFRAME_MS)}")
    return _call(lambda: candles_view(_norm_symbol(symbol), exchange, timeframe, limit))


@router.get("/compare", summary="Compare venues all-in (price + taker fee + slippage)")
def get_compare(symbol: str = SymbolQ, side: Literal["buy", "sell"] = "buy",
                amount: float | None = Query(default=None, gt=0, le=1e9, description="base units"),
                exchanges: str | None = Query(default=None, max_length=300,
                                              description="comma-separated venue ids; default: configured")
                ) -> dict[str, Any]:
    venues = [v.strip().lower() for v in exchanges.split(",") if v.strip()] if exchanges else None
    if venues is not None and len(venues) > 10:
        raise HTTPException(status_code=400, detail="at most 10 venues")
    return _call(lambda: compare_view(_norm_symbol(symbol), side, amount, venues))
