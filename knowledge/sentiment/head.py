"""The offline sentiment model: a polarity head on MiniLM embeddings plus a neutral band.

A logistic regression on the 384-dimensional normalised MiniLM embedding (the one ingestion already computes for
Chroma) gives p = P(positive | the text is polar). The score is (1 - w) (2p - 1) + w lexicon_score(text), with
w = `lexicon_weight` and the finance and crypto lexicon of `knowledge.sentiment.lexicon`, in [-1, 1]; a text is
neutral when |score| < `threshold`, positive or negative beyond it. The polarity direction is learnt from every
positive and negative row of every training source (a two-class source such as StockTwits Bullish/Bearish tags
contributes fully); the neutral band is the only thing three-class sources decide (`knowledge.sentiment.training`).

A model is two files in one directory: `head.npz` (coef, intercept) and `model.json` (version, threshold,
provenance, evaluation). Applying it is one dot product and a lexicon pass per text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from knowledge.sentiment.lexicon import lexicon_score

WEIGHTS_FILE = "head.npz"
META_FILE = "model.json"
FORMAT = 1


class ModelFileError(ValueError):
    """A model directory that cannot be loaded (missing, unreadable or inconsistent files)."""


def label_from_score(score: float, threshold: float) -> str:
    return "positive" if score >= threshold else "negative" if score <= -threshold else "neutral"


@dataclass(frozen=True)
class SentimentHead:
    coef: NDArray[np.float64]  # (dim,)
    intercept: float
    threshold: float  # neutral band: |score| < threshold
    version: str
    meta: dict[str, Any] = field(default_factory=dict)
    lexicon_weight: float = 0.0

    @property
    def dim(self) -> int:
        return int(self.coef.shape[0])

    def scores(self, embeddings: NDArray[np.floating[Any]],
               lexicon: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """The score of each row of `embeddings` (n, dim), given the texts' `lexicon_score`s when the head blends
        them in (see `texts_lexicon`)."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"embeddings of shape {x.shape} do not fit a head of dimension {self.dim}")
        z = x @ self.coef + self.intercept
        polarity = np.tanh(z / 2.0)  # = 2 sigmoid(z) - 1, without overflow
        if self.lexicon_weight == 0.0:
            return polarity
        if lexicon is None or len(lexicon) != len(x):
            raise ValueError("this head blends in the lexicon: give one lexicon score per embedding")
        return (1.0 - self.lexicon_weight) * polarity + self.lexicon_weight * np.asarray(lexicon, dtype=np.float64)

    def score_texts(self, texts: list[str], embeddings: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        return self.scores(embeddings, texts_lexicon(texts) if self.lexicon_weight else None)

    def labels(self, scores: NDArray[np.float64]) -> list[str]:
        return [label_from_score(float(s), self.threshold) for s in scores]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / WEIGHTS_FILE, coef=self.coef.astype(np.float64),
                 intercept=np.array([self.intercept], dtype=np.float64))
        meta = {**self.meta, "format": FORMAT, "version": self.version, "threshold": self.threshold,
                "lexicon_weight": self.lexicon_weight, "dim": self.dim}
        (directory / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> SentimentHead:
        try:
            meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
            with np.load(directory / WEIGHTS_FILE) as npz:
                coef = np.asarray(npz["coef"], dtype=np.float64)
                intercept = float(np.asarray(npz["intercept"]).reshape(-1)[0])
        except (OSError, KeyError, ValueError) as exc:
            raise ModelFileError(f"cannot load a sentiment model from {directory}: {exc}") from exc
        if meta.get("format") != FORMAT or coef.ndim != 1 or meta.get("dim") != coef.shape[0]:
            raise ModelFileError(f"{directory} holds a sentiment model of another format or shape")
        threshold, lexicon_weight = float(meta["threshold"]), float(meta.get("lexicon_weight", 0.0))
        if not 0.0 <= threshold < 1.0 or not 0.0 <= lexicon_weight <= 1.0 or not np.all(np.isfinite(coef)):
            raise ModelFileError(f"{directory}: threshold, lexicon weight or weights out of range")
        return cls(coef, intercept, threshold, str(meta["version"]), meta, lexicon_weight)


def texts_lexicon(texts: list[str]) -> NDArray[np.float64]:
    return np.array([lexicon_score(t) for t in texts], dtype=np.float64)
