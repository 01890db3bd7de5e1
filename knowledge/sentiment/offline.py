"""Offline sentiment: no LLM, no network.

A multinomial logistic regression over [MiniLM embedding, 0.5 x lexicon features], trained at first use (about a
second after the embedding model is loaded) on the project's own seed set (`knowledge.sentiment.seed`) and cached
per process. `lexicon_only=True` skips the embedding model (faster, slightly less accurate).
Score in [-1, 1] is P(positive) - P(negative).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from knowledge.embeddings import Embedder, get_embedder
from knowledge.sentiment.lexicon import lexicon_features, lexicon_score
from knowledge.sentiment.seed import seed_examples

LABELS = ("negative", "neutral", "positive")
LEXICON_WEIGHT = 0.5


@dataclass(frozen=True)
class SentimentResult:
    label: str  # positive | neutral | negative
    score: float  # [-1, 1]
    rationale: str = ""
    method: str = "offline"

    def as_dict(self) -> dict[str, object]:
        return {"label": self.label, "score": round(self.score, 4), "rationale": self.rationale, "method": self.method}


def _label_from_score(score: float, threshold: float = 0.3) -> str:
    return "positive" if score >= threshold else "negative" if score <= -threshold else "neutral"


class OfflineSentiment:
    def __init__(self, embedder: Embedder | None = None, *, lexicon_only: bool = False) -> None:
        self.embedder = embedder
        self.lexicon_only = lexicon_only
        self._weights: tuple[NDArray[np.float64], NDArray[np.float64], list[str]] | None = None
        self._lock = threading.Lock()

    def _features(self, texts: Sequence[str], embeddings: NDArray[np.float32] | None) -> NDArray[np.float64]:
        lex = np.array([lexicon_features(t) for t in texts], dtype=np.float64).reshape(len(texts), -1)
        if embeddings is None:
            embeddings = (self.embedder or get_embedder()).embed(list(texts))
        return np.hstack([embeddings.astype(np.float64), LEXICON_WEIGHT * lex])

    def _model(self) -> tuple[NDArray[np.float64], NDArray[np.float64], list[str]]:
        if self._weights is None:
            with self._lock:
                if self._weights is None:
                    from sklearn.linear_model import LogisticRegression

                    seed = seed_examples(n_templates=120)
                    x = self._features([s for s, _ in seed], None)
                    clf = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced")
                    clf.fit(x, [label for _, label in seed])
                    self._weights = (clf.coef_.astype(np.float64), clf.intercept_.astype(np.float64),
                                     [str(c) for c in clf.classes_])
        return self._weights

    def predict(
        self, texts: Sequence[str], embeddings: NDArray[np.float32] | None = None
    ) -> list[SentimentResult]:
        """Label texts. Pass `embeddings` (MiniLM, normalised) when already computed, e.g. at ingestion."""
        if not texts:
            return []
        if self.lexicon_only:
            out = []
            for t in texts:
                s = lexicon_score(t)
                out.append(SentimentResult(_label_from_score(s), s, "finance lexicon", "offline-lexicon"))
            return out
        coef, intercept, classes = self._model()
        logits = self._features(texts, embeddings) @ coef.T + intercept
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        idx = {c: i for i, c in enumerate(classes)}
        results: list[SentimentResult] = []
        for row in probs:
            label = classes[int(row.argmax())]
            score = float(row[idx["positive"]] - row[idx["negative"]])
            results.append(
                SentimentResult(label, score, f"p(pos)={row[idx['positive']]:.2f} p(neg)={row[idx['negative']]:.2f}")
            )
        return results


_default: OfflineSentiment | None = None


def get_offline() -> OfflineSentiment:
    global _default
    if _default is None:
        _default = OfflineSentiment()
    return _default
