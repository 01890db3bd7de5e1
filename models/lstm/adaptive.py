"""Adaptive conformal inference (Gibbs and Candes 2021): the interval stays calibrated as the regime moves.

Per horizon step h the state holds a working miscoverage rate alpha_h and the most recent nonconformity scores
(seeded with the calibration fold's). The offset issued at an origin is the (1 - alpha_h) conformal quantile of
those scores. When the outcome of origin o at step h becomes known (h candles later) the state learns from it:

    miss = score > offset issued at o for step h
    alpha_h <- alpha_h + gamma * ((1 - level) - miss)

so a run of misses widens the band and a run of hits narrows it, and the long-run miss rate is held at 1 - level
whatever the data do. With `refresh` the score also joins the buffer (the oldest leaves); by default the buffer
stays the calibration fold's (with h-step-late feedback a refreshed buffer lags the regime it should track). The
walk-forward evaluation and the running service drive the very same object, one closed candle at a time, so the
coverage the evaluation measures is the coverage of what the service shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.lstm.intervals import Calibration, conformal_quantile

DEFAULT_GAMMA = 0.02  # chosen on BTC 1h walk-forward (docs/forecasting.md)
DEFAULT_MEMORY = 1_000
ALPHA_BOUNDS = (0.002, 0.998)
RECENT = 500  # outcomes per step kept for the recent-coverage figure


@dataclass
class AdaptiveConformal:
    level: float
    gamma: float
    memory: int
    alpha: list[float]  # per step: working miscoverage rate
    scores: list[list[float]]  # per step: recent scores, oldest first
    issued: dict[int, list[float]] = field(default_factory=dict)  # origin key -> offsets issued, until all seen
    hits: list[list[int]] = field(default_factory=list)  # per step: 1 = covered, most recent RECENT outcomes
    seen: list[int] = field(default_factory=list)  # per step: outcomes learnt from
    last_key: int | None = None  # the newest origin issued (a candle's timestamp in the service)
    refresh: bool = True  # learnt scores join the buffer (else the calibration fold's scores stay as they are)

    @classmethod
    def start(
        cls,
        cal: Calibration,
        horizon: int,
        gamma: float = DEFAULT_GAMMA,
        memory: int = DEFAULT_MEMORY,
        refresh: bool = False,
    ) -> AdaptiveConformal:
        """Fresh state from a split calibration: its scores seed the buffers, alpha starts at 1 - level."""
        if not 0.0 <= gamma < 1.0:
            raise ValueError("gamma must be in [0, 1)")
        if memory < 10:
            raise ValueError("memory must be >= 10")
        scores = [list(cal.scores[h][-memory:]) if h < len(cal.scores) else [] for h in range(horizon)]
        for h in range(horizon):  # a calibration without stored scores: start from its offset
            if not scores[h]:
                scores[h] = [cal.offsets[h] if h < len(cal.offsets) else 0.0]
        return cls(
            level=cal.level,
            gamma=gamma,
            memory=memory,
            alpha=[1.0 - cal.level] * horizon,
            scores=scores,
            hits=[[] for _ in range(horizon)],
            seen=[0] * horizon,
            refresh=refresh,
        )

    @property
    def horizon(self) -> int:
        return len(self.alpha)

    def offsets(self) -> list[float]:
        """The offset per step an interval issued now would use."""
        lo, hi = ALPHA_BOUNDS
        out = []
        for h in range(self.horizon):
            a = min(max(self.alpha[h], lo), hi)
            out.append(conformal_quantile(np.asarray(self.scores[h], dtype=np.float64), 1.0 - a))
        return out

    def issue(self, key: int) -> list[float]:
        """Offsets for an interval at origin `key` (remembered until its outcomes are learnt)."""
        q = self.offsets()
        self.issued[int(key)] = q
        if self.last_key is None or key > self.last_key:
            self.last_key = int(key)
        return q

    def observe(self, key: int, h: int, score: float) -> bool:
        """Learn the outcome of origin `key` at step h (1-based); returns whether its interval covered it."""
        j = h - 1
        issued = self.issued.get(int(key))
        q = issued[j] if issued is not None else self.offsets()[j]
        covered = bool(score <= q)
        # h outcomes of step h are in flight at any time: a step of gamma / h keeps the correction they make
        # together as large as step 1's (a full gamma each would overshoot by h-fold before the first lands)
        self.alpha[j] += (self.gamma / h) * ((1.0 - self.level) - (0.0 if covered else 1.0))
        if self.refresh:
            buf = self.scores[j]
            buf.append(float(f"{score:.6g}"))
            if len(buf) > self.memory:
                del buf[: len(buf) - self.memory]
        rec = self.hits[j]
        rec.append(int(covered))
        if len(rec) > RECENT:
            del rec[: len(rec) - RECENT]
        self.seen[j] += 1
        if j == self.horizon - 1:  # its last outcome: the issued offsets are no longer needed
            self.issued.pop(int(key), None)
        return covered

    def forget_before(self, key: int) -> None:
        """Drop issued offsets of origins older than `key` (their outcomes will never be fed)."""
        for k in [k for k in self.issued if k < key]:
            del self.issued[k]

    def recent_coverage(self, h: int) -> float | None:
        rec = self.hits[h - 1]
        return float(np.mean(rec)) if rec else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "gamma": self.gamma,
            "memory": self.memory,
            "alpha": self.alpha,
            "scores": self.scores,
            "issued": {str(k): v for k, v in self.issued.items()},
            "hits": self.hits,
            "seen": self.seen,
            "last_key": self.last_key,
            "refresh": self.refresh,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptiveConformal:
        return cls(
            level=float(data["level"]),
            gamma=float(data["gamma"]),
            memory=int(data["memory"]),
            alpha=[float(a) for a in data["alpha"]],
            scores=[[float(x) for x in row] for row in data["scores"]],
            issued={int(k): [float(x) for x in v] for k, v in (data.get("issued") or {}).items()},
            hits=[[int(x) for x in row] for row in data.get("hits") or [[] for _ in data["alpha"]]],
            seen=[int(x) for x in data.get("seen") or [0] * len(data["alpha"])],
            last_key=None if data.get("last_key") is None else int(data["last_key"]),
            refresh=bool(data.get("refresh", False)),
        )


def run_sequence(
    state: AdaptiveConformal, scores: Sequence[Sequence[float]] | np.ndarray[Any, Any]
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Walk consecutive origins 0..n-1 (one candle apart) through the state as a live service would: at origin t
    it first learns every outcome that closed at t (origin t - h at step h), then issues the offsets for t.

    `scores[t, h-1]` is the score origin t's outcome at step h will have. Returns the (n, horizon) issued offsets.
    Outcomes that close after the last origin are not learnt."""
    arr = np.asarray(scores, dtype=np.float64)
    n, horizon = arr.shape
    out = np.empty((n, horizon), dtype=np.float64)
    for t in range(n):
        for h in range(1, horizon + 1):
            o = t - h
            if o >= 0:
                state.observe(o, h, float(arr[o, h - 1]))
        out[t] = state.issue(t)
    state.forget_before(n - horizon)
    return out
