"""The knowledge base: documents in Mongo (`news_docs`), embeddings and filter metadata in Chroma.

Chroma runs embedded (`PersistentClient` under `data_dir/chroma`, telemetry off) or as a server when CHROMA_HOST is
set. Collections are created with `embedding_function=None`: every vector is computed by `knowledge.embeddings`
and passed in, so Chroma's default (downloading) embedding function is never touched.

Chroma metadata per document: source, published_ts (epoch seconds), title, url, symbols ("BTC,ETH"), one boolean
`sym_<BASE>` per coin and `ev_<type>` per event type (Chroma metadata holds scalars; booleans make the symbol and
event filters exact), and the offline sentiment score.

Embedding mode: the collection's metadata records the embedding mode that built it (`embedding_mode`, e.g.
"minilm-torch-bf16") and its space (`embedding_space`, e.g. "all-MiniLM-L6-v2/64tok/float"; see
`knowledge.embeddings`). Opening a non-empty collection from another space raises `EmbeddingModeError`: queries
and near-duplicate checks would compare vectors from different models or precisions. An empty collection takes the
opener's mode. Collections from before the mode was recorded were built by torch float32/bfloat16 at 64 tokens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from core.settings import Settings, get_settings
from knowledge.embeddings import Embedder, get_embedder
from knowledge.metaindex import MetaIndex
from knowledge.models import NewsDoc, embed_text

COLLECTION = "news_minilm_v1"
MONGO_COLLECTION = "news_docs"
LEGACY_SPACE = "all-MiniLM-L6-v2/64tok/float"  # unrecorded: torch float32 or bfloat16, 64 tokens


class EmbeddingModeError(RuntimeError):
    """A collection's stored vectors come from another embedding space than this process's embedder."""

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def chroma_client(settings: Settings | None = None, *, path: Path | None = None) -> Any:
    """A Chroma client: HttpClient when CHROMA_HOST is set, else PersistentClient under data_dir/chroma."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = settings or get_settings()
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host and path is None:
        key = f"http://{settings.chroma_host}:{settings.chroma_port}"
        with _clients_lock:
            if key not in _clients:
                _clients[key] = chromadb.HttpClient(
                    host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
                )
            return _clients[key]
    target = path or settings.data_dir / "chroma"
    target.mkdir(parents=True, exist_ok=True)
    key = str(target.resolve())
    with _clients_lock:
        if key not in _clients:
            _clients[key] = chromadb.PersistentClient(path=key, settings=chroma_settings)
        return _clients[key]


def _chroma_meta(doc: NewsDoc) -> dict[str, str | int | float | bool]:
    meta: dict[str, str | int | float | bool] = {
        "source": doc.source,
        "published_ts": int(doc.published.timestamp()),
        "title": doc.title[:300],
        "url": doc.url[:1000],
        "symbols": ",".join(doc.symbols),
        "events": ",".join(doc.events),
    }
    for sym in doc.symbols:
        meta[f"sym_{sym}"] = True
    for ev in doc.events:
        meta[f"ev_{ev}"] = True
    if doc.sentiment_score is not None:
        meta["sentiment"] = float(doc.sentiment_score)
    return meta


class NewsStore:
    def __init__(
        self,
        db: Database[dict[str, Any]],
        chroma: Any,
        *,
        embedder: Embedder | None = None,
        collection: str = COLLECTION,
    ) -> None:
        self.db = db
        self.docs = db[MONGO_COLLECTION]
        self.docs.create_index([("url_canon", ASCENDING)])
        self.docs.create_index([("content_hash", ASCENDING)])
        self.docs.create_index([("published", DESCENDING)])
        self.docs.create_index([("symbols", ASCENDING)])
        self.docs.create_index([("events", ASCENDING)])
        self.docs.create_index([("source", ASCENDING)])
        self.chroma = chroma
        self.embedder = embedder or get_embedder()
        self.collection_name = collection
        self.col = chroma.get_or_create_collection(
            name=collection,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine", "ef_search": 100, "ef_construction": 100}},
            metadata=self._mode_metadata(),
        )
        self._check_mode()
        self.meta = MetaIndex(self.col)
        try:
            self._max_batch = int(chroma.get_max_batch_size())
        except Exception:  # older servers do not report it
            self._max_batch = 5000

    def _mode_metadata(self) -> dict[str, str | int]:
        return {"embedding": "all-MiniLM-L6-v2", "dim": 384, "embedding_mode": self.embedder.mode,
                "embedding_space": self.embedder.space}

    def _check_mode(self) -> None:
        meta = dict(self.col.metadata or {})
        space = meta.get("embedding_space", LEGACY_SPACE)
        if space == self.embedder.space and "embedding_space" in meta:
            return
        if space != self.embedder.space and self.col.count() > 0:
            built = meta.get("embedding_mode", "unrecorded (torch fp32/bf16, 64 tokens)")
            raise EmbeddingModeError(
                f"Chroma collection {self.collection_name!r} holds vectors from embedding mode {built} (space {space});"
                f" this process embeds with {self.embedder.mode} (space {self.embedder.space}), and mixing them"
                " would compare vectors from different models or precisions. Set EMBED_BACKEND/EMBED_PRECISION"
                " to the collection's mode, or use another collection or data directory and ingest again."
            )
        # empty (nothing to mix) or legacy in the same space: record this process's mode
        self.col.modify(metadata=self._mode_metadata())

    @classmethod
    def open(cls, settings: Settings | None = None, db: Database[dict[str, Any]] | None = None) -> NewsStore:
        from core.storage import get_db

        settings = settings or get_settings()
        return cls(db if db is not None else get_db(settings), chroma_client(settings))

    # -- lookups ---------------------------------------------------------------------------------------------
    def known_ids(self, ids: Iterable[str]) -> set[str]:
        ids = list(ids)
        if not ids:
            return set()
        return {d["_id"] for d in self.docs.find({"_id": {"$in": ids}}, {"_id": 1})}

    def known_hashes(self, hashes: Iterable[str]) -> set[str]:
        hashes = list(hashes)
        if not hashes:
            return set()
        return {d["content_hash"] for d in self.docs.find({"content_hash": {"$in": hashes}}, {"content_hash": 1})}

    def nearest(self, embeddings: NDArray[np.float32]) -> list[tuple[str | None, float]]:
        """For each vector, the closest stored document and its cosine similarity ((None, -1) when empty)."""
        if len(embeddings) == 0:
            return []
        if self.col.count() == 0:
            return [(None, -1.0)] * len(embeddings)
        res = self.col.query(query_embeddings=embeddings, n_results=1, include=["distances"])
        out: list[tuple[str | None, float]] = []
        for ids, dists in zip(res["ids"], res["distances"] or [], strict=False):
            out.append((ids[0], 1.0 - float(dists[0])) if ids else (None, -1.0))
        return out

    def count(self) -> int:
        return int(self.col.count())

    # -- writes ----------------------------------------------------------------------------------------------
    def add(
        self, docs: Sequence[NewsDoc], embeddings: NDArray[np.float32], *, timings: dict[str, float] | None = None
    ) -> int:
        """Upsert `docs` into Mongo and Chroma; `timings` (optional) accumulates seconds under mongo and chroma."""
        if not docs:
            return 0
        if len(docs) != len(embeddings):
            raise ValueError("one embedding per document is required")
        from pymongo import ReplaceOne

        t0 = time.perf_counter()
        self.docs.bulk_write([ReplaceOne({"_id": d.id}, d.to_mongo(), upsert=True) for d in docs], ordered=False)
        t1 = time.perf_counter()
        for start in range(0, len(docs), self._max_batch):
            chunk = docs[start : start + self._max_batch]
            # no `documents`: Mongo holds the text, and Chroma's full-text index of it (never queried: keyword
            # scoring is ours) cost a third of the write
            self.col.upsert(
                ids=[d.id for d in chunk],
                embeddings=embeddings[start : start + self._max_batch],
                metadatas=[_chroma_meta(d) for d in chunk],  # type: ignore[misc]
            )
        self.meta.invalidate()
        if timings is not None:
            timings["mongo"] = timings.get("mongo", 0.0) + t1 - t0
            timings["chroma"] = timings.get("chroma", 0.0) + time.perf_counter() - t1
        return len(docs)

    def purge_older_than(self, cutoff: datetime) -> int:
        """Retention: delete documents published before `cutoff` from Mongo and Chroma."""
        ids = [d["_id"] for d in self.docs.find({"published": {"$lt": cutoff}}, {"_id": 1})]
        for start in range(0, len(ids), self._max_batch):
            self.col.delete(ids=ids[start : start + self._max_batch])
        if ids:
            self.docs.delete_many({"_id": {"$in": ids}})
            self.meta.invalidate()
        return len(ids)

    # -- reads -----------------------------------------------------------------------------------------------
    def texts(self, ids: Sequence[str]) -> dict[str, str]:
        """The embedded text (headline plus the start of the summary) of each stored document, by id."""
        rows = self.docs.find({"_id": {"$in": list(ids)}}, {"title": 1, "summary": 1, "body": 1})
        return {r["_id"]: embed_text(r.get("title", ""), r.get("summary", ""), r.get("body", "")) for r in rows}

    def get_docs(self, ids: Sequence[str]) -> list[NewsDoc]:
        by_id = {d["_id"]: NewsDoc.from_mongo(d) for d in self.docs.find({"_id": {"$in": list(ids)}})}
        return [by_id[i] for i in ids if i in by_id]

    @staticmethod
    def _filter(
        symbols: Sequence[str] | None, since: datetime | None, until: datetime | None,
        sources: Sequence[str] | None, events: Sequence[str] | None,
    ) -> dict[str, Any]:
        q: dict[str, Any] = {}
        if symbols:
            q["symbols"] = {"$in": list(symbols)}
        if events:
            q["events"] = {"$in": list(events)}
        if sources:
            q["source"] = {"$in": list(sources)}
        window: dict[str, Any] = {}
        if since is not None:
            window["$gte"] = since
        if until is not None:
            window["$lte"] = until
        if window:
            q["published"] = window
        return q

    def find(
        self,
        *,
        symbols: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        sources: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[NewsDoc]:
        """Documents matching the filters, newest first (no query text)."""
        q = self._filter(symbols, since, until, sources, events)
        cursor = self.docs.find(q).sort("published", DESCENDING).limit(limit)
        return [NewsDoc.from_mongo(d) for d in cursor]
