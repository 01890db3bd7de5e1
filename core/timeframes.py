"""Candle timeframes checked against the data: the spacing a series of candles has, and what its file name says.

A timeframe that does not match the candles silently corrupts everything downstream (daily candles read as hourly
annualise returns 24x too often; a "1h" model trained on daily data is served as hourly). Every door that takes
candles (backtest, train, forecast, data import; CLI and HTTP) runs `resolve_series` or `check_spacing`:

- the spacing is the median step between consecutive timestamps (robust to gaps and a few odd rows);
- a timeframe given by the user that differs from the spacing, or a symbol/timeframe that differs from the file
  name (`binance_BTC_USDT-1h.csv`, freqtrade's `BTC_USDT-1h.json`), is refused with `SeriesMismatch`;
- a timeframe not given is taken from the spacing (and the caller says so).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

TIMEFRAME_MS: dict[str, int] = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}
Timestamps = Iterable[int] | npt.NDArray[Any]  # epoch milliseconds, any order
TOLERANCE = 0.01  # a median step within 1 % of a timeframe's length is that timeframe (timestamps in seconds etc.)


class SeriesMismatch(ValueError):
    """The timeframe or symbol given does not fit the candles (their spacing) or their file name."""


def median_step_ms(timestamps: Timestamps) -> int | None:
    """Median step between consecutive distinct timestamps (sorted first); None with fewer than two."""
    raw = timestamps if isinstance(timestamps, np.ndarray) else list(timestamps)
    t = np.unique(np.asarray(raw, dtype=np.int64))
    if t.size < 2:
        return None
    return int(np.median(np.diff(t)))


def timeframe_of_step(step_ms: int) -> str | None:
    """The timeframe whose length is `step_ms` (within TOLERANCE), or None."""
    for name, ms in TIMEFRAME_MS.items():
        if abs(step_ms - ms) <= TOLERANCE * ms:
            return name
    return None


def describe_step(step_ms: int) -> str:
    """'1d' for a known timeframe, else the step in the largest whole unit ('90 minutes', '2.5 hours')."""
    known = timeframe_of_step(step_ms)
    if known:
        return known
    for unit, ms in (("days", 86_400_000), ("hours", 3_600_000), ("minutes", 60_000), ("seconds", 1000)):
        if step_ms >= ms:
            return f"{step_ms / ms:g} {unit}"
    return f"{step_ms} ms"


def check_spacing(timestamps: Timestamps, timeframe: str, what: str = "the candles") -> None:
    """Raise SeriesMismatch when the candles' median spacing is not `timeframe` (fewer than 2 candles: no check)."""
    if timeframe not in TIMEFRAME_MS:
        raise SeriesMismatch(f"unknown timeframe {timeframe!r}; valid: {', '.join(TIMEFRAME_MS)}")
    step = median_step_ms(timestamps)
    if step is None:
        return
    want = TIMEFRAME_MS[timeframe]
    if abs(step - want) > TOLERANCE * want:
        hint = timeframe_of_step(step)
        fix = f"use timeframe {hint}" if hint else "resample them to one of " + ", ".join(TIMEFRAME_MS)
        raise SeriesMismatch(
            f"{what} are {describe_step(step)} apart (median spacing) but the timeframe is {timeframe}; {fix}"
        )


@dataclass(frozen=True)
class SeriesName:
    """What a candle file's name says: `binance_BTC_USDT-1h.csv` -> binance, BTC/USDT, 1h (each may be None)."""

    exchange: str | None = None
    symbol: str | None = None
    timeframe: str | None = None


_TF = r"(?P<tf>\d+[mhdw])"
_TAIL = r"(?:-(?:spot|futures|mark|funding_rate))?\.(?:csv|json|feather|parquet|jsongz|json\.gz)$"
# freqtrade: BTC_USDT-1h.json, futures BTC_USDT_USDT-1h-futures.json (settle currency repeated)
_PLAIN = re.compile(r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)(?:_(?P<settle>[A-Za-z0-9]+))?-" + _TF + _TAIL)
# with a venue in front: binance_BTC_USDT-1h.csv
_VENUE = re.compile(r"^(?P<exchange>[a-z][a-z0-9]*)_(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)-" + _TF + _TAIL)


def parse_series_name(path: str | Path) -> SeriesName:
    """Exchange, symbol and timeframe from a candle file's name; SeriesName() when the name follows no pattern."""
    name = Path(path).name
    m = _PLAIN.match(name)
    if m and m["settle"] is not None and m["settle"].upper() != m["quote"].upper():
        m = None  # binance_BTC_USDT-1h: three parts whose last is not a repeated settle currency
    exchange = None
    if m is None:
        m = _VENUE.match(name)
        if m is None:
            return SeriesName()
        exchange = m["exchange"]
    tf = m["tf"] if m["tf"] in TIMEFRAME_MS else None
    return SeriesName(exchange, f"{m['base'].upper()}/{m['quote'].upper()}", tf)


@dataclass
class ResolvedSeries:
    timeframe: str
    symbol: str | None
    exchange: str | None = None
    notes: list[str] = field(default_factory=list)  # what was inferred and from where, to tell the user


def resolve_series(
    timestamps: Timestamps,
    *,
    timeframe: str | None,
    symbol: str | None,
    path: str | Path | None = None,
    what: str | None = None,
) -> ResolvedSeries:
    """Check the timeframe and symbol given (None: not given) against the candles' spacing and the file name.

    Given values must agree with both; missing ones come from the file name or, for the timeframe, the spacing.
    The symbol stays None when neither the user nor the file name says it (the caller decides if it needs one)."""
    named = parse_series_name(path) if path is not None else SeriesName()
    label = what or (f"the candles in {Path(path).name}" if path is not None else "the candles")
    notes: list[str] = []
    if symbol and named.symbol and symbol.upper() != named.symbol:
        raise SeriesMismatch(f"the symbol is {symbol} but the file name {Path(str(path)).name} says {named.symbol}")
    if symbol is None and named.symbol:
        symbol = named.symbol
        notes.append(f"symbol {symbol} read from the file name")
    if timeframe and named.timeframe and timeframe != named.timeframe:
        raise SeriesMismatch(
            f"the timeframe is {timeframe} but the file name {Path(str(path)).name} says {named.timeframe}"
        )
    step = median_step_ms(timestamps)
    if timeframe is None:
        if step is not None:
            inferred = timeframe_of_step(step)
            if inferred is None:
                raise SeriesMismatch(
                    f"{label} are {describe_step(step)} apart (median spacing), which is no timeframe "
                    f"({', '.join(TIMEFRAME_MS)}); resample them"
                )
            if named.timeframe and named.timeframe != inferred:
                check_spacing(timestamps, named.timeframe, label)
            timeframe = inferred
            notes.append(f"timeframe {timeframe} read from the candle spacing")
        elif named.timeframe:
            timeframe = named.timeframe
            notes.append(f"timeframe {timeframe} read from the file name")
        else:
            raise SeriesMismatch(f"{label}: fewer than 2 readable candles, too few to tell their timeframe")
    check_spacing(timestamps, timeframe, label)
    return ResolvedSeries(timeframe, symbol, named.exchange, notes)
