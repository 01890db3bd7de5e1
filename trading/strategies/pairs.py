"""Statistical arbitrage on a pair: trade the spread log(y) - beta log(x) when it strays and reverts.

- Hedge ratio: rolling OLS over `window` bars, or a Kalman filter.
- Entry at |z| > entry_z, exit at |z| < exit_z, stop at |z| > stop_z (no re-entry until |z| comes back below
  entry_z), and a hard stop when the relationship breaks: every `retest_every` bars an Engle-Granger (or Johansen)
  test on the last `coint_window` bars; a failed test, or a half-life above `max_half_life`, flattens the pair and
  blocks entries until a later test passes.
- Target weights: long spread = +1/(1+|beta|) in y and -beta/(1+|beta|) in x (gross 1), with beta frozen at entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numba as nb
import numpy as np

from trading.strategies.base import Bars, FloatArray, ParamSpec, Strategy
from trading.strategies.cointegration import engle_granger, half_life, johansen, kalman_hedge, rolling_hedge
from trading.strategies.indicators import rolling_std, sma


@nb.njit(cache=True)
def _pair_positions(
    z: FloatArray, beta: FloatArray, ok: np.ndarray, entry: float, exit_: float, stop: float
) -> FloatArray:  # pragma: no cover - compiled
    n = z.shape[0]
    out = np.zeros((n, 2))
    side = 0.0
    b_entry = 0.0
    stopped = False
    for i in range(n):
        zi = z[i]
        if np.isnan(zi) or np.isnan(beta[i]) or not ok[i]:
            side = 0.0
        else:
            if stopped and abs(zi) < entry:
                stopped = False
            if side != 0.0:
                if abs(zi) > stop:
                    side = 0.0
                    stopped = True
                elif (side > 0 and zi > -exit_) or (side < 0 and zi < exit_):
                    side = 0.0
            if side == 0.0 and not stopped:
                if zi < -entry:
                    side = 1.0
                    b_entry = beta[i]
                elif zi > entry:
                    side = -1.0
                    b_entry = beta[i]
        if side != 0.0:
            g = 1.0 + abs(b_entry)
            out[i, 0] = side / g
            out[i, 1] = -side * b_entry / g
    return out


class PairsStatArb(Strategy):
    name: ClassVar[str] = "pairs"
    family: ClassVar[str] = "stat_arb"
    description: ClassVar[str] = __doc__ or ""
    n_symbols: ClassVar[int] = 2
    PARAMS: ClassVar[tuple[ParamSpec, ...]] = (
        ParamSpec("window", "int", 120, 10, 5000, doc="hedge-ratio and z-score window (bars)"),
        ParamSpec("hedge", "choice", "rolling", choices=("rolling", "kalman")),
        ParamSpec("kalman_delta", "float", 1e-4, 1e-7, 0.1),
        ParamSpec("entry_z", "float", 2.0, 0.5, 5.0),
        ParamSpec("exit_z", "float", 0.5, 0.0, 4.0),
        ParamSpec("stop_z", "float", 4.0, 1.0, 10.0),
        ParamSpec("test", "choice", "engle_granger", choices=("engle_granger", "johansen", "none")),
        ParamSpec("coint_window", "int", 500, 30, 20000),
        ParamSpec("retest_every", "int", 24, 1, 10000),
        ParamSpec("max_pvalue", "float", 0.05, 0.001, 1.0),
        ParamSpec("max_half_life", "float", 500.0, 1.0, 1e6, doc="bars"),
    )

    def check_params(self, params: Mapping[str, Any]) -> None:
        if not params["exit_z"] < params["entry_z"] < params["stop_z"]:
            raise ValueError("need exit_z < entry_z < stop_z")

    def warmup(self) -> int:
        w = int(self.params["window"])
        return w * 2 if self.params["test"] == "none" else max(w * 2, int(self.params["coint_window"]))

    def hedge(self, ly: FloatArray, lx: FloatArray) -> tuple[FloatArray, FloatArray]:
        if self.params["hedge"] == "kalman":
            beta, alpha = kalman_hedge(ly, lx, float(self.params["kalman_delta"]), 1e-3)
            beta[: int(self.params["window"]) - 1] = np.nan  # let the filter settle
            return beta, alpha
        return rolling_hedge(ly, lx, int(self.params["window"]))

    def relationship_ok(self, ly: FloatArray, lx: FloatArray) -> np.ndarray:
        """Per bar: did the most recent cointegration retest (on data up to that bar) pass?"""
        n = ly.shape[0]
        test = self.params["test"]
        if test == "none":
            return np.ones(n, dtype=np.bool_)
        cw, every = int(self.params["coint_window"]), int(self.params["retest_every"])
        ok = np.zeros(n, dtype=np.bool_)
        state = False
        last = -1
        for i in range(cw - 1, n):
            if last < 0 or i - last >= every:
                last = i
                y, x = ly[i - cw + 1 : i + 1], lx[i - cw + 1 : i + 1]
                try:
                    if test == "johansen":
                        state = johansen(y, x).cointegrated
                        if state:
                            b = np.polyfit(x, y, 1)
                            state = half_life(y - b[0] * x - b[1]) <= float(self.params["max_half_life"])
                    else:
                        eg = engle_granger(y, x)
                        state = eg.p_value <= float(self.params["max_pvalue"]) and eg.half_life <= float(
                            self.params["max_half_life"]
                        )
                except (ValueError, np.linalg.LinAlgError):
                    state = False
            ok[i] = state
        return ok

    def spread_z(self, ly: FloatArray, lx: FloatArray) -> tuple[FloatArray, FloatArray]:
        beta, alpha = self.hedge(ly, lx)
        spread = ly - beta * lx - alpha
        w = int(self.params["window"])
        filled = np.where(np.isnan(spread), 0.0, spread)
        m = sma(filled, w)
        s = rolling_std(filled, w)
        # windows that still contain warm-up NaNs are invalid
        first = int(np.argmax(~np.isnan(spread))) if np.any(~np.isnan(spread)) else len(spread)
        m[: first + w - 1] = np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(s > 0, (spread - m) / s, np.nan)
        return z, beta

    def _targets(self, data: Sequence[Bars]) -> FloatArray:
        ly, lx = np.log(data[0].close), np.log(data[1].close)
        z, beta = self.spread_z(ly, lx)
        ok = self.relationship_ok(ly, lx)
        p = self.params
        return _pair_positions(z, beta, ok, float(p["entry_z"]), float(p["exit_z"]), float(p["stop_z"]))

    def diagnostics(self, data: Sequence[Bars]) -> dict[str, Any]:
        """Whole-sample tests for the report (Engle-Granger, Johansen, half-life)."""
        ly, lx = np.log(data[0].close), np.log(data[1].close)
        eg = engle_granger(ly, lx)
        jo = johansen(ly, lx)
        return {
            "engle_granger": eg.to_json(),
            "johansen": jo.to_json(),
            "half_life_bars": eg.half_life if math.isfinite(eg.half_life) else None,
        }
