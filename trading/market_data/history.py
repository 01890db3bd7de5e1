"""History download (paginated, validated, stored, resumable), file import (CSV, freqtrade JSON) and CSV export."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from core.clock import now_ms
from core.timeframes import parse_series_name, resolve_series
from trading.exchanges.base import ExchangeAdapter, timeframe_floor, timeframe_ms
from trading.market_data.candles import CandleStore, Issue, check_candle, validate_candles
from trading.types import Candle

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (candles done, candles expected)


def parse_time(value: str) -> int:
    """'2024-01-01', '2024-01-01T12:00', '2024-01-01T12:00:00Z' (UTC) or epoch milliseconds -> ms."""
    value = value.strip()
    if value.isdigit():
        n = int(value)
        return n if n > 10**11 else n * 1000
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"cannot read time '{value}': use YYYY-MM-DD, ISO 8601 or epoch milliseconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class DownloadResult:
    exchange: str
    symbol: str
    timeframe: str
    start_ms: int
    end_ms: int
    resumed_from: int | None = None  # open time we resumed after (last stored), if any
    pages: int = 0
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    issues: list[Issue] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    first_ms: int | None = None
    last_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange, "symbol": self.symbol, "timeframe": self.timeframe,
            "from": iso(self.start_ms), "until": iso(self.end_ms),
            "resumed_after": iso(self.resumed_from) if self.resumed_from is not None else None,
            "pages": self.pages, "fetched": self.fetched, "stored": self.stored, "duplicates": self.duplicates,
            "first": iso(self.first_ms) if self.first_ms is not None else None,
            "last": iso(self.last_ms) if self.last_ms is not None else None,
            "gaps": [{"from": iso(a), "to": iso(b)} for a, b in self.gaps[:50]], "gap_count": len(self.gaps),
            "issues": [{"time": iso(i.timestamp_ms) if i.timestamp_ms else None, "problem": i.problem}
                       for i in self.issues[:50]],
            "issue_count": len(self.issues),
        }


async def download_history(
    adapter: ExchangeAdapter,
    store: CandleStore,
    symbol: str,
    timeframe: str,
    since_ms: int,
    *,
    until_ms: int | None = None,
    page_limit: int = 1000,
    progress: Progress | None = None,
    now_ms: int | None = None,
    exchange: str | None = None,
) -> DownloadResult:
    """Fetch closed candles from `since_ms` to `until_ms` (default: now) page by page and store them.

    Resumes after the last stored candle when that is inside the range. Each page is validated (OHLC sanity,
    alignment, monotonic time, duplicates, gaps across pages) and only good candles are stored. Stored data is
    keyed by the unique (exchange, symbol, timeframe, time), so an interrupted run can simply be run again.
    """
    step = timeframe_ms(timeframe)
    name = exchange or adapter.exchange_id
    await adapter.load_markets()
    adapter.market(symbol)  # unknown symbols fail before any download
    now = now_ms if now_ms is not None else await _venue_now(adapter)
    last_closed = timeframe_floor(now, timeframe) - step  # the in-progress candle is not stored
    end = min(until_ms, last_closed) if until_ms is not None else last_closed
    start = timeframe_floor(since_ms + step - 1, timeframe)
    result = DownloadResult(name, symbol, timeframe, start, end)
    stored_last = store.last_time(name, symbol, timeframe)
    previous: int | None = None
    if stored_last is not None and start <= stored_last < end:
        result.resumed_from = stored_last
        previous = stored_last
        start = stored_last + step
    expected = max(0, (end - start) // step + 1)
    done = 0
    if progress:
        progress(0, expected)
    cursor = start
    while cursor <= end:
        page = await adapter.fetch_ohlcv(symbol, timeframe, cursor, page_limit)
        result.pages += 1
        page = [c for c in page if cursor <= c.timestamp_ms <= end]
        if not page:
            break
        result.fetched += len(page)
        good, report = validate_candles(page, timeframe, previous_ms=previous)
        result.issues.extend(report.issues)
        result.duplicates += report.duplicates
        result.gaps.extend(report.gaps)
        result.stored += store.upsert(name, symbol, timeframe, good, source=f"download:{name}")
        if good:
            result.first_ms = result.first_ms if result.first_ms is not None else good[0].timestamp_ms
            result.last_ms = good[-1].timestamp_ms
            previous = good[-1].timestamp_ms
        newest = max(c.timestamp_ms for c in page)
        done = min(expected, (newest - start) // step + 1)
        if progress:
            progress(done, expected)
        cursor = newest + step
    if progress:
        progress(expected, expected)
    return result


async def _venue_now(adapter: ExchangeAdapter) -> int:
    """The venue's clock decides which candles are closed; the local clock when the venue cannot say."""
    fetch_time = getattr(adapter, "fetch_time", None)
    if fetch_time is not None:
        try:
            return int(await fetch_time())
        except Exception as exc:  # a missing time endpoint must not stop a download
            log.debug("venue time unavailable (%s); using the local clock", exc)
    return now_ms()


# ---------------------------------------------------------------------------------------------- file import
class ImportFileError(ValueError):
    """A file could not be imported; `problems` lists (line, message)."""

    def __init__(self, path: str, problems: list[tuple[int, str]]) -> None:
        shown = "; ".join(f"line {n}: {msg}" for n, msg in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{path}: {shown}{more}")
        self.path = path
        self.problems = problems


@dataclass
class ParsedFile:
    candles: list[Candle]
    problems: list[tuple[int, str]]  # (1-based line, message)
    format: str
    lines: list[int] = field(default_factory=list)  # source line of each candle
    symbol: str | None = None  # inferred from a freqtrade file name (BTC_USDT-1h.json)
    timeframe: str | None = None


def infer_from_name(path: Path) -> tuple[str | None, str | None]:
    """Symbol and timeframe from a file name: freqtrade's BTC_USDT-1h.json or binance_BTC_USDT-1h.csv."""
    named = parse_series_name(path)
    return named.symbol, named.timeframe


def _row_candle(values: list[Any], line: int, problems: list[tuple[int, str]]) -> Candle | None:
    if len(values) < 6:
        problems.append((line, f"expected 6 fields (timestamp_ms,open,high,low,close,volume), got {len(values)}"))
        return None
    try:
        ts = int(float(values[0]))
        o, h, low, c, v = (float(x) for x in values[1:6])
    except (TypeError, ValueError):
        problems.append((line, f"not a number in {values[:6]!r}"))
        return None
    if ts < 10**11:
        problems.append((line, f"timestamp {ts} is not in milliseconds"))
        return None
    return Candle(ts, o, h, low, c, v)


def parse_csv(text: str) -> ParsedFile:
    problems: list[tuple[int, str]] = []
    candles: list[Candle] = []
    lines: list[int] = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if n == 1 and not row[0].strip().lstrip("-").replace(".", "").isdigit():
            header = [h.strip().lower() for h in row]
            if header[:1] not in (["timestamp_ms"], ["timestamp"], ["time"], ["date"]):
                problems.append((n, f"unexpected header {row!r}; want timestamp_ms,open,high,low,close,volume"))
            continue
        candle = _row_candle([cell.strip() for cell in row], n, problems)
        if candle is not None:
            candles.append(candle)
            lines.append(n)
    return ParsedFile(candles, problems, "csv", lines)


def parse_freqtrade_json(text: str) -> ParsedFile:
    problems: list[tuple[int, str]] = []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return ParsedFile([], [(exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})")], "freqtrade")
    if isinstance(data, dict) and "data" in data:  # freqtrade "jsongz"/columnar variants wrap rows
        data = data["data"]
    if not isinstance(data, list):
        return ParsedFile([], [(1, "expected a JSON array of [timestamp_ms, open, high, low, close, volume]")],
                          "freqtrade")
    lines = _json_row_lines(text)
    candles: list[Candle] = []
    kept: list[int] = []
    for i, row in enumerate(data):
        line = lines[i] if i < len(lines) else 1
        if not isinstance(row, list):
            problems.append((line, f"row {i + 1} is not an array"))
            continue
        candle = _row_candle(row, line, problems)
        if candle is not None:
            candles.append(candle)
            kept.append(line)
    return ParsedFile(candles, problems, "freqtrade", kept)


def _json_row_lines(text: str) -> list[int]:
    """Line number where each top-level row of a JSON array of arrays starts."""
    out: list[int] = []
    depth = 0
    line = 1
    in_str = False
    for ch in text:
        if ch == "\n":
            line += 1
        elif ch == '"':
            in_str = not in_str
        elif not in_str and ch == "[":
            depth += 1
            if depth == 2:
                out.append(line)
        elif not in_str and ch == "]":
            depth -= 1
    return out


def read_candle_file(path: Path, fmt: str | None = None, timeframe: str | None = None) -> ParsedFile:
    """Parse a CSV or freqtrade JSON file and check every candle; problems name the line."""
    text = path.read_text(encoding="utf-8")
    kind = fmt or ("freqtrade" if path.suffix.lower() == ".json" else "csv")
    parsed = parse_freqtrade_json(text) if kind == "freqtrade" else parse_csv(text)
    symbol, tf = infer_from_name(path)
    parsed.symbol, parsed.timeframe = symbol, tf
    tf = timeframe or tf
    if tf is not None:
        step = timeframe_ms(tf)
        lines = parsed.lines
        seen: dict[int, int] = {}
        previous: int | None = None
        for idx, c in enumerate(parsed.candles):
            line = lines[idx] if idx < len(lines) else idx + 1
            problem = check_candle(c, step)
            if problem:
                parsed.problems.append((line, problem))
            elif c.timestamp_ms in seen:
                parsed.problems.append((line, f"duplicate time {iso(c.timestamp_ms)} (first on line "
                                              f"{seen[c.timestamp_ms]})"))
            elif previous is not None and c.timestamp_ms < previous:
                parsed.problems.append((line, f"time goes backwards ({iso(c.timestamp_ms)} after {iso(previous)})"))
            else:
                seen[c.timestamp_ms] = line
                previous = c.timestamp_ms
    parsed.problems.sort()
    return parsed


def import_file(store: CandleStore, path: Path, *, exchange: str, symbol: str | None = None,
                timeframe: str | None = None, fmt: str | None = None, skip_bad: bool = False) -> dict[str, Any]:
    """Validate and store a file's candles. Any bad line aborts (ImportFileError) unless `skip_bad`.

    The symbol and timeframe given must agree with the file name and the candles' spacing (SeriesMismatch, a
    ValueError); a missing timeframe is read from the spacing, a missing symbol from the file name."""
    parsed = read_candle_file(path, fmt, timeframe)
    known = timeframe or parsed.timeframe
    if parsed.problems and not skip_bad and (known or len(parsed.candles) < 2):
        raise ImportFileError(str(path), parsed.problems)  # bad lines first: nothing is imported anyway
    usable = [c for c in parsed.candles if known is None or check_candle(c, timeframe_ms(known)) is None]
    found = resolve_series([c.timestamp_ms for c in usable], timeframe=timeframe, symbol=symbol, path=path,
                           what=f"the candles in {path.name}")
    if found.symbol is None:
        raise ValueError(f"{path}: give --symbol (the file name does not say it; e.g. binance_BTC_USDT-1h.csv does)")
    if parsed.timeframe != found.timeframe and timeframe is None:
        parsed = read_candle_file(path, fmt, found.timeframe)  # the per-candle checks need the timeframe
    symbol, timeframe = found.symbol, found.timeframe
    if parsed.problems and not skip_bad:
        raise ImportFileError(str(path), parsed.problems)
    step = timeframe_ms(timeframe)
    good = sorted({c.timestamp_ms: c for c in parsed.candles if check_candle(c, step) is None}.values(),
                  key=lambda c: c.timestamp_ms)
    _, report = validate_candles(good, timeframe)
    stored = store.upsert(exchange, symbol, timeframe, good, source=f"import:{path.name}")
    return {"file": str(path), "format": parsed.format, "exchange": exchange, "symbol": symbol,
            "timeframe": timeframe, "rows": len(parsed.candles), "stored": stored, "skipped": len(parsed.problems),
            "problems": [f"line {n}: {m}" for n, m in parsed.problems[:20]],
            "gaps": [{"from": iso(a), "to": iso(b)} for a, b in report.gaps[:20]], "gap_count": len(report.gaps),
            "notes": found.notes}


def export_csv(candles: Iterable[Candle], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp_ms", "open", "high", "low", "close", "volume"])
    n = 0
    for c in candles:
        writer.writerow([c.timestamp_ms, repr(c.open), repr(c.high), repr(c.low), repr(c.close), repr(c.volume)])
        n += 1
    return n


def iter_chunks(store: CandleStore, exchange: str, symbol: str, timeframe: str, start_ms: int | None,
                end_ms: int | None, chunk: int = 50_000) -> Iterator[Candle]:
    cursor = start_ms
    while True:
        rows = store.load(exchange, symbol, timeframe, start_ms=cursor, end_ms=end_ms, limit=chunk)
        yield from rows
        if len(rows) < chunk:
            return
        cursor = rows[-1].timestamp_ms + 1
