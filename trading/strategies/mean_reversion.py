"""Mean reversion: z-score against a moving average (Bollinger bands) and RSI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from trading.strategies.base import Bars, FloatArray, ParamSpec, Strategy
from trading.strategies.indicators import hysteresis, rolling_std, rsi, sma


class ZScoreReversion(Strategy):
    name: ClassVar[str] = "zscore"
    family: ClassVar[str] = "mean_reversion"
    description: ClassVar[str] = (
        "Bollinger/z-score reversion: z = (close - SMA) / std over `window`. Long when z < -entry_z, exit when "
        "z > -exit_z (mirror for shorts)."
    )
    PARAMS: ClassVar[tuple[ParamSpec, ...]] = (
        ParamSpec("window", "int", 20, 3, 1000),
        ParamSpec("entry_z", "float", 2.0, 0.1, 5.0),
        ParamSpec("exit_z", "float", 0.0, -2.0, 4.9),
        ParamSpec("allow_short", "bool", False),
    )

    def check_params(self, params: Mapping[str, Any]) -> None:
        if params["exit_z"] >= params["entry_z"]:
            raise ValueError("exit_z must be below entry_z")

    def warmup(self) -> int:
        return int(self.params["window"])

    def zscore(self, close: FloatArray) -> FloatArray:
        w = int(self.params["window"])
        m = sma(close, w)
        s = rolling_std(close, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(s > 0, (close - m) / s, np.nan)

    def _targets(self, data: Sequence[Bars]) -> FloatArray:
        z = self.zscore(data[0].close)
        e, x = float(self.params["entry_z"]), float(self.params["exit_z"])
        short = bool(self.params["allow_short"])
        return hysteresis(z < -e, z > -x, (z > e) & short, z < x)


class RSIReversion(Strategy):
    name: ClassVar[str] = "rsi"
    family: ClassVar[str] = "mean_reversion"
    description: ClassVar[str] = (
        "RSI reversion: long when RSI < lower, exit when RSI > exit_level; short when RSI > upper, exit below "
        "100 - exit_level (if allowed)."
    )
    PARAMS: ClassVar[tuple[ParamSpec, ...]] = (
        ParamSpec("period", "int", 14, 2, 500),
        ParamSpec("lower", "float", 30.0, 1.0, 49.0),
        ParamSpec("upper", "float", 70.0, 51.0, 99.0),
        ParamSpec("exit_level", "float", 50.0, 1.0, 99.0),
        ParamSpec("allow_short", "bool", False),
    )

    def check_params(self, params: Mapping[str, Any]) -> None:
        if not params["lower"] < params["exit_level"] < params["upper"]:
            raise ValueError("need lower < exit_level < upper")

    def warmup(self) -> int:
        return int(self.params["period"]) + 1

    def _targets(self, data: Sequence[Bars]) -> FloatArray:
        r = rsi(data[0].close, int(self.params["period"]))
        lo, hi, ex = float(self.params["lower"]), float(self.params["upper"]), float(self.params["exit_level"])
        short = bool(self.params["allow_short"])
        return hysteresis(r < lo, r > ex, (r > hi) & short, r < 100.0 - ex)
