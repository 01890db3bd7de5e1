"""Deterministic constructed candles for the backtest tests (no RNG whose stream could change between versions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trading.strategies.base import Bars


def lcg_noise(n: int, seed: int = 12345) -> np.ndarray:
    """Uniform(-0.5, 0.5) from a fixed linear congruential generator (same numbers everywhere)."""
    out = np.empty(n)
    state = seed
    for i in range(n):
        state = (1103515245 * state + 12345) % (2**31)
        out[i] = state / 2**31 - 0.5
    return out


def wave_bars(n: int = 3000, symbol: str = "BTC/USDT", volume: float = 1e9) -> Bars:
    """Trending waves plus deterministic noise: plenty of crossings and reversions."""
    t = np.arange(n)
    noise = lcg_noise(n)
    log_p = 0.25 * np.sin(t / 60.0) + 0.1 * np.sin(t / 13.0) + 0.0002 * t + 0.01 * np.cumsum(noise) / math.sqrt(3)
    close = 100.0 * np.exp(log_p)
    open_ = np.concatenate([[close[0]], close[:-1]]) * (1.0 + 0.001 * lcg_noise(n, 777))
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    vol = np.full(n, volume) * (1.0 + lcg_noise(n, 99))
    return Bars(t.astype(np.int64) * 3_600_000, open_, high, low, close, vol, symbol)


@pytest.fixture()
def waves() -> Bars:
    return wave_bars()
