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


def _bars_from_log(log_p: np.ndarray, symbol: str, open_seed: int | None = None, volume: float = 1e9) -> Bars:
    n = log_p.shape[0]
    close = np.exp(log_p)
    open_ = np.concatenate([close[:1], close[:-1]])
    if open_seed is not None:
        open_ = open_ * (1.0 + 0.001 * lcg_noise(n, open_seed))
    t = np.arange(n, dtype=np.int64) * 3_600_000
    return Bars(t, open_, np.maximum(open_, close), np.minimum(open_, close), close, np.full(n, volume), symbol)


def dislocated_pair(n: int = 600) -> tuple[Bars, Bars]:
    """y = x times exp(spread): the spread is tiny noise except two known dislocations that decay linearly to
    zero over 40 bars: y cheap from bar 300 (buy y / sell x), y rich from bar 450 (sell y / buy x)."""
    t = np.arange(n)
    lx = math.log(100.0) + 0.01 * np.cumsum(lcg_noise(n, 4242)) + 0.1 * np.sin(t / 50.0)
    spread = 0.002 * lcg_noise(n, 99)
    spread[300:340] -= 0.03 * np.linspace(1.0, 0.0, 40)
    spread[450:490] += 0.03 * np.linspace(1.0, 0.0, 40)
    return _bars_from_log(lx + spread, "ETH/USDT"), _bars_from_log(lx, "BTC/USDT")


def ou_pair(n: int = 3000, beta: float = 1.3) -> tuple[Bars, Bars]:
    """A cointegrated pair: log y = beta log x - 1 + an AR(1) spread (phi 0.97), x the trending waves."""
    x = wave_bars(n, "BTC/USDT")
    e = 0.02 * lcg_noise(n, 2024)
    s = np.zeros(n)
    for i in range(1, n):
        s[i] = 0.97 * s[i - 1] + e[i]
    y = _bars_from_log(beta * np.log(x.close) - 1.0 + s, "ETH/USDT", open_seed=31)
    return y, x
