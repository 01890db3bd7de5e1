"""Put-call parity helpers (European options; prices discounted with r, forward F)."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.pricing.black import FloatArray


def _f(a: Any) -> FloatArray:
    return np.asarray(a, dtype=np.float64)


def discount(T: Any, r: Any = 0.0) -> FloatArray:
    return np.exp(-_f(r) * _f(T))


def put_from_call(call: Any, F: Any, K: Any, T: Any, r: Any = 0.0) -> FloatArray:
    """P = C - DF (F - K)."""
    return _f(call) - discount(T, r) * (_f(F) - _f(K))


def call_from_put(put: Any, F: Any, K: Any, T: Any, r: Any = 0.0) -> FloatArray:
    """C = P + DF (F - K)."""
    return _f(put) + discount(T, r) * (_f(F) - _f(K))


def parity_gap(call: Any, put: Any, F: Any, K: Any, T: Any, r: Any = 0.0) -> FloatArray:
    """C - P - DF (F - K): zero when the pair is consistent with forward F."""
    return _f(call) - _f(put) - discount(T, r) * (_f(F) - _f(K))


def implied_forward(call: Any, put: Any, K: Any, T: Any, r: Any = 0.0) -> FloatArray:
    """Forward implied by a call/put pair at the same strike: F = K + (C - P) / DF."""
    return _f(K) + (_f(call) - _f(put)) / discount(T, r)


def spot_forward(S: Any, T: Any, r: Any = 0.0, q: Any = 0.0) -> FloatArray:
    """BSM forward S exp((r - q) T), to use the Black-76 helpers with spot inputs."""
    return _f(S) * np.exp((_f(r) - _f(q)) * _f(T))
