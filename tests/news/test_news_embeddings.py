"""Embedding precision: auto picks bfloat16 only on CPUs that compute it natively, and bfloat16 vectors agree with
float32 ones closely enough that stored vectors and similarity thresholds do not depend on the precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from core.settings import Settings
from knowledge.embeddings import Embedder, cpu_flags, resolve_precision

HEADLINES = [
    "Bitcoin jumps 8% as spot ETF inflows hit a record",
    "Exchange halts withdrawals after a $40 million hot wallet exploit",
    "SEC sues token issuer over unregistered securities offering",
    "Ethereum developers schedule the next network upgrade for March",
    "Solana outage stalls block production for five hours",
    "Dogecoin slides as whales move coins to exchanges",
]


@pytest.mark.parametrize(
    ("requested", "flags", "expected"),
    [
        ("auto", {"avx2", "amx_bf16", "amx_tile"}, "bf16"),
        ("auto", {"avx512f", "avx512_bf16"}, "bf16"),
        ("auto", {"avx2", "avx512f", "avx512_vnni"}, "fp32"),
        ("auto", set(), "fp32"),
        ("fp32", {"amx_bf16"}, "fp32"),
        ("bf16", set(), "bf16"),
    ],
)
def test_resolve_precision(requested: str, flags: set[str], expected: str) -> None:
    assert resolve_precision(requested, flags) == expected


def test_resolve_precision_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="auto, fp32, bf16 or int8"):
        resolve_precision("int4", set())


def test_cpu_flags_reads_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse avx2 amx_bf16 amx_tile\n")
    assert {"avx2", "amx_bf16"} <= cpu_flags(info)
    assert "avx512_bf16" not in cpu_flags(info)


def test_settings_validate_precision() -> None:
    assert Settings(embed_precision="fp32").embed_precision == "fp32"
    with pytest.raises(ValidationError):
        Settings(embed_precision="fp8")  # type: ignore[arg-type]


def test_bf16_embeddings_agree_with_fp32() -> None:
    fp32 = Embedder(precision="fp32").embed(HEADLINES)
    bf16 = Embedder(precision="bf16").embed(HEADLINES)
    assert fp32.dtype == bf16.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    assert float((fp32 * bf16).sum(axis=1).min()) > 0.999
    # the neighbour structure is the same: each headline's nearest other headline does not change
    def nearest(e: np.ndarray) -> list[int]:
        sims = e @ e.T
        np.fill_diagonal(sims, -1.0)
        return [int(i) for i in sims.argmax(axis=1)]

    assert nearest(fp32) == nearest(bf16)


def test_doctor_reports_embedding_precision(tmp_path: Path) -> None:
    from agent.doctor import run_doctor

    report = run_doctor(Settings(data_dir=tmp_path, embed_precision="fp32", mongo_uri="mongodb://127.0.0.1:1"))
    check = next(c for c in report["checks"] if c["name"] == "embedding model")
    assert check["ok"] and "runs in fp32 (EMBED_PRECISION=fp32)" in check["detail"]


def test_query_path_matches_batch_encode() -> None:
    """Small batches (queries) run the model's modules directly; the vectors must be those of `encode`."""
    from knowledge.embeddings import SMALL_BATCH, Embedder, get_model

    emb = Embedder(precision="fp32")
    queries = ["bitcoin ETF inflows hit a record", "SEC sues exchange over staking", "Solana outage halts blocks"]
    filler = [f"unrelated filler headline number {i}" for i in range(SMALL_BATCH)]
    small = emb.embed(queries)
    batch = emb.embed(queries + filler)[: len(queries)]
    assert small.shape == (3, 384) and np.allclose(np.linalg.norm(small, axis=1), 1.0, atol=1e-5)
    assert np.allclose(small, batch, atol=1e-5)
    model = get_model("fp32")
    assert not model.training  # dropout off on the direct path
    ref = model.encode(queries[:1], normalize_embeddings=True, convert_to_numpy=True)
    assert np.allclose(emb.embed_one(queries[0]), ref[0], atol=1e-6)
