"""Stored candles (MongoDB collection `candles`, unique on exchange + symbol + timeframe + time) and validation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.database import Database

from core.queries import eq
from trading.exchanges.base import timeframe_ms
from trading.types import Candle

COLLECTION = "candles"


@dataclass(frozen=True, slots=True)
class Issue:
    index: int  # position in the checked sequence (line number for files is added by the importer)
    timestamp_ms: int | None
    problem: str


@dataclass
class ValidationReport:
    checked: int = 0
    issues: list[Issue] = field(default_factory=list)  # bad candles (not stored)
    duplicates: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first missing open time, last missing open time)

    def missing_candles(self, timeframe: str) -> int:
        step = timeframe_ms(timeframe)
        return sum((b - a) // step + 1 for a, b in self.gaps)

    @property
    def ok(self) -> bool:
        return not self.issues and not self.duplicates and not self.gaps


def check_candle(c: Candle, step: int) -> str | None:
    """The first problem with one candle, or None."""
    values = (c.open, c.high, c.low, c.close, c.volume)
    if any(v != v for v in values):  # NaN
        return "NaN value"
    if c.timestamp_ms % step:
        return f"time {c.timestamp_ms} is not aligned to the {step // 1000}s timeframe"
    if min(c.open, c.high, c.low, c.close) <= 0:
        return "non-positive price"
    if c.volume < 0:
        return "negative volume"
    if c.high < c.low:
        return f"high {c.high} below low {c.low}"
    if c.high < max(c.open, c.close):
        return f"high {c.high} below open/close {max(c.open, c.close)}"
    if c.low > min(c.open, c.close):
        return f"low {c.low} above open/close {min(c.open, c.close)}"
    return None


def validate_candles(candles: Sequence[Candle], timeframe: str, *, previous_ms: int | None = None
                     ) -> tuple[list[Candle], ValidationReport]:
    """Keep the good candles; report bad ones, duplicates, time going backwards and gaps.

    `previous_ms` is the open time of the candle just before this batch (gap detection across pages).
    """
    step = timeframe_ms(timeframe)
    report = ValidationReport(checked=len(candles))
    good: list[Candle] = []
    last = previous_ms
    for i, c in enumerate(candles):
        problem = check_candle(c, step)
        if problem is not None:
            report.issues.append(Issue(i, c.timestamp_ms, problem))
            continue
        if last is not None and c.timestamp_ms == last:
            report.duplicates += 1
            continue
        if last is not None and c.timestamp_ms < last:
            report.issues.append(Issue(i, c.timestamp_ms, f"time goes backwards ({c.timestamp_ms} after {last})"))
            continue
        if last is not None and c.timestamp_ms > last + step:
            report.gaps.append((last + step, c.timestamp_ms - step))
        good.append(c)
        last = c.timestamp_ms
    return good, report


class CandleStore:
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]
        self.col.create_index([("exchange", ASCENDING), ("symbol", ASCENDING), ("timeframe", ASCENDING),
                               ("t", ASCENDING)], unique=True, name="candle_unique")

    @staticmethod
    def _key(exchange: str, symbol: str, timeframe: str) -> dict[str, Any]:
        return eq(exchange=exchange, symbol=symbol, timeframe=timeframe)  # `$eq`: served by the compound index

    def upsert(self, exchange: str, symbol: str, timeframe: str, candles: Iterable[Candle], source: str = "") -> int:
        """Insert or replace candles (idempotent: the unique key makes re-runs harmless). Returns new candles."""
        key = self._key(exchange, symbol, timeframe)
        series = f"{exchange}|{symbol}|{timeframe}"  # one field to group by (embedded servers lack compound _id)
        ops = [UpdateOne({**key, **eq(t=c.timestamp_ms)},
                         {"$set": {"o": c.open, "h": c.high, "l": c.low, "c": c.close, "v": c.volume,
                                   "src": source, "k": series}}, upsert=True) for c in candles]
        if not ops:
            return 0
        inserted = 0
        for start in range(0, len(ops), 5_000):
            result = self.col.bulk_write(ops[start:start + 5_000], ordered=False)
            inserted += result.upserted_count
        return inserted

    def last_time(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        doc = self.col.find_one(self._key(exchange, symbol, timeframe), sort=[("t", DESCENDING)],
                                projection={"t": 1})
        return int(doc["t"]) if doc else None

    def first_time(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        doc = self.col.find_one(self._key(exchange, symbol, timeframe), sort=[("t", ASCENDING)],
                                projection={"t": 1})
        return int(doc["t"]) if doc else None

    def count(self, exchange: str, symbol: str, timeframe: str) -> int:
        return int(self.col.count_documents(self._key(exchange, symbol, timeframe)))

    def load(self, exchange: str, symbol: str, timeframe: str, *, start_ms: int | None = None,
             end_ms: int | None = None, limit: int | None = None, newest: bool = False) -> list[Candle]:
        """Candles in [start_ms, end_ms], oldest first (`newest=True` with `limit`: the most recent `limit`)."""
        query: dict[str, Any] = self._key(exchange, symbol, timeframe)
        bounds: dict[str, int] = {}
        if start_ms is not None:
            bounds["$gte"] = start_ms
        if end_ms is not None:
            bounds["$lte"] = end_ms
        if bounds:
            query["t"] = bounds
        cursor = self.col.find(query, projection={"_id": 0, "t": 1, "o": 1, "h": 1, "l": 1, "c": 1, "v": 1})
        cursor = cursor.sort("t", DESCENDING if newest else ASCENDING)
        if limit:
            cursor = cursor.limit(limit)
        out = [Candle(int(d["t"]), float(d["o"]), float(d["h"]), float(d["l"]), float(d["c"]), float(d["v"]))
               for d in cursor]
        if newest:
            out.reverse()
        return out

    def series(self) -> list[dict[str, Any]]:
        """Stored series with counts and time range."""
        rows = self.col.aggregate([
            {"$group": {"_id": "$k", "count": {"$sum": 1}, "first": {"$min": "$t"}, "last": {"$max": "$t"}}},
        ])
        out = []
        for r in rows:
            exchange, symbol, timeframe = str(r["_id"]).split("|", 2)
            out.append({"exchange": exchange, "symbol": symbol, "timeframe": timeframe, "count": r["count"],
                        "first": r["first"], "last": r["last"]})
        return sorted(out, key=lambda r: (r["exchange"], r["symbol"], r["timeframe"]))

    def delete(self, exchange: str, symbol: str, timeframe: str) -> int:
        return int(self.col.delete_many(self._key(exchange, symbol, timeframe)).deleted_count)
