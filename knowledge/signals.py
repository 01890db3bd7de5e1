"""Sentiment- and event-driven signals for the strategies.

signal(symbol) = clip(sentiment_weight * index + sum over recent events of prior(type) * decay(age), -1, 1)

`index` is the time-decayed sentiment index of the symbol; event priors are signed expectations per event type
(hack -0.6, delisting -0.5, ...). Priors can be replaced by measured event-study means (`priors_from_study`). A
signal is information for a strategy or a human, never an order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from knowledge.models import NewsDoc
from knowledge.sentiment.index import sentiment_index
from knowledge.text import base_asset

DEFAULT_PRIORS: dict[str, float] = {
    "hack": -0.6,
    "delisting": -0.5,
    "outage": -0.3,
    "regulation": -0.25,
    "token_unlock": -0.2,
    "macro": 0.0,
    "partnership": 0.15,
    "listing": 0.3,
    "etf_flows": 0.25,
}


@dataclass(frozen=True)
class NewsSignal:
    symbol: str
    signal: float  # [-1, 1]
    sentiment_index: float
    sentiment_weight: float
    n_docs: int
    events: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    as_of: datetime | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol, "signal": round(self.signal, 4), "sentiment_index": round(self.sentiment_index, 4),
            "sentiment_weight": round(self.sentiment_weight, 3), "n_docs": self.n_docs, "events": self.events,
            "reasons": self.reasons, "as_of": self.as_of.isoformat() if self.as_of else None,
        }


def news_signal(
    docs: Sequence[NewsDoc],
    symbol: str,
    *,
    as_of: datetime,
    half_life_hours: float = 24.0,
    event_window: timedelta = timedelta(hours=72),
    sentiment_weight: float = 0.6,
    priors: Mapping[str, float] | None = None,
    min_weight: float = 0.5,
) -> NewsSignal:
    """One symbol's signal from documents (those not mentioning it, or published after `as_of`, are ignored)."""
    sym = base_asset(symbol)
    priors = priors or DEFAULT_PRIORS
    idx = sentiment_index(docs, sym, as_of=as_of, half_life_hours=half_life_hours)
    # little news: shrink the sentiment part towards 0
    shrink = min(1.0, idx.weight / min_weight) if min_weight > 0 else 1.0
    value = sentiment_weight * idx.index * shrink
    reasons = [f"sentiment index {idx.index:+.2f} over {idx.n_docs} docs (weight {idx.weight:.2f})"]
    counts: Counter[str] = Counter()
    ev_part = 0.0
    for d in docs:
        if sym not in d.symbols or d.published > as_of or as_of - d.published > event_window:
            continue
        age_h = (as_of - d.published).total_seconds() / 3600.0
        for ev in d.events:
            counts[ev] += 1
            ev_part += priors.get(ev, 0.0) * 0.5 ** (age_h / half_life_hours)
    if counts:
        reasons.append("events: " + ", ".join(f"{k} x{v}" for k, v in counts.most_common()))
    value = float(np.clip(value + float(np.tanh(ev_part)), -1.0, 1.0))
    return NewsSignal(sym, value, idx.index, idx.weight, idx.n_docs, dict(counts), reasons, as_of)


def priors_from_study(study: Mapping[str, Mapping[str, Mapping[str, float]]], horizon: str = "24h",
                      scale: float = 20.0) -> dict[str, float]:
    """Event priors from an event study's mean abnormal returns (e.g. -3% at 24h -> -0.6 with scale 20)."""
    out = dict(DEFAULT_PRIORS)
    for etype, by_h in study.items():
        stats = by_h.get(horizon)
        if stats and stats.get("n", 0) >= 5:
            out[etype] = float(np.clip(stats["mean_car"] * scale, -1, 1))
    return out
