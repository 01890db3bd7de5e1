"""Sentiment- and event-driven signals for the strategies.

signal(symbol) = clip(sentiment_weight * index + sum over recent events of prior(type) * decay(age), -1, 1)

`index` is the time-decayed sentiment index of the symbol; event priors are signed expectations per event type
(hack -0.6, delisting -0.5, ...). Priors can be replaced by measured event-study means (`priors_from_study`). A
signal is information for a strategy or a human, never an order.

For strategies and backtests, `news_signal_series` evaluates the same signal once per candle, at the candle's close,
from news published strictly before that close (no look-ahead), and `gate_targets` applies it to a strategy's target
weights as a veto. Both take and return plain NumPy arrays, so trading/ consumes them without importing this package:
the caller (a tool, a script) computes the series from the knowledge base and hands the arrays over.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

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


def news_signal_series(
    docs: Sequence[NewsDoc],
    symbol: str,
    bar_open_ms: NDArray[np.int64] | Sequence[int],
    *,
    timeframe_ms: int,
    half_life_hours: float = 24.0,
    lookback: timedelta = timedelta(days=7),
    event_window: timedelta = timedelta(hours=72),
    sentiment_weight: float = 0.6,
    priors: Mapping[str, float] | None = None,
    min_weight: float = 0.5,
) -> NDArray[np.float64]:
    """`news_signal` of one coin at each candle's close (open time + `timeframe_ms`), aligned to the candles.

    Only news published strictly before a candle's close counts for that candle, so a strategy that acts at the
    close (and fills at the next candle, as the backtester does) never sees later news. The sentiment part uses
    news of the `lookback` before the close (as `NewsService.signals` does with its 7-day window); 0 where there is
    no news.
    """
    if timeframe_ms <= 0:
        raise ValueError("timeframe_ms must be positive")
    sym = base_asset(symbol)
    priors = priors or DEFAULT_PRIORS
    close = np.asarray(bar_open_ms, dtype=np.float64) + float(timeframe_ms)
    out = np.zeros(len(close), dtype=np.float64)
    rel = sorted((d for d in docs if sym in d.symbols), key=lambda d: d.published)
    if not rel or len(close) == 0:
        return out
    pub = np.array([d.published.timestamp() * 1000.0 for d in rel])
    has_score = np.array([d.sentiment_score is not None for d in rel])
    score = np.array([float(d.sentiment_score or 0.0) for d in rel])
    prior = np.array([sum(priors.get(ev, 0.0) for ev in d.events) for d in rel])
    hl = half_life_hours * 3_600_000.0
    hi = np.searchsorted(pub, close, side="left")  # docs [.., hi) were published strictly before the close
    lo_s = np.searchsorted(pub, close - lookback.total_seconds() * 1000.0, side="left")
    lo_e = np.searchsorted(pub, close - event_window.total_seconds() * 1000.0, side="left")
    for i in range(len(close)):
        value = 0.0
        if hi[i] > lo_s[i]:
            sl = slice(lo_s[i], hi[i])
            w = 0.5 ** ((close[i] - pub[sl]) / hl) * has_score[sl]
            den = float(w.sum())
            if den > 0:
                shrink = min(1.0, den / min_weight) if min_weight > 0 else 1.0
                value = sentiment_weight * float(np.dot(w, score[sl])) / den * shrink
        if hi[i] > lo_e[i]:
            sl = slice(lo_e[i], hi[i])
            value += float(np.tanh(np.dot(prior[sl], 0.5 ** ((close[i] - pub[sl]) / hl))))
        out[i] = min(1.0, max(-1.0, value))
    return out


def gate_targets(
    targets: NDArray[np.float64], signal: NDArray[np.float64], *, veto: float = 0.3,
) -> NDArray[np.float64]:
    """Strategy target weights with bad news vetoing longs and good news vetoing shorts.

    `targets` has one row per candle (shape (n,) or (n, k)), `signal` one value per candle from
    `news_signal_series`; where the signal is at or below -veto a long target becomes flat, at or above +veto a
    short one does. Never adds or enlarges a position: news only takes risk off.
    """
    t = np.asarray(targets, dtype=np.float64)
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim != 1 or len(sig) != len(t):
        raise ValueError(f"signal has {sig.shape} values for {len(t)} candles; align it to the candles first")
    if not 0 < veto <= 1:
        raise ValueError("veto must be in (0, 1]")
    s = sig.reshape(-1, *([1] * (t.ndim - 1)))
    out = np.where((t > 0) & (s <= -veto), 0.0, t)
    return np.where((out < 0) & (s >= veto), 0.0, out)
