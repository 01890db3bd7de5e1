"""Normalised market events on the bus: topics, payloads and stable ids (consumers dedupe on the id)."""

from __future__ import annotations

from typing import Any

from core.events import Event
from trading.types import BookLevel, Candle, OrderBook, Ticker, Trade

TOPIC_TICKER = "market.ticker"
TOPIC_BOOK = "market.book"
TOPIC_TRADE = "market.trade"
TOPIC_CANDLE = "market.candle"
TOPIC_STATUS = "market.status"  # reconnect | gap | stale | error, per stream


def ticker_event(t: Ticker) -> Event:
    key = f"{t.exchange}:{t.symbol}"
    return Event(TOPIC_TICKER, {
        "exchange": t.exchange, "symbol": t.symbol, "ts": t.timestamp_ms, "bid": t.bid, "ask": t.ask,
        "last": t.last, "change_pct_24h": t.change_pct_24h, "volume_24h": t.base_volume_24h,
        "simulated": t.simulated,
    }, key=key, id=f"{key}:ticker:{t.timestamp_ms}:{t.last}:{t.bid}:{t.ask}")


def book_event(b: OrderBook, depth: int = 20) -> Event:
    key = f"{b.exchange}:{b.symbol}"
    seq = b.nonce if b.nonce is not None else b.timestamp_ms
    return Event(TOPIC_BOOK, {
        "exchange": b.exchange, "symbol": b.symbol, "ts": b.timestamp_ms, "nonce": b.nonce,
        "bids": [[lv.price, lv.amount] for lv in b.bids[:depth]],
        "asks": [[lv.price, lv.amount] for lv in b.asks[:depth]], "simulated": b.simulated,
    }, key=key, id=f"{key}:book:{seq}")


def book_from_payload(payload: dict[str, Any]) -> OrderBook:
    """The `OrderBook` a `market.book` event carries (the inverse of `book_event`)."""
    return OrderBook(
        exchange=str(payload["exchange"]),
        symbol=str(payload["symbol"]),
        timestamp_ms=int(payload["ts"]),
        bids=tuple(BookLevel(float(p), float(a)) for p, a in payload["bids"]),
        asks=tuple(BookLevel(float(p), float(a)) for p, a in payload["asks"]),
        nonce=None if payload.get("nonce") is None else int(payload["nonce"]),
        simulated=bool(payload.get("simulated", False)),
    )


def trade_event(t: Trade) -> Event:
    key = f"{t.exchange}:{t.symbol}"
    tid = t.trade_id if t.trade_id is not None else f"{t.timestamp_ms}:{t.price}:{t.amount}"
    return Event(TOPIC_TRADE, {
        "exchange": t.exchange, "symbol": t.symbol, "ts": t.timestamp_ms, "price": t.price, "amount": t.amount,
        "side": t.side.value if t.side is not None else None, "trade_id": t.trade_id,
    }, key=key, id=f"{key}:trade:{tid}")


def candle_event(exchange: str, symbol: str, timeframe: str, c: Candle) -> Event:
    key = f"{exchange}:{symbol}"
    return Event(TOPIC_CANDLE, {
        "exchange": exchange, "symbol": symbol, "timeframe": timeframe, "ts": c.timestamp_ms, "open": c.open,
        "high": c.high, "low": c.low, "close": c.close, "volume": c.volume,
    }, key=key, id=f"{key}:candle:{timeframe}:{c.timestamp_ms}:{c.close}:{c.volume}")


def status_event(exchange: str, symbol: str, kind: str, status: str, detail: str, ts_ms: int) -> Event:
    key = f"{exchange}:{symbol}"
    payload: dict[str, Any] = {"exchange": exchange, "symbol": symbol, "stream": kind, "status": status,
                               "detail": detail[:300], "ts": ts_ms}
    return Event(TOPIC_STATUS, payload, key=key, id=f"{key}:{kind}:{status}:{ts_ms}")
