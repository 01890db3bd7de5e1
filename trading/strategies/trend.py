"""Trend following: moving-average crossover, Donchian breakout, time-series momentum with volatility targeting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numba as nb
import numpy as np

from trading.strategies.base import Bars, FloatArray, ParamSpec, Strategy
from trading.strategies.indicators import (
    ema,
    hysteresis,
    log_returns,
    rolling_max_prev,
    rolling_min_prev,
    rolling_std,
    sma_cross,
)


class MACrossover(Strategy):
    name: ClassVar[str] = "ma_crossover"
    family: ClassVar[str] = "trend"
    description: ClassVar[str] = "Long while the fast moving average is above the slow one (short below, if allowed)."
    PARAMS: ClassVar[tuple[ParamSpec, ...]] = (
        ParamSpec("fast", "int", 20, 2, 200, doc="fast MA length (bars)"),
        ParamSpec("slow", "int", 100, 5, 1000, doc="slow MA length (bars)"),
        ParamSpec("ma", "choice", "sma", choices=("sma", "ema")),
        ParamSpec("allow_short", "bool", False),
    )

    def check_params(self, params: Mapping[str, Any]) -> None:
        if params["fast"] >= params["slow"]:
            raise ValueError(f"fast ({params['fast']}) must be shorter than slow ({params['slow']})")

    def warmup(self) -> int:
        return int(self.params["slow"])

    def _targets(self, data: Sequence[Bars]) -> FloatArray:
        close = data[0].close
        low = -1.0 if self.params["allow_short"] else 0.0
        if self.params["ma"] == "sma":
            return sma_cross(close, int(self.params["fast"]), int(self.params["slow"]), low)
        fast = ema(close, int(self.params["fast"]))
        slow = ema(close, int(self.params["slow"]))
        valid = ~(np.isnan(fast) | np.isnan(slow))
        return np.where(valid & (fast > slow), 1.0, np.where(valid & (fast < slow), low, 0.0))


class DonchianBreakout(Strategy):
    name: ClassVar[str] = "donchian"
    family: ClassVar[str] = "trend"
    description: ClassVar[str] = (
        "Enter long when the close breaks above the highest high of the previous `entry` bars; exit when it falls "
        "below the lowest low of the previous `exit` bars (mirror for shorts)."
    )
    PARAMS: ClassVar[tuple[ParamSpec, ...]] = (
        ParamSpec("entry", "int", 55, 2, 500),
        ParamSpec("exit", "int", 20, 2, 500),
        ParamSpec("allow_short", "bool", False),
    )

    def warmup(self) -> int:
        return int(max(self.params["entry"], self.params["exit"])) + 1

    def _targets(self, data: Sequence[Bars]) -> FloatArray:
        b = data[0]
        hh = rolling_max_prev(b.high, int(self.params["entry"]))
        ll = rolling_min_prev(b.low, int(self.params["entry"]))
        xl = rolling_min_prev(b.low, int(self.params["exit"]))
        xh = rolling_max_prev(b.high, int(self.params["exit"]))
        le = b.close > hh  # NaN comparisons are False
        se = (b.close < ll) & bool(self.params["allow_short"])
        return hysteresis(le, b.close < xl, se, b.close > xh)


@nb.njit(cache=True)
def _vol_target(
    mom: FloatArray, vol: FloatArray, target_vol: float, max_lev: float, band: float, long_only: bool
) -> FloatArray:  # pragma: no cover - compiled
    n = mom.shape[0]
    out = np.zeros(n)
    cur = 0.0
    for i in range(n):
        if np.isnan(mom[i]) or np.isnan(vol[i]) or vol[i] <= 0:
            raw = 0.0
        else:
            lev = target_vol / vol[i]
            if lev > max_lev:
                lev = max_lev
            sgn = 1.0 if mom[i] > 0 else (-1.0 if mom[i] < 0 else 0.0)
            if long_only and sgn < 0:
                sgn = 0.0
            raw = sgn * lev
        # rebalance only on a sign change or when the drift exceeds the band (limits turnover)
        if (raw > 0) != (cur > 0) or (raw < 0) != (cur < 0) or abs(raw - cur) > band:
            cur = np.round(raw, 4)
        out[i] = cur
    return out


class TSMomentum(Strategy):
    name: ClassVar[str] = "ts_momentum"
    family: ClassVar[str] = "trend"
    description: ClassVar[str] = (
        "Time-series momentum: the sign of the return over `lookback` bars, sized so that the position's "
        "annualised volatility is `target_vol` (capped at `max_leverage`), rebalanced when it drifts by `band`."
    )
    PARAMS: ClassVar[tuple[ParamSpec, ...]] = (
        ParamSpec("lookback", "int", 168, 2, 2000),
        ParamSpec("vol_lookback", "int", 72, 5, 2000),
        ParamSpec("target_vol", "float", 0.4, 0.01, 3.0, doc="annualised"),
        ParamSpec("max_leverage", "float", 1.0, 0.1, 5.0),
        ParamSpec("band", "float", 0.2, 0.0, 1.0, doc="rebalance threshold in weight units"),
        ParamSpec("allow_short", "bool", False),
    )

    def warmup(self) -> int:
        return int(max(self.params["lookback"], self.params["vol_lookback"] + 1))

    def _targets(self, data: Sequence[Bars]) -> FloatArray:
        close = data[0].close
        lb = int(self.params["lookback"])
        mom = np.full(close.shape[0], np.nan)
        mom[lb:] = close[lb:] / close[:-lb] - 1.0
        vol = rolling_std(log_returns(close), int(self.params["vol_lookback"])) * np.sqrt(self.periods_per_year)
        return _vol_target(
            mom, vol, float(self.params["target_vol"]), float(self.params["max_leverage"]),
            float(self.params["band"]), not bool(self.params["allow_short"]),
        )
