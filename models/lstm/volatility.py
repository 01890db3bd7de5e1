"""Local volatility estimates that scale the forecast interval (pure functions, no look-ahead).

Row t of every estimate uses the one-step log returns up to and including t, which are known at forecast origin t.
Two exponentially weighted variances (a fast one that follows volatility bursts, a slow one that stands for the
level volatility returns to) are mixed per horizon step on the calibration fold: a GARCH(1,1) forecast of the
h-step variance is such a mix too (the fast term decays towards the long-run level as h grows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

FAST_HALFLIFE = 12.0  # candles
SLOW_HALFLIFE = 240.0
VAR_FLOOR = 1e-16
# per-step mixes tried on the calibration fold (weight of the fast variance; the rest is the slow one)
MIX_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)


def ewma_variance(ret: FloatArray, halflife: float) -> FloatArray:
    """Exponentially weighted mean of squared returns known at each row (row t includes ret[t]).

    Non-finite returns (row 0 has none) count as missing; rows before the first return get the first value."""
    r2 = pd.Series(np.where(np.isfinite(ret), np.asarray(ret, dtype=np.float64) ** 2, np.nan))
    var = r2.ewm(halflife=halflife, adjust=True, ignore_na=True).mean().bfill().to_numpy(dtype=np.float64)
    var = np.where(np.isfinite(var), var, VAR_FLOOR)
    return np.maximum(var, VAR_FLOOR)


def variance_components(ret: FloatArray, trailing_vol: FloatArray) -> FloatArray:
    """(n, 3) one-step variance estimates per row: fast EWMA, slow EWMA, trailing-window variance."""
    return np.column_stack(
        [
            ewma_variance(ret, FAST_HALFLIFE),
            ewma_variance(ret, SLOW_HALFLIFE),
            np.maximum(np.asarray(trailing_vol, dtype=np.float64) ** 2, VAR_FLOOR),
        ]
    )


def interval_scale(components: FloatArray, weights: FloatArray) -> FloatArray:
    """(n, horizon) scale of the h-step cumulative return: sqrt(h * sum_k weights[h, k] * components[:, k]).

    `components` is (n, 3) as from `variance_components`; `weights` is (horizon, 3)."""
    comp = np.asarray(components, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    var1 = comp @ w.T  # (n, horizon) one-step variance per step's mix
    steps = np.arange(1, w.shape[0] + 1, dtype=np.float64)[None, :]
    return np.sqrt(np.maximum(var1, VAR_FLOOR) * steps)


def mix_weights(fast: float) -> list[float]:
    """A (fast, slow, trailing) weight row for a fast/slow mix."""
    return [float(fast), float(1.0 - fast), 0.0]


LEGACY_WEIGHTS = [0.0, 0.0, 1.0]  # models calibrated before the EWMA scale: trailing-window volatility only
