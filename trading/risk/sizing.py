"""Position sizing and the volatility regime factor. Pure functions over floats and sequences."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def fixed_fractional(equity: float, risk_fraction: float, entry: float, stop: float) -> float:
    """Base quantity such that hitting `stop` loses `risk_fraction` of equity."""
    if equity <= 0 or risk_fraction <= 0 or entry <= 0:
        return 0.0
    per_unit = abs(entry - stop)
    if per_unit <= 0:
        raise ValueError("stop must differ from entry")
    return equity * risk_fraction / per_unit


def realised_vol(closes: Sequence[float], periods_per_year: float = 365.0) -> float:
    """Annualised standard deviation of log returns."""
    arr = np.asarray(closes, dtype=float)
    if arr.size < 3 or np.any(arr <= 0):
        raise ValueError("need at least 3 positive closes")
    rets = np.diff(np.log(arr))
    return float(np.std(rets, ddof=1) * math.sqrt(periods_per_year))


def atr(highs: Sequence[float], lows: Sequence[float], closes: Sequence[float], period: int = 14) -> float:
    """Wilder's average true range over the last `period` bars."""
    h = np.asarray(highs, dtype=float)
    lo = np.asarray(lows, dtype=float)
    c = np.asarray(closes, dtype=float)
    if not (h.size == lo.size == c.size) or h.size < period + 1:
        raise ValueError(f"need {period + 1} bars of equal-length highs, lows and closes")
    prev = c[:-1]
    tr = np.maximum(h[1:] - lo[1:], np.maximum(np.abs(h[1:] - prev), np.abs(lo[1:] - prev)))
    value = float(np.mean(tr[:period]))
    for x in tr[period:]:
        value = (value * (period - 1) + float(x)) / period
    return value


def vol_target_notional(
    equity: float, target_vol: float, realised: float, max_leverage: float = 1.0
) -> float:
    """Notional such that the position's annualised vol equals `target_vol` of equity, capped by leverage."""
    if equity <= 0 or target_vol <= 0 or realised <= 0:
        return 0.0
    return min(equity * target_vol / realised, equity * max_leverage)


def atr_position(equity: float, risk_fraction: float, atr_value: float, multiple: float = 2.0) -> float:
    """Base quantity such that a move of `multiple` ATRs loses `risk_fraction` of equity."""
    if equity <= 0 or risk_fraction <= 0 or atr_value <= 0 or multiple <= 0:
        return 0.0
    return equity * risk_fraction / (atr_value * multiple)


def kelly_fraction(win_prob: float, win_loss_ratio: float) -> float:
    """Full Kelly fraction f* = p - (1 - p) / b (may be negative: do not bet)."""
    if not 0.0 <= win_prob <= 1.0 or win_loss_ratio <= 0:
        raise ValueError("win_prob in [0, 1] and win_loss_ratio > 0")
    return win_prob - (1.0 - win_prob) / win_loss_ratio


def capped_kelly(win_prob: float, win_loss_ratio: float, fraction: float = 0.5, cap: float = 0.25) -> float:
    """Fractional Kelly, floored at 0 and capped at `cap` of equity."""
    return max(0.0, min(cap, fraction * kelly_fraction(win_prob, win_loss_ratio)))


def vol_regime_factor(current_vol: float, baseline_vol: float, floor: float = 0.25) -> float:
    """Scale factor for limits: 1 in calm regimes, baseline/current when vol rises, never below `floor`."""
    if current_vol <= 0 or baseline_vol <= 0:
        return 1.0
    return max(floor, min(1.0, baseline_vol / current_vol))


@dataclass(frozen=True, slots=True)
class VolRegime:
    """Short-window realised vol against the whole window's, and the limit factor that follows (<= 1)."""

    factor: float
    current_vol: float
    baseline_vol: float
    recent_bars: int
    baseline_bars: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "factor": round(self.factor, 6),
            "current_vol": round(self.current_vol, 6),
            "baseline_vol": round(self.baseline_vol, 6),
            "recent_bars": self.recent_bars,
            "baseline_bars": self.baseline_bars,
        }


def vol_regime(
    closes: Sequence[float], recent_bars: int = 24, periods_per_year: float = 8760.0, floor: float = 0.25
) -> VolRegime:
    """Regime of a close series: realised vol of the last `recent_bars` returns against the whole series'.

    Both vols come from the same bars, so the annualisation only labels them; the factor is their ratio,
    clamped to [floor, 1] by `vol_regime_factor` (a calm regime never loosens a limit)."""
    if recent_bars < 3:
        raise ValueError("recent_bars >= 3")
    if len(closes) < 2 * recent_bars:
        raise ValueError(f"need at least {2 * recent_bars} closes for a {recent_bars}-bar regime, got {len(closes)}")
    current = realised_vol(closes[-(recent_bars + 1):], periods_per_year)
    baseline = realised_vol(closes, periods_per_year)
    return VolRegime(vol_regime_factor(current, baseline, floor), current, baseline, recent_bars, len(closes))


_UNIT_SECONDS = {"m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def periods_per_year(timeframe: str) -> float:
    """Bars per year of a ccxt timeframe ('1m', '4h', '1d', '1w')."""
    try:
        n, unit = float(timeframe[:-1]), timeframe[-1]
        seconds = n * _UNIT_SECONDS[unit]
    except (ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"unknown timeframe {timeframe!r}") from exc
    if seconds <= 0:
        raise ValueError(f"unknown timeframe {timeframe!r}")
    return 365.0 * 86400.0 / seconds


@dataclass(frozen=True, slots=True)
class SizeResult:
    method: str
    qty: float  # base quantity
    notional: float  # qty x entry, quote currency
    fraction_of_equity: float
    derivation: str  # the formula with the numbers, for a person to check

    def to_dict(self) -> dict[str, float | str]:
        return {
            "method": self.method,
            "qty": self.qty,
            "notional": round(self.notional, 8),
            "fraction_of_equity": round(self.fraction_of_equity, 8),
            "derivation": self.derivation,
        }


def _result(method: str, qty: float, entry: float, equity: float, derivation: str) -> SizeResult:
    qty = max(0.0, qty)
    return SizeResult(method, qty, qty * entry, qty * entry / equity if equity > 0 else 0.0, derivation)


def size_fixed_fractional(equity: float, risk_fraction: float, entry: float, stop: float) -> SizeResult:
    qty = fixed_fractional(equity, risk_fraction, entry, stop)
    return _result(
        "fixed_fractional", qty, entry, equity,
        f"qty = equity x risk_fraction / |entry - stop| = {equity:g} x {risk_fraction:g} / {abs(entry - stop):g}",
    )


def size_atr(equity: float, risk_fraction: float, entry: float, atr_value: float, multiple: float) -> SizeResult:
    qty = atr_position(equity, risk_fraction, atr_value, multiple)
    return _result(
        "atr", qty, entry, equity,
        f"qty = equity x risk_fraction / (ATR x multiple) = {equity:g} x {risk_fraction:g} / "
        f"({atr_value:g} x {multiple:g})",
    )


def size_vol_target(
    equity: float, target_vol: float, realised: float, entry: float, max_leverage: float = 1.0
) -> SizeResult:
    notional = vol_target_notional(equity, target_vol, realised, max_leverage)
    capped = " (capped by leverage)" if notional < equity * target_vol / realised - 1e-9 else ""
    return _result(
        "vol_target", notional / entry, entry, equity,
        f"notional = equity x target_vol / realised_vol = {equity:g} x {target_vol:g} / {realised:.6g}"
        f"{capped}; qty = notional / entry {entry:g}",
    )


def size_kelly(
    equity: float, win_prob: float, win_loss_ratio: float, entry: float, fraction: float = 0.5, cap: float = 0.25
) -> SizeResult:
    full = kelly_fraction(win_prob, win_loss_ratio)
    f = capped_kelly(win_prob, win_loss_ratio, fraction, cap)
    return _result(
        "kelly", equity * f / entry, entry, equity,
        f"f* = p - (1 - p) / b = {win_prob:g} - {1 - win_prob:g} / {win_loss_ratio:g} = {full:.6g}; "
        f"f = clamp({fraction:g} x f*, 0, {cap:g}) = {f:.6g}; qty = equity x f / entry",
    )
