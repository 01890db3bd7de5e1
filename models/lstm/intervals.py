"""Prediction intervals, calibrated on a fold the network was not fitted on (split conformal).

The network gives a raw band per horizon step: quantile heads, or the spread of Monte Carlo dropout samples. Raw
bands are rarely honest (MC dropout measures only model uncertainty and badly under-covers returns; quantile heads
fitted in one volatility regime miss the next). The score of a calibration sample is how far the realised return
fell outside its raw band, in units of a local volatility scale for that step (see models.lstm.volatility); the band
is widened (or narrowed) by the conformal quantile of these scores times the same scale. Dividing by a local
volatility keeps the scores comparable across volatility regimes, so a quantile measured in a calm month still
holds in a wild one. Which mix of fast and slow volatility scales a step is chosen on the calibration fold (the mix
that gives the narrowest band at the nominal coverage).

This split calibration is the starting point; models.lstm.adaptive keeps it calibrated as outcomes arrive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.lstm.data import FloatArray
from models.lstm.volatility import LEGACY_WEIGHTS, MIX_GRID, interval_scale, mix_weights

SCORE_MEMORY = 1_000  # calibration scores kept per step (they seed the online buffer)


def conformal_quantile(scores: FloatArray, level: float) -> float:
    """The ceil((n+1)*level)-th smallest score (finite-sample split conformal guarantee)."""
    s = np.sort(scores[np.isfinite(scores)])
    n = s.size
    if n == 0:
        return 0.0
    k = min(n, max(1, math.ceil((n + 1) * level)))
    return float(s[k - 1])


def nonconformity(lo: FloatArray, hi: FloatArray, y: FloatArray, scale: FloatArray) -> FloatArray:
    """How far y fell outside [lo, hi], in units of `scale` (negative inside the band)."""
    return np.asarray(np.maximum(lo - y, y - hi) / scale, dtype=np.float64)


@dataclass
class Calibration:
    level: float
    offsets: list[float]  # per horizon step, in units of the interval scale (negative narrows the band)
    raw_coverage: list[float]  # coverage of the raw band on the calibration fold
    n: int
    conformal: bool
    weights: list[list[float]] = field(default_factory=list)  # per step (fast, slow, trailing) variance weights
    scores: list[list[float]] = field(default_factory=list)  # per step, the calibration fold's scores (time order)

    def scale_weights(self, horizon: int) -> FloatArray:
        rows = self.weights[:horizon] if self.weights else [LEGACY_WEIGHTS] * horizon
        return np.asarray(rows, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "offsets": self.offsets,
            "raw_coverage": self.raw_coverage,
            "n": self.n,
            "conformal": self.conformal,
            "weights": self.weights,
            "scores": self.scores,
        }

    def summary(self) -> dict[str, Any]:
        """The calibration without its score lists (for metadata and replies)."""
        out = self.to_dict()
        out.pop("scores")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(
            level=float(data["level"]),
            offsets=[float(x) for x in data["offsets"]],
            raw_coverage=[float(x) for x in data["raw_coverage"]],
            n=int(data["n"]),
            conformal=bool(data["conformal"]),
            # models saved before the EWMA scale have neither: they keep the trailing-window scale
            weights=[[float(x) for x in row] for row in data.get("weights") or []],
            scores=[[float(x) for x in row] for row in data.get("scores") or []],
        )


def calibrate(
    mu: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    y: FloatArray,
    components: FloatArray,
    level: float,
    conformal: bool = True,
) -> Calibration:
    """Per step: the volatility mix and conformal offset giving the narrowest band that covers `level` of the
    calibration targets. `components` is the (n, 3) variance estimates at the calibration origins."""
    horizon = y.shape[1]
    raw = [float(np.mean((y[:, h] >= lo[:, h]) & (y[:, h] <= hi[:, h]))) for h in range(horizon)]
    weights: list[list[float]] = []
    offsets: list[float] = []
    kept: list[list[float]] = []
    grid = MIX_GRID if conformal else (0.5,)
    for h in range(horizon):
        best: tuple[float, list[float], float, FloatArray] | None = None
        for fast in grid:
            w = np.asarray([mix_weights(fast)] * horizon, dtype=np.float64)
            s = interval_scale(components, w)[:, h]
            scores = nonconformity(lo[:, h], hi[:, h], y[:, h], s)
            q = conformal_quantile(scores, level) if conformal else 0.0
            new_lo = np.minimum(lo[:, h] - q * s, mu[:, h])
            new_hi = np.maximum(hi[:, h] + q * s, mu[:, h])
            width = float(np.mean(new_hi - new_lo))
            if best is None or width < best[0] - 1e-15:
                best = (width, mix_weights(fast), q, scores)
        assert best is not None
        _, w_row, q, scores = best
        weights.append(w_row)
        offsets.append(q)
        kept.append([float(f"{x:.6g}") for x in scores[-SCORE_MEMORY:]])
    return Calibration(
        level=level,
        offsets=offsets,
        raw_coverage=raw,
        n=int(y.shape[0]),
        conformal=conformal,
        weights=weights,
        scores=kept,
    )


def apply_offsets(
    mu: FloatArray, lo: FloatArray, hi: FloatArray, scale: FloatArray, offsets: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """[lo - q*s, hi + q*s] per step, never excluding the point forecast. `offsets` is (horizon,) or (n, horizon)."""
    q = np.asarray(offsets, dtype=np.float64)
    if q.ndim == 1:
        q = q[None, :]
    new_lo = lo - q * scale
    new_hi = hi + q * scale
    # a negative offset may narrow a band past the point forecast: keep the point inside
    return np.minimum(new_lo, mu), np.maximum(new_hi, mu)


def apply_calibration(
    mu: FloatArray, lo: FloatArray, hi: FloatArray, components: FloatArray, cal: Calibration
) -> tuple[FloatArray, FloatArray]:
    """The split-conformal band (the calibration fold's offsets, no online update)."""
    horizon = mu.shape[1]
    scale = interval_scale(components, cal.scale_weights(horizon))
    return apply_offsets(mu, lo, hi, scale, np.asarray(cal.offsets[:horizon], dtype=np.float64))


def coverage(y: FloatArray, lo: FloatArray, hi: FloatArray) -> float:
    return float(np.mean((y >= lo) & (y <= hi)))
