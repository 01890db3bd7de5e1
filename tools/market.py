"""Market data tools: ticker, order book, candles, compare venues. Read-only; sync (the runtime calls them from a
worker thread); every result says whether the data is simulated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, field_validator

from core.strict import StrictModel
from tools.registry import ToolError, tool
from trading.exchanges import ExchangeError, ExchangeUnavailable, MarketSource, UnknownSymbol, get_market_source
from trading.exchanges.base import TIMEFRAME_MS


def _norm_symbol(value: str) -> str:
    value = value.strip().upper().replace("-", "/").replace("_", "/")
    if "/" not in value:
        for quote in ("USDT", "USDC", "USD", "BTC", "ETH", "EUR"):
            if value.endswith(quote) and len(value) > len(quote):
                return f"{value[: -len(quote)]}/{quote}"
    return value


class TickerArgs(StrictModel):
    symbol: str = Field(min_length=3, max_length=30, description="Market symbol, e.g. BTC/USDT")
    exchange: str | None = Field(default=None, max_length=30, description="ccxt exchange id; default: configured")

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        return _norm_symbol(v)


def _source(exchange: str | None) -> MarketSource:
    return get_market_source(None, exchange.strip().lower() if exchange else None)


def check_symbol(symbol: str, exchange: str | None = None) -> None:
    """Raise `UnknownSymbol` (listing nearby names) when the venue does not list `symbol`. A venue that cannot be
    reached right now is no verdict on the symbol: the callers' own requests then say what is unavailable."""
    try:
        _source(exchange).market(symbol)
    except UnknownSymbol:
        raise
    except (ExchangeError, ValueError):
        return


def _as_tool(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except (ExchangeError, ValueError) as exc:
        raise ToolError(str(exc)) from exc


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _meta(source: MarketSource) -> dict[str, Any]:
    meta: dict[str, Any] = {"exchange": source.exchange_id, "simulated": source.simulated}
    if source.fallback_reason:
        meta["note"] = source.fallback_reason
    return meta


def _sig(x: float | None, digits: int = 8) -> float | None:
    return None if x is None else float(f"{x:.{digits}g}")


@tool(name="get_ticker", description="Latest price of one market: last, bid, ask, 24h change % and volume.",
      args=TickerArgs)
def get_ticker(args: TickerArgs) -> dict[str, Any]:
    return _as_tool(lambda: ticker_view(args.symbol, args.exchange))


def ticker_view(symbol: str, exchange: str | None = None) -> dict[str, Any]:
    """Compact ticker (raises ExchangeError: the HTTP layer maps classes to status codes)."""
    source = _source(exchange)
    t = source.fetch_ticker(symbol)
    return {
        **_meta(source), "symbol": t.symbol, "last": _sig(t.last), "bid": _sig(t.bid), "ask": _sig(t.ask),
        "change_pct_24h": None if t.change_pct_24h is None else round(t.change_pct_24h, 3),
        "volume": _sig(t.base_volume_24h, 6), "quote_volume": _sig(t.quote_volume_24h, 6),
        "timestamp": _iso(t.timestamp_ms), "simulated": source.simulated or t.simulated,
    }


class OrderBookArgs(TickerArgs):
    depth: int = Field(default=10, ge=1, le=50, description="Levels per side")


@tool(name="get_order_book", description="Top of the order book: bids/asks [price, amount], spread, mid.",
      args=OrderBookArgs)
def get_order_book(args: OrderBookArgs) -> dict[str, Any]:
    return _as_tool(lambda: order_book_view(args.symbol, args.exchange, args.depth))


def order_book_view(symbol: str, exchange: str | None = None, depth: int = 10) -> dict[str, Any]:
    source = _source(exchange)
    book = source.fetch_order_book(symbol, depth)
    spread = (book.best_ask - book.best_bid) if book.best_ask and book.best_bid else None
    mid = book.mid
    return {
        **_meta(source), "symbol": book.symbol, "timestamp": _iso(book.timestamp_ms),
        "mid": _sig(mid), "spread": _sig(spread),
        "spread_bps": round(spread / mid * 1e4, 3) if spread is not None and mid else None,
        "bids": [[_sig(lv.price), _sig(lv.amount, 6)] for lv in book.bids[:depth]],
        "asks": [[_sig(lv.price), _sig(lv.amount, 6)] for lv in book.asks[:depth]],
    }


class CandlesArgs(TickerArgs):
    timeframe: str = Field(default="1h", description=f"One of {', '.join(TIMEFRAME_MS)}")
    limit: int = Field(default=48, ge=1, le=500)

    @field_validator("timeframe")
    @classmethod
    def _tf(cls, v: str) -> str:
        if v not in TIMEFRAME_MS:
            raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAME_MS)}")
        return v


@tool(name="get_candles", description="Recent OHLCV candles (oldest first) with a short summary.",
      args=CandlesArgs)
def get_candles(args: CandlesArgs) -> dict[str, Any]:
    return _as_tool(lambda: candles_view(args.symbol, args.exchange, args.timeframe, args.limit))


def candles_view(symbol: str, exchange: str | None = None, timeframe: str = "1h", limit: int = 48
                 ) -> dict[str, Any]:
    source = _source(exchange)
    candles = source.fetch_ohlcv(symbol, timeframe, None, limit)
    if not candles:
        raise ValueError(f"no candles for {symbol} {timeframe} on {source.exchange_id}")
    first, last = candles[0], candles[-1]
    return {
        **_meta(source), "symbol": symbol, "timeframe": timeframe, "count": len(candles),
        "from": _iso(first.timestamp_ms), "to": _iso(last.timestamp_ms),
        "change_pct": round((last.close / first.open - 1) * 100, 3) if first.open else None,
        "high": _sig(max(c.high for c in candles)), "low": _sig(min(c.low for c in candles)),
        "columns": ["time", "open", "high", "low", "close", "volume"],
        "candles": [[_iso(c.timestamp_ms), _sig(c.open), _sig(c.high), _sig(c.low), _sig(c.close),
                     _sig(c.volume, 6)] for c in candles],
    }


class CompareArgs(StrictModel):
    symbol: str = Field(min_length=3, max_length=30, description="Market symbol, e.g. BTC/USDT")
    side: str = Field(default="buy", pattern="^(buy|sell)$")
    amount: float | None = Field(default=None, gt=0, le=1e9, description="Size in base units (default: top size)")
    exchanges: list[str] | None = Field(default=None, max_length=10, description="Venues; default: configured")

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        return _norm_symbol(v)


@tool(name="compare_venues",
      description="Compare venues for one market: consolidated best bid/ask and the all-in cost (price + taker "
                  "fee + slippage) of a trade on each venue, cheapest first, with a suggested split.",
      args=CompareArgs)
def compare_venues_tool(args: CompareArgs) -> dict[str, Any]:
    return _as_tool(lambda: compare_view(args.symbol, args.side, args.amount, args.exchanges))


def compare_view(symbol: str, side_name: str = "buy", amount: float | None = None,
                 exchanges: list[str] | None = None) -> dict[str, Any]:
    from trading.market_data.aggregate import compare_venues
    from trading.types import Side

    side = Side(side_name)
    cmp = compare_venues(symbol, exchanges, side=side, amount=amount)
    if cmp.quote is None:
        failures = list(cmp.failures.values())
        if failures and all(isinstance(f, ExchangeError) and not f.retryable for f in failures):
            raise failures[0]  # e.g. an unknown symbol everywhere: the first venue's message lists nearby ones
        raise ExchangeUnavailable(f"no venue answered for {symbol}: {cmp.errors}")
    q = cmp.quote
    return {
        "symbol": cmp.symbol, "side": side.value,
        "best_bid": {"exchange": q.best_bid.exchange, "price": _sig(q.best_bid.bid)} if q.best_bid else None,
        "best_ask": {"exchange": q.best_ask.exchange, "price": _sig(q.best_ask.ask)} if q.best_ask else None,
        "crossed_after_fees": q.crossed,
        "ranking": [{"exchange": c.exchange, "avg_price": _sig(c.avg_price), "fee": _sig(c.fee, 6),
                     "total": _sig(c.total, 10), "effective_price": _sig(c.effective_price),
                     "slippage_bps": None if c.slippage_bps is None else round(c.slippage_bps, 2),
                     "filled": _sig(c.filled, 8), "complete": c.complete, "taker_fee": cmp.fees.get(c.exchange),
                     "simulated": cmp.simulated.get(c.exchange, False)} for c in cmp.ranking],
        "split": {k: _sig(v, 8) for k, v in cmp.split.items()},
        "errors": cmp.errors,
        "simulated": any(cmp.simulated.values()),
    }
