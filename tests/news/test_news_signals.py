"""News signals for strategies: one value per candle, evaluated at the close from news published before it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from knowledge.models import NewsDoc
from knowledge.signals import gate_targets, news_signal, news_signal_series

H = 3_600_000
START = datetime(2025, 3, 1, tzinfo=UTC)
BARS = np.arange(0, 24 * 12, dtype=np.int64) * H + int(START.timestamp() * 1000)  # 12 days of 1h candle opens


def _doc(n: int, published: datetime, *, score: float | None, events: list[str] | None = None,
         symbols: list[str] | None = None) -> NewsDoc:
    return NewsDoc(id=f"d{n}", title=f"t{n}", summary="", body="", source="s", url=f"https://x/{n}",
                   url_canon=f"https://x/{n}", published=published, symbols=symbols or ["SOL"],
                   content_hash=f"h{n}", events=events or [], sentiment_score=score,
                   sentiment_label=None if score is None else "positive" if score > 0 else "negative")


def _random_docs(n: int, seed: int = 5) -> list[NewsDoc]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        t = START - timedelta(days=2) + timedelta(minutes=rng.randrange(0, 14 * 24 * 60))
        ev = rng.choice([[], [], ["hack"], ["listing"], ["outage", "regulation"]])
        score = None if rng.random() < 0.1 else rng.uniform(-1, 1)
        docs.append(_doc(i, t, score=score, events=ev, symbols=rng.choice([["SOL"], ["SOL", "BTC"], ["ETH"]])))
    return docs


def test_series_equals_news_signal_at_each_close_from_earlier_news_only() -> None:
    docs = _random_docs(300)
    series = news_signal_series(docs, "SOL/USDT", BARS, timeframe_ms=H)
    assert series.shape == BARS.shape and np.abs(series).max() > 0.1
    for i in range(0, len(BARS), 7):
        close = datetime.fromtimestamp((BARS[i] + H) / 1000, UTC)
        seen = [d for d in docs if close - timedelta(days=7) <= d.published < close]
        expected = news_signal(seen, "SOL", as_of=close).signal
        assert series[i] == pytest.approx(expected, abs=1e-9), i


def test_no_look_ahead_news_at_or_after_a_close_moves_only_later_candles() -> None:
    docs = _random_docs(120, seed=9)
    base = news_signal_series(docs, "SOL", BARS, timeframe_ms=H)
    k = 100
    close_k = datetime.fromtimestamp((BARS[k] + H) / 1000, UTC)
    shock = _doc(999, close_k, score=-1.0, events=["hack"])  # published exactly at candle k's close
    moved = news_signal_series([*docs, shock], "SOL", BARS, timeframe_ms=H)
    np.testing.assert_array_equal(moved[: k + 1], base[: k + 1])
    assert moved[k + 1] < base[k + 1] - 0.1
    mid = _doc(998, close_k - timedelta(minutes=30), score=-1.0, events=["hack"])  # inside candle k
    moved = news_signal_series([*docs, mid], "SOL", BARS, timeframe_ms=H)
    np.testing.assert_array_equal(moved[:k], base[:k])
    assert moved[k] < base[k] - 0.1


def test_series_is_zero_without_news_for_the_coin_and_checks_its_input() -> None:
    docs = [_doc(1, START, score=0.9, symbols=["ETH"])]
    assert not news_signal_series(docs, "SOL", BARS, timeframe_ms=H).any()
    assert news_signal_series([], "SOL", BARS, timeframe_ms=H).shape == BARS.shape
    with pytest.raises(ValueError, match="timeframe_ms"):
        news_signal_series(docs, "SOL", BARS, timeframe_ms=0)


def test_gate_targets_only_takes_risk_off() -> None:
    targets = np.array([1.0, 1.0, -1.0, -1.0, 0.5, 0.0])
    signal = np.array([-0.5, 0.5, 0.5, -0.5, -0.3, -0.9])
    np.testing.assert_array_equal(gate_targets(targets, signal), [0.0, 1.0, 0.0, -1.0, 0.0, 0.0])
    pairs = np.array([[1.0, -1.0], [1.0, -1.0]])
    np.testing.assert_array_equal(gate_targets(pairs, np.array([-0.4, 0.4])), [[0.0, -1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="align"):
        gate_targets(targets, signal[:3])
