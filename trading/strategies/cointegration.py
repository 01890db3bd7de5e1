"""Cointegration tools for pairs trading: Engle-Granger, Johansen, hedge ratios (rolling OLS, Kalman), half-life."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np

from trading.strategies.base import FloatArray


@dataclass(frozen=True)
class EngleGranger:
    beta: float  # y ~ alpha + beta * x
    alpha: float
    t_stat: float
    p_value: float
    half_life: float  # bars; inf when the spread does not mean-revert

    @property
    def cointegrated(self) -> bool:
        return self.p_value < 0.05

    def to_json(self) -> dict[str, Any]:
        return {
            "beta": self.beta, "alpha": self.alpha, "t_stat": self.t_stat, "p_value": self.p_value,
            "half_life": None if not math.isfinite(self.half_life) else self.half_life,
            "cointegrated": self.cointegrated,
        }


@dataclass(frozen=True)
class Johansen:
    trace_stat: tuple[float, ...]  # r = 0, r <= 1
    trace_crit_95: tuple[float, ...]
    rank: int  # number of cointegrating relations at 95 %
    beta: float  # hedge ratio from the first eigenvector, normalised on y: y - beta * x

    @property
    def cointegrated(self) -> bool:
        return self.rank >= 1

    def to_json(self) -> dict[str, Any]:
        return {
            "trace_stat": list(self.trace_stat), "trace_crit_95": list(self.trace_crit_95),
            "rank": self.rank, "beta": self.beta, "cointegrated": self.cointegrated,
        }


def ols_hedge(y: FloatArray, x: FloatArray) -> tuple[float, float]:
    """OLS of y on x with intercept: returns (beta, alpha)."""
    xm, ym = float(np.mean(x)), float(np.mean(y))
    dx = x - xm
    var = float(np.dot(dx, dx))
    if var == 0.0:
        raise ValueError("x is constant; no hedge ratio")
    beta = float(np.dot(dx, y - ym)) / var
    return beta, ym - beta * xm


def half_life(spread: FloatArray) -> float:
    """Half-life of mean reversion in bars from the AR(1) fit ds_t = a + b s_{t-1}: -ln 2 / ln(1 + b)."""
    s = np.asarray(spread, dtype=np.float64)
    if s.shape[0] < 3:
        return math.inf
    b, _ = ols_hedge(np.diff(s), s[:-1])
    if b >= 0 or b <= -1:
        return math.inf if b >= 0 else 0.0
    return float(-math.log(2.0) / math.log1p(b))


def engle_granger(y: FloatArray, x: FloatArray) -> EngleGranger:
    """Two-step Engle-Granger test (statsmodels `coint`, constant trend, MacKinnon p-value) plus hedge and half-life."""
    from statsmodels.tsa.stattools import coint

    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if y.shape != x.shape or y.shape[0] < 20:
        raise ValueError("engle_granger needs two series of the same length (at least 20 points)")
    beta, alpha = ols_hedge(y, x)
    t_stat, p_value, _ = coint(y, x, trend="c", autolag="AIC")
    return EngleGranger(beta, alpha, float(t_stat), float(p_value), half_life(y - beta * x - alpha))


def johansen(y: FloatArray, x: FloatArray, k_ar_diff: int = 1) -> Johansen:
    """Johansen trace test (statsmodels `coint_johansen`, constant term) on the pair (y, x)."""
    from statsmodels.tsa.vector_ar.vecm import coint_johansen

    data = np.column_stack([np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)])
    if data.shape[0] < 30:
        raise ValueError("johansen needs at least 30 points")
    res = coint_johansen(data, det_order=0, k_ar_diff=k_ar_diff)
    trace = tuple(float(v) for v in res.lr1)
    crit = tuple(float(v) for v in res.cvt[:, 1])
    rank = 0
    for stat, cv in zip(trace, crit, strict=True):
        if stat > cv:
            rank += 1
        else:
            break
    vec = res.evec[:, 0]
    beta = float(-vec[1] / vec[0]) if vec[0] != 0 else math.nan
    return Johansen(trace, crit, rank, beta)


def rolling_hedge(y: FloatArray, x: FloatArray, window: int) -> tuple[FloatArray, FloatArray]:
    """Rolling OLS beta and alpha over the last `window` points (NaN before)."""
    n = y.shape[0]
    beta = np.full(n, np.nan)
    alpha = np.full(n, np.nan)
    if n < window:
        return beta, alpha
    k = np.ones(window)
    sx = np.convolve(x, k, "valid")
    sy = np.convolve(y, k, "valid")
    sxx = np.convolve(x * x, k, "valid")
    sxy = np.convolve(x * y, k, "valid")
    var = sxx - sx * sx / window
    cov = sxy - sx * sy / window
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(var > 0, cov / var, np.nan)
    beta[window - 1 :] = b
    alpha[window - 1 :] = (sy - b * sx) / window
    return beta, alpha


@nb.njit(cache=True)
def kalman_hedge(y: FloatArray, x: FloatArray, delta: float, obs_var: float) -> tuple[FloatArray, FloatArray]:
    """Kalman filter for y_t = alpha_t + beta_t x_t + e_t with random-walk (beta, alpha).

    `delta` sets the state noise (delta / (1 - delta) * I), `obs_var` the measurement noise. The value at t is the
    filtered estimate after seeing y_t (causal)."""  # pragma: no cover - compiled
    n = y.shape[0]
    beta = np.empty(n)
    alpha = np.empty(n)
    b = 0.0
    a = 0.0
    # state covariance P (2x2: beta, alpha)
    p00 = 1.0
    p01 = 0.0
    p11 = 1.0
    q = delta / (1.0 - delta)
    for t in range(n):
        p00 += q
        p11 += q
        h0 = x[t]
        # innovation
        e = y[t] - (b * h0 + a)
        s = h0 * h0 * p00 + 2.0 * h0 * p01 + p11 + obs_var
        k0 = (p00 * h0 + p01) / s
        k1 = (p01 * h0 + p11) / s
        b += k0 * e
        a += k1 * e
        n00 = p00 - k0 * (h0 * p00 + p01)
        n01 = p01 - k0 * (h0 * p01 + p11)
        n11 = p11 - k1 * (h0 * p01 + p11)
        p00, p01, p11 = n00, n01, n11
        beta[t] = b
        alpha[t] = a
    return beta, alpha
