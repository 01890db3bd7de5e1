"""Candles for backtests: a CSV file (columns timestamp_ms,open,high,low,close,volume) or the candle store in Mongo."""

from __future__ import annotations

import csv
import importlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from trading.strategies.base import Bars

REQUIRED = ("open", "high", "low", "close", "volume")
TIME_COLUMNS = ("timestamp_ms", "timestamp", "time", "open_time", "date")


class DataError(ValueError):
    """Bad or missing candle data, with a message naming the problem."""


def _parse_time(value: str) -> int:
    v = value.strip()
    try:
        x = float(v)
    except ValueError:
        try:
            return int(np.datetime64(v.replace("Z", ""), "ms").astype(np.int64))
        except ValueError as exc:
            raise DataError(f"cannot read time {value!r}") from exc
    if x < 1e11:  # seconds
        x *= 1000
    return int(x)


def load_csv(path: str | Path, symbol: str = "") -> Bars:
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file {p} does not exist")
    if not p.is_file():
        raise DataError(f"data path {p} is not a file")
    try:
        with p.open(newline="") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            if not header:
                raise DataError(f"{p} is empty (no header row)")
            reader.fieldnames = header
            tcol = next((c for c in TIME_COLUMNS if c in header), None)
            missing = [c for c in REQUIRED if c not in header]
            if tcol is None or missing:
                need = ([] if tcol is not None else ["timestamp_ms"]) + missing
                raise DataError(f"{p} lacks column(s) {', '.join(need)}; header is {','.join(header)}")
            ts: list[int] = []
            cols: dict[str, list[float]] = {c: [] for c in REQUIRED}
            for lineno, row in enumerate(reader, start=2):
                try:
                    ts.append(_parse_time(row[tcol] or ""))
                    for c in REQUIRED:
                        val = float(row[c])  # type: ignore[arg-type]
                        if not math.isfinite(val):
                            raise ValueError("not finite")
                        cols[c].append(val)
                except (TypeError, ValueError, DataError) as exc:
                    raise DataError(f"{p} line {lineno}: unreadable row ({exc})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{p} is not a text CSV file") from exc
    return _validate(ts, cols, str(p), symbol)


def _validate(ts: list[int], cols: dict[str, list[float]], where: str, symbol: str) -> Bars:
    if len(ts) < 2:
        raise DataError(f"{where} has {len(ts)} candle(s); need at least 2")
    t = np.asarray(ts, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    t = t[order]
    if np.any(np.diff(t) == 0):
        raise DataError(f"{where} has duplicate timestamps")
    arr = {c: np.asarray(v, dtype=np.float64)[order] for c, v in cols.items()}
    for c in ("open", "high", "low", "close"):
        if np.any(arr[c] <= 0):
            raise DataError(f"{where}: column {c} has non-positive prices")
    if np.any(arr["volume"] < 0):
        raise DataError(f"{where}: negative volume")
    return Bars(t, arr["open"], arr["high"], arr["low"], arr["close"], arr["volume"], symbol)


def load_mongo(symbol: str, timeframe: str, exchange: str | None = None, limit: int | None = None,
               db: Any = None) -> Bars:
    """Candles from the market-data candle store (trading.market_data), oldest first."""
    try:
        store_mod = importlib.import_module("trading.market_data.store")
    except ImportError as exc:
        raise DataError("no candle store available (trading.market_data.store); pass --data FILE.csv") from exc
    if db is None:
        from core.storage import get_db

        db = get_db()
    store = store_mod.CandleStore(db)
    kwargs: dict[str, Any] = {}
    if exchange:
        kwargs["exchange"] = exchange
    if limit:
        kwargs["limit"] = limit
    candles = store.load(symbol, timeframe, **kwargs)
    if not candles:
        raise DataError(f"no {timeframe} candles for {symbol} in the candle store; fetch some first or pass --data")
    return Bars.from_candles(candles, symbol)


def load_market(symbol: str, timeframe: str, limit: int = 1000, exchange: str | None = None) -> tuple[Bars, str]:
    """Candles from the candle store when it has them, else from the market source (which may be simulated).
    Returns the bars and a description of where they came from."""
    try:
        bars = load_mongo(symbol, timeframe, exchange=exchange, limit=limit)
        return bars, f"candle store ({len(bars)} candles)"
    except DataError as store_err:
        store_note = str(store_err)
    except Exception as exc:
        store_note = f"candle store unavailable: {exc}"
    from trading.exchanges import ExchangeError, get_market_source

    try:
        source = get_market_source(None, exchange)
        candles = source.fetch_ohlcv(symbol, timeframe, None, limit)
    except ExchangeError as exc:
        raise DataError(f"no candles for {symbol} {timeframe}: {store_note}; market source: {exc}") from exc
    if len(candles) < 2:
        raise DataError(f"the market source returned {len(candles)} candle(s) for {symbol} {timeframe}")
    sim = " SIMULATED" if source.simulated else ""
    return Bars.from_candles(candles, symbol), f"{source.exchange_id}{sim} market source ({len(candles)} candles)"
