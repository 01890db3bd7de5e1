"""The ONNX Runtime backend (exported from the bundled weights into a cache directory, offline), the backend and
precision resolution, and the embedding mode recorded on the Chroma collection (another space is refused)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from pymongo.database import Database

from core.settings import Settings
from knowledge.embeddings import Embedder, embedding_space, resolve_backend
from knowledge.embeddings_onnx import ensure_onnx, onnx_path
from knowledge.store import LEGACY_SPACE, EmbeddingModeError, NewsStore
from tests.news.test_news_embeddings import HEADLINES

# Longer texts than the headlines too: summaries past the 64-token cap, and a one-word query (padding differs most)
TEXTS = [
    *HEADLINES,
    "Bitcoin",
    "The exchange said on Tuesday that it had frozen deposits and withdrawals of the affected tokens while it "
    "investigates the breach, and that customer funds held in cold storage were not affected by the incident, "
    "according to a statement posted on its blog; the attacker moved the stolen assets through a mixer.",
    "ETH staking withdrawals top 1 million coins in the first week after the Shanghai upgrade, data shows",
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def torch_fp32() -> np.ndarray:
    return Embedder(precision="fp32", backend="torch").embed(TEXTS)


@pytest.mark.parametrize(
    ("backend", "precision", "expected"),
    [("auto", "fp32", "torch"), ("auto", "bf16", "torch"), ("auto", "int8", "onnx"), ("onnx", "fp32", "onnx"),
     ("torch", "fp32", "torch"), ("onnx", "int8", "onnx")],
)
def test_resolve_backend(backend: str, precision: Any, expected: str) -> None:
    assert resolve_backend(backend, precision) == expected


def test_resolve_backend_refuses_impossible_pairs() -> None:
    with pytest.raises(ValueError, match="ONNX Runtime only"):
        resolve_backend("torch", "int8")
    with pytest.raises(ValueError, match="torch only"):
        resolve_backend("onnx", "bf16")
    with pytest.raises(ValueError, match="auto, torch or onnx"):
        resolve_backend("tflite", "fp32")
    assert Settings(embed_backend="onnx", embed_precision="int8").embed_backend == "onnx"
    with pytest.raises(ValidationError):
        Settings(embed_backend="tensorrt")  # type: ignore[arg-type]


def test_modes_and_spaces() -> None:
    assert Embedder(precision="fp32", backend="onnx").mode == "minilm-onnx-fp32"
    assert Embedder(precision="int8").mode == "minilm-onnx-int8"
    assert Embedder(precision="bf16").mode == "minilm-torch-bf16"
    # the float runtimes share one space per input length; int8 is another; the unrecorded default is the float one
    assert embedding_space("fp32", 64) == embedding_space("bf16", 64) == LEGACY_SPACE
    assert len({embedding_space("fp32", 64), embedding_space("int8", 64), embedding_space("fp32", 128)}) == 3


def test_onnx_fp32_matches_torch(onnx_cache: Path, torch_fp32: np.ndarray) -> None:
    emb = Embedder(precision="fp32", backend="onnx", cache_dir=onnx_cache)
    batch = emb.embed(TEXTS)
    assert batch.shape == (len(TEXTS), 384) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    # measured: min cosine 0.9999999 over 2,974 benchmark documents
    assert float((batch * torch_fp32).sum(axis=1).min()) > 0.99999
    # the query path (one-thread session, no batch padding) gives the same vectors
    assert np.allclose(emb.embed(TEXTS[:2]), batch[:2], atol=1e-5)
    assert np.allclose(emb.embed_one(TEXTS[6]), batch[6], atol=1e-5)
    files = list(onnx_cache.glob("*.onnx"))
    assert [f.name for f in files] == [onnx_path(onnx_cache, "fp32").name]


def test_onnx_int8_close_to_fp32(onnx_cache: Path, torch_fp32: np.ndarray) -> None:
    int8 = Embedder(precision="int8", cache_dir=onnx_cache).embed(TEXTS)
    cos = (int8 * torch_fp32).sum(axis=1)
    # measured on 2,974 benchmark documents: mean 0.993, min 0.981; int8 is still not mixed with float vectors
    assert float(cos.mean()) > 0.985 and float(cos.min()) > 0.97
    assert float(cos.min()) < 0.9999  # it is really quantised, not the float32 graph under another name

    # pairwise similarities move by up to 0.09 (mean 0.010 over 4.4 million benchmark pairs; the nearest neighbour
    # changed for 15% of documents and 6 of 148 near-duplicate pairs were lost): why int8 is opt-in
    diff = np.abs(int8 @ int8.T - torch_fp32 @ torch_fp32.T)
    assert float(diff.max()) < 0.1


def test_export_is_cached(onnx_cache: Path) -> None:
    path = ensure_onnx(onnx_cache, "fp32")
    stamp = path.stat().st_mtime_ns
    assert ensure_onnx(onnx_cache, "fp32") == path and path.stat().st_mtime_ns == stamp
    assert not [p for p in onnx_cache.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def _store(db: Database[dict[str, Any]], chroma: Any, embedder: Embedder, name: str) -> NewsStore:
    return NewsStore(db, chroma, embedder=embedder, collection=name)


def test_collection_records_mode_and_refuses_another_space(
    mongo_db: Database[dict[str, Any]], chroma: Any, embedder: Embedder, onnx_cache: Path
) -> None:
    from tests.news.conftest import item

    name = f"t_{uuid.uuid4().hex[:12]}"
    store = _store(mongo_db, chroma, embedder, name)
    assert store.col.metadata["embedding_mode"] == embedder.mode
    assert store.col.metadata["embedding_space"] == embedder.space
    from knowledge.ingest import ingest_items

    ingest_items(store, [item("Bitcoin ETF inflows hit a record", "Spot funds took in $1 billion.")])
    int8 = Embedder(precision="int8", cache_dir=onnx_cache)
    with pytest.raises(EmbeddingModeError, match="minilm-onnx-int8") as err:
        _store(mongo_db, chroma, int8, name)
    assert embedder.mode in str(err.value) and "EMBED_PRECISION" in str(err.value)
    # the same space from another float runtime opens (vectors agree within cosine 0.9999)
    other = Embedder(precision="fp32", backend="onnx", cache_dir=onnx_cache)
    assert _store(mongo_db, chroma, other, name).count() == 1


def test_empty_collection_takes_the_openers_mode(
    mongo_db: Database[dict[str, Any]], chroma: Any, embedder: Embedder, onnx_cache: Path
) -> None:
    name = f"t_{uuid.uuid4().hex[:12]}"
    _store(mongo_db, chroma, embedder, name)
    int8 = Embedder(precision="int8", cache_dir=onnx_cache)
    store = _store(mongo_db, chroma, int8, name)
    assert chroma.get_collection(name).metadata["embedding_space"] == int8.space == store.embedder.space


def test_legacy_collection_is_the_float_space(
    mongo_db: Database[dict[str, Any]], chroma: Any, embedder: Embedder, onnx_cache: Path
) -> None:
    """A collection written before modes were recorded holds torch float vectors at 64 tokens."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    col = chroma.get_or_create_collection(name=name, embedding_function=None,
                                          metadata={"embedding": "all-MiniLM-L6-v2", "dim": 384})
    col.add(ids=["a"], embeddings=embedder.embed(["Bitcoin jumps"]), documents=["Bitcoin jumps"])
    with pytest.raises(EmbeddingModeError, match="unrecorded"):
        _store(mongo_db, chroma, Embedder(precision="int8", cache_dir=onnx_cache), name)
    store = _store(mongo_db, chroma, embedder, name)
    assert chroma.get_collection(name).metadata["embedding_space"] == LEGACY_SPACE == store.embedder.space
