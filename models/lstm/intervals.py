"""Prediction intervals, calibrated on held-out data.

The network gives a raw band per horizon step: quantile heads, or the spread of Monte Carlo dropout samples. Raw
bands are rarely honest (MC dropout measures only model uncertainty and badly under-covers returns). Split
conformal calibration fixes the coverage on the validation split: the score of a validation sample is how far the
realised return fell outside its raw band, in units of the trailing volatility scaled by sqrt(h); the band is then
widened (or narrowed) by the conformal quantile of these scores times the same scale. Normalising by trailing
volatility keeps coverage close to nominal when volatility regimes change between calibration and use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.lstm.data import FloatArray


def interval_scale(vol: FloatArray, horizon: int) -> FloatArray:
    """(n, horizon) scale: trailing one-step volatility times sqrt(h)."""
    return np.asarray(vol, dtype=np.float64)[:, None] * np.sqrt(np.arange(1, horizon + 1, dtype=np.float64))[None, :]


def conformal_quantile(scores: FloatArray, level: float) -> float:
    """The ceil((n+1)*level)-th smallest score (finite-sample split conformal guarantee)."""
    s = np.sort(scores[np.isfinite(scores)])
    n = s.size
    if n == 0:
        return 0.0
    k = min(n, math.ceil((n + 1) * level))
    return float(s[k - 1])


@dataclass
class Calibration:
    level: float
    offsets: list[float]  # per horizon step, in units of the interval scale (negative narrows the band)
    raw_coverage: list[float]  # coverage of the raw band on the calibration split
    n: int
    conformal: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "offsets": self.offsets,
            "raw_coverage": self.raw_coverage,
            "n": self.n,
            "conformal": self.conformal,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(
            level=float(data["level"]),
            offsets=[float(x) for x in data["offsets"]],
            raw_coverage=[float(x) for x in data["raw_coverage"]],
            n=int(data["n"]),
            conformal=bool(data["conformal"]),
        )


def calibrate(
    lo: FloatArray, hi: FloatArray, y: FloatArray, vol: FloatArray, level: float, conformal: bool = True
) -> Calibration:
    """Per-step offsets so that [lo - q*s, hi + q*s] covers `level` of the calibration targets."""
    horizon = y.shape[1]
    s = interval_scale(vol, horizon)
    scores = np.maximum(lo - y, y - hi) / s
    raw = [float(np.mean((y[:, h] >= lo[:, h]) & (y[:, h] <= hi[:, h]))) for h in range(horizon)]
    offsets = [conformal_quantile(scores[:, h], level) if conformal else 0.0 for h in range(horizon)]
    return Calibration(level=level, offsets=offsets, raw_coverage=raw, n=int(y.shape[0]), conformal=conformal)


def apply_calibration(
    mu: FloatArray, lo: FloatArray, hi: FloatArray, vol: FloatArray, cal: Calibration
) -> tuple[FloatArray, FloatArray]:
    horizon = mu.shape[1]
    s = interval_scale(vol, horizon)
    q = np.asarray(cal.offsets[:horizon], dtype=np.float64)[None, :]
    new_lo = lo - q * s
    new_hi = hi + q * s
    # a negative offset may narrow a band past the point forecast: keep the point inside
    return np.minimum(new_lo, mu), np.maximum(new_hi, mu)


def coverage(y: FloatArray, lo: FloatArray, hi: FloatArray) -> float:
    return float(np.mean((y >= lo) & (y <= hi)))
