"""Per-symbol sentiment index with exponential time decay.

index(symbol, t) = sum_i w_i * s_i / sum_i w_i over documents mentioning the symbol published before t, where
w_i = 0.5 ** (age_hours / half_life_hours) and s_i in [-1, 1]; `weight` (sum of w_i) says how much news is behind
the number. With no documents the index is 0 with weight 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from knowledge.models import NewsDoc


@dataclass(frozen=True)
class SymbolSentiment:
    symbol: str
    index: float
    weight: float
    n_docs: int
    positive: int
    negative: int
    neutral: int
    half_life_hours: float
    as_of: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol, "index": round(self.index, 4), "weight": round(self.weight, 3),
            "n_docs": self.n_docs, "positive": self.positive, "negative": self.negative, "neutral": self.neutral,
            "half_life_hours": self.half_life_hours, "as_of": self.as_of.isoformat(),
        }


def sentiment_index(
    docs: Sequence[NewsDoc], symbol: str, *, as_of: datetime, half_life_hours: float = 24.0
) -> SymbolSentiment:
    num = den = 0.0
    counts = {"positive": 0, "negative": 0, "neutral": 0}
    n = 0
    for d in docs:
        if symbol not in d.symbols or d.sentiment_score is None or d.published > as_of:
            continue
        age_h = max(0.0, (as_of - d.published).total_seconds() / 3600.0)
        w = 0.5 ** (age_h / half_life_hours)
        num += w * d.sentiment_score
        den += w
        n += 1
        counts[d.sentiment_label or "neutral"] = counts.get(d.sentiment_label or "neutral", 0) + 1
    return SymbolSentiment(
        symbol, num / den if den > 0 else 0.0, den, n, counts["positive"], counts["negative"], counts["neutral"],
        half_life_hours, as_of,
    )


def sentiment_series(
    docs: Sequence[NewsDoc], symbol: str, times_ms: NDArray[np.int64] | Sequence[int], *,
    half_life_hours: float = 24.0, lookback: timedelta = timedelta(days=7),
) -> NDArray[np.float64]:
    """The index evaluated at each time (ms epoch), using only news published at or before it (no look-ahead).

    For backtests: O(len(times) * docs within lookback), vectorised per time step.
    """
    rel = sorted((d for d in docs if symbol in d.symbols and d.sentiment_score is not None),
                 key=lambda d: d.published)
    if not rel:
        return np.zeros(len(times_ms), dtype=np.float64)
    pub = np.array([d.published.timestamp() * 1000.0 for d in rel])
    score = np.array([float(d.sentiment_score or 0.0) for d in rel])
    t = np.asarray(times_ms, dtype=np.float64)
    out = np.zeros(len(t), dtype=np.float64)
    lb = lookback.total_seconds() * 1000.0
    hl = half_life_hours * 3_600_000.0
    hi = np.searchsorted(pub, t, side="right")
    lo = np.searchsorted(pub, t - lb, side="left")
    for i in range(len(t)):
        if hi[i] <= lo[i]:
            continue
        w = 0.5 ** ((t[i] - pub[lo[i] : hi[i]]) / hl)
        out[i] = float(np.dot(w, score[lo[i] : hi[i]]) / w.sum())
    return out
