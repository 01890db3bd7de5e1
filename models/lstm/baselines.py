"""Interval baselines a quant would reach for, evaluated on the same origins as the network's interval.

- GARCH(1,1) on one-step log returns (the `arch` package; constant mean, normal innovations), fitted on the fold's
  training candles only; at each test origin its parameters stay fixed and the variance filter runs on the returns
  known at that origin. The h-step interval is mean*h +- z * sqrt(sum of the 1..h step variance forecasts).
- Empirical quantiles of past h-step returns: the (1-level)/2 and (1+level)/2 quantiles of the last `lookback`
  cumulative h-step returns whose outcome was known at the origin.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from models.lstm.data import DataError, FloatArray, IntArray

RET_SCALE = 100.0  # arch fits percent returns (better conditioned optimiser)
EMPIRICAL_LOOKBACK = 720  # candles (30 days of hourly candles)


@dataclass
class BaselineBands:
    lo: FloatArray  # (n, horizon) cumulative log-return bounds
    hi: FloatArray


def garch_bands(
    ret: FloatArray, start: int, cutoff: int, origins: IntArray, horizon: int, level: float
) -> tuple[BaselineBands, dict[str, float]]:
    """GARCH(1,1) intervals at `origins` (all >= cutoff), parameters fitted on returns (start, cutoff).

    `ret[t]` is log(close[t] / close[t-1]) (ret[0] is unused). Returns the bands and the fitted parameters."""
    from arch import arch_model

    first = max(1, start + 1)
    last_origin = int(origins.max())
    if cutoff - first < 100:
        raise DataError("GARCH needs at least 100 training returns")
    y = RET_SCALE * np.nan_to_num(np.asarray(ret[first : last_origin + 1], dtype=np.float64))
    model = arch_model(y, mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the fit's parameters are reported
        res = model.fit(last_obs=cutoff - first, disp="off", show_warning=False)
        fc = res.forecast(horizon=horizon, start=int(origins.min()) - first, reindex=False, method="analytic")
    mean = np.asarray(fc.mean, dtype=np.float64)  # rows: origins min..last, in time order
    var = np.asarray(fc.variance, dtype=np.float64)
    rows = origins - int(origins.min())
    mean_c = np.cumsum(mean[rows], axis=1) / RET_SCALE
    sd_c = np.sqrt(np.cumsum(var[rows], axis=1)) / RET_SCALE
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    params: dict[str, Any] = {str(k): float(v) for k, v in res.params.items()}
    return BaselineBands(lo=mean_c - z * sd_c, hi=mean_c + z * sd_c), params


def empirical_bands(
    targets: FloatArray, origins: IntArray, horizon: int, level: float, lookback: int = EMPIRICAL_LOOKBACK
) -> BaselineBands:
    """Quantiles of the last `lookback` realised h-step returns known at each origin (origin o - h and before)."""
    q_lo, q_hi = 0.5 - level / 2.0, 0.5 + level / 2.0
    n = origins.size
    lo = np.full((n, horizon), np.nan)
    hi = np.full((n, horizon), np.nan)
    for j in range(horizon):
        h = j + 1
        col = targets[:, j]
        for i, o in enumerate(origins):
            stop = int(o) - h + 1  # targets[t, j] is known at o when t + h <= o
            past = col[max(0, stop - lookback) : max(0, stop)]
            past = past[np.isfinite(past)]
            if past.size >= 10:
                lo[i, j], hi[i, j] = np.quantile(past, [q_lo, q_hi])
    if not np.isfinite(lo).all():
        raise DataError("too little history before the test origins for the empirical-quantile baseline")
    return BaselineBands(lo=lo, hi=hi)


def matched_width(y: FloatArray, lo: FloatArray, hi: FloatArray, target: float) -> float:
    """Mean width of the band rescaled about its centre (one factor for all origins) so that it covers exactly
    `target` of y: the baseline's width at another interval's coverage (an oracle factor, in its favour)."""
    centre = (lo + hi) / 2.0
    half = np.maximum((hi - lo) / 2.0, 1e-300)
    ratio = np.sort(np.abs(y - centre) / half)
    k = min(ratio.size - 1, max(0, int(np.ceil(target * ratio.size)) - 1))
    return float(np.mean(hi - lo) * ratio[k])
