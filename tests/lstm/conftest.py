"""Fixtures for the LSTM engine's tests: synthetic candles with known noise and a tiny, fast configuration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.lstm.config import LSTMConfig

HOUR_MS = 3_600_000


def synthetic_candles(
    n: int, *, sigma: float = 0.01, phi: float = 0.0, seed: int = 0, start_ms: int = 0
) -> pd.DataFrame:
    """Close follows log returns r_t = phi * r_{t-1} + sigma * N(0, 1): known noise, optional predictability."""
    rng = np.random.default_rng(seed)
    eps = sigma * rng.standard_normal(n)
    r = np.empty(n)
    prev = 0.0
    for i in range(n):
        prev = phi * prev + eps[i]
        r[i] = prev
    close = 100.0 * np.exp(np.cumsum(r))
    spread = np.abs(rng.standard_normal(n)) * sigma * close
    return pd.DataFrame(
        {
            "timestamp_ms": start_ms + np.arange(n, dtype=np.int64) * HOUR_MS,
            "open": np.r_[close[0], close[:-1]],
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": rng.lognormal(3.0, 0.5, n),
        }
    )


def tiny_config(**changes: object) -> LSTMConfig:
    base = dict(
        window=16, horizon=4, layers=1, units=8, dropout=0.1, epochs=3, patience=2, batch_size=64,
        folds=2, test_size=150, progress=False, seed=7, jit_compile=False,
    )
    base.update(changes)
    return LSTMConfig(**base)  # type: ignore[arg-type]


@pytest.fixture()
def candles() -> pd.DataFrame:
    return synthetic_candles(900)


@pytest.fixture()
def config() -> LSTMConfig:
    return tiny_config()
