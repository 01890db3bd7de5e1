"""Offline sentiment: no LLM, no network.

The model is a polarity head on the MiniLM embedding with a neutral band (`knowledge.sentiment.head`): the newest
model trained with `crypto-agent news train-sentiment` (DATA_DIR/models/sentiment/<version>), else the default
bundled in the package (`note` says which, and why). Ingestion passes the embeddings it has already computed for
Chroma, so labelling a document costs one dot product and a lexicon pass. The score in [-1, 1] blends
2 P(positive | polar) - 1 with the lexicon score (see `knowledge.sentiment.head`).
`lexicon_only=True` skips the embedding model and uses the finance lexicon (`knowledge.sentiment.lexicon`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from knowledge.embeddings import Embedder, get_embedder
from knowledge.sentiment.head import label_from_score
from knowledge.sentiment.lexicon import lexicon_score
from knowledge.sentiment.registry import LoadedModel, load_model, newest_version

log = logging.getLogger(__name__)

LABELS = ("negative", "neutral", "positive")
LEXICON_THRESHOLD = 0.3


@dataclass(frozen=True)
class SentimentResult:
    label: str  # positive | neutral | negative
    score: float  # [-1, 1]
    rationale: str = ""
    method: str = "offline"

    def as_dict(self) -> dict[str, object]:
        return {"label": self.label, "score": round(self.score, 4), "rationale": self.rationale, "method": self.method}


class OfflineSentiment:
    """The offline scorer. `data_dir` (default: the settings') is where trained models are looked up; a newer
    model written there is picked up at the next call."""

    def __init__(self, embedder: Embedder | None = None, *, lexicon_only: bool = False,
                 data_dir: Path | None = None) -> None:
        self.embedder = embedder
        self.lexicon_only = lexicon_only
        self._data_dir = data_dir
        self._loaded: LoadedModel | None = None
        self._loaded_from: Path | None = None
        self._loaded_dir: Path | None = None
        self._lock = threading.Lock()

    @property
    def data_dir(self) -> Path:
        if self._data_dir is not None:
            return self._data_dir
        from core.settings import get_settings

        return get_settings().data_dir  # read each time: the settings (and so the data dir) may be replaced

    def model(self) -> LoadedModel:
        """The model in use, reloaded when a newer trained version appears."""
        data_dir = self.data_dir
        newest = newest_version(data_dir)
        with self._lock:
            if self._loaded is None or newest != self._loaded_from or self._loaded_dir != data_dir:
                self._loaded = load_model(data_dir)
                self._loaded_dir = data_dir
                self._loaded_from = newest
                if self._loaded.bundled:
                    log.info("sentiment: %s", self._loaded.note)
            return self._loaded

    @property
    def note(self) -> str:
        return "finance lexicon only" if self.lexicon_only else self.model().note

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
                out.append(SentimentResult(label_from_score(s, LEXICON_THRESHOLD), s, "finance lexicon",
                                           "offline-lexicon"))
            return out
        loaded = self.model()
        if embeddings is None:
            embeddings = (self.embedder or get_embedder()).embed(list(texts))
        scores = loaded.head.score_texts(list(texts), embeddings)
        tag = f"model {loaded.head.version}{' (bundled)' if loaded.bundled else ''}"
        return [SentimentResult(label_from_score(float(s), loaded.head.threshold), float(s),
                                f"score {s:+.2f}; {tag}")
                for s in scores]


_default: OfflineSentiment | None = None


def get_offline() -> OfflineSentiment:
    global _default
    if _default is None:
        _default = OfflineSentiment()
    return _default
