"""Causal indicators on float64 arrays (value at i uses inputs up to i). NaN until enough history.

Running-sum moving averages are written as explicit loops (numba) so that every path (vectorised backtest,
event-driven backtest, live `on_bar`) sees bit-identical values.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from trading.strategies.base import FloatArray


@nb.njit(cache=True)
def sma(x: FloatArray, n: int) -> FloatArray:  # pragma: no cover - compiled
    out = np.full(x.shape[0], np.nan)
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
        if i >= n:
            s -= x[i - n]
        if i >= n - 1:
            out[i] = s / n
    return out


@nb.njit(cache=True)
def sma_cross(x: FloatArray, fast: int, slow: int, low: float) -> FloatArray:  # pragma: no cover - compiled
    """1 where SMA(fast) > SMA(slow), `low` where below, 0 where equal or undefined; one fused pass, the same
    running sums (bit for bit) as `sma`."""
    n = x.shape[0]
    out = np.zeros(n)
    sf = 0.0
    ss = 0.0
    for i in range(n):
        sf += x[i]
        ss += x[i]
        if i >= fast:
            sf -= x[i - fast]
        if i >= slow:
            ss -= x[i - slow]
        if i >= slow - 1 and i >= fast - 1:
            f = sf / fast
            s = ss / slow
            if f > s:
                out[i] = 1.0
            elif f < s:
                out[i] = low
    return out


@nb.njit(cache=True)
def ema(x: FloatArray, n: int) -> FloatArray:  # pragma: no cover - compiled
    """Exponential MA with alpha 2/(n+1), seeded with the SMA of the first n values."""
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] < n:
        return out
    alpha = 2.0 / (n + 1.0)
    s = 0.0
    for i in range(n):
        s += x[i]
    v = s / n
    out[n - 1] = v
    for i in range(n, x.shape[0]):
        v = alpha * x[i] + (1.0 - alpha) * v
        out[i] = v
    return out


@nb.njit(cache=True)
def rolling_std(x: FloatArray, n: int) -> FloatArray:  # pragma: no cover - compiled
    """Population standard deviation over the last n values (two-pass per window, exact)."""
    out = np.full(x.shape[0], np.nan)
    for i in range(n - 1, x.shape[0]):
        m = 0.0
        for j in range(i - n + 1, i + 1):
            m += x[j]
        m /= n
        v = 0.0
        for j in range(i - n + 1, i + 1):
            d = x[j] - m
            v += d * d
        out[i] = np.sqrt(v / n)
    return out


@nb.njit(cache=True)
def rolling_max_prev(x: FloatArray, n: int) -> FloatArray:  # pragma: no cover - compiled
    """max(x[i-n:i]): the previous n values, excluding the current one."""
    out = np.full(x.shape[0], np.nan)
    for i in range(n, x.shape[0]):
        m = x[i - n]
        for j in range(i - n + 1, i):
            if x[j] > m:
                m = x[j]
        out[i] = m
    return out


@nb.njit(cache=True)
def rolling_min_prev(x: FloatArray, n: int) -> FloatArray:  # pragma: no cover - compiled
    out = np.full(x.shape[0], np.nan)
    for i in range(n, x.shape[0]):
        m = x[i - n]
        for j in range(i - n + 1, i):
            if x[j] < m:
                m = x[j]
        out[i] = m
    return out


@nb.njit(cache=True)
def rsi(close: FloatArray, n: int) -> FloatArray:  # pragma: no cover - compiled
    """Wilder's RSI: seeded with the mean gain/loss of the first n changes, then smoothed by 1/n."""
    out = np.full(close.shape[0], np.nan)
    if close.shape[0] <= n:
        return out
    g = 0.0
    loss = 0.0
    for i in range(1, n + 1):
        d = close[i] - close[i - 1]
        if d > 0:
            g += d
        else:
            loss -= d
    g /= n
    loss /= n
    out[n] = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + g / loss)
    for i in range(n + 1, close.shape[0]):
        d = close[i] - close[i - 1]
        up = d if d > 0 else 0.0
        dn = -d if d < 0 else 0.0
        g = (g * (n - 1) + up) / n
        loss = (loss * (n - 1) + dn) / n
        out[i] = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + g / loss)
    return out


@nb.njit(cache=True)
def hysteresis(
    long_entry: np.ndarray, long_exit: np.ndarray, short_entry: np.ndarray, short_exit: np.ndarray
) -> FloatArray:  # pragma: no cover - compiled
    """Position state machine: -1/0/+1 from entry and exit conditions (exit first, then a possible reversal)."""
    n = long_entry.shape[0]
    out = np.zeros(n)
    pos = 0.0
    for i in range(n):
        if pos > 0 and long_exit[i]:
            pos = 0.0
        elif pos < 0 and short_exit[i]:
            pos = 0.0
        if pos == 0.0:
            if long_entry[i]:
                pos = 1.0
            elif short_entry[i]:
                pos = -1.0
        out[i] = pos
    return out


def log_returns(close: FloatArray) -> FloatArray:
    out = np.full(close.shape[0], np.nan)
    out[1:] = np.log(close[1:] / close[:-1])
    return out
