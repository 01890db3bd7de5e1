"""Retrieval: semantic search over Chroma with metadata filters, re-ranked with BM25 keyword scores.

1. The query is embedded with MiniLM and Chroma returns the `candidates` nearest documents that pass the filters
   (symbols: any of; time window on `published_ts`; sources: any of; event types: any of).
2. Hybrid scoring: BM25 (k1=1.2, b=0.75) over the candidates' stored text, with IDF from the candidate pool,
   normalised to [0, 1] and mixed with cosine similarity: score = alpha * cosine + (1 - alpha) * bm25_norm.
   With filters, the in-process metadata index (`knowledge.metaindex`) gives the matching ids first (about a
   millisecond). A broad filter over-fetches unfiltered neighbours (up to `overfetch`) and filters them in Python;
   a selective one (or a failed over-fetch) asks Chroma for the nearest among the matching ids when there are at
   most `id_limit`; otherwise Chroma's own `where` pre-filter runs (~100 ms at 100k documents). `overfetch=0`
   skips the first plan and `id_limit=0` the second (tests compare the three).
3. Each hit carries its citation: title, source, published time and url.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from knowledge.store import NewsStore
from knowledge.text import base_asset, tokenize


@dataclass
class SearchHit:
    id: str
    title: str
    source: str
    published: datetime
    url: str
    symbols: list[str]
    events: list[str]
    sentiment: float | None
    score: float
    semantic: float
    keyword: float
    snippet: str = ""
    rank: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def citation(self) -> dict[str, str]:
        return {"title": self.title, "source": self.source,
                "published": self.published.isoformat(timespec="minutes"), "url": self.url}

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank, "id": self.id, "title": self.title, "source": self.source,
            "published": self.published.isoformat(timespec="minutes"), "url": self.url, "symbols": self.symbols,
            "events": self.events, "sentiment": self.sentiment, "score": round(self.score, 4),
            "semantic": round(self.semantic, 4), "keyword": round(self.keyword, 4), "snippet": self.snippet,
        }


def build_where(
    *,
    symbols: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sources: Sequence[str] | None = None,
    events: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    """A Chroma `where` filter from the search filters (None when unfiltered)."""
    clauses: list[dict[str, Any]] = []

    def any_of(keys: list[dict[str, Any]]) -> None:
        if len(keys) == 1:
            clauses.append(keys[0])
        elif keys:
            clauses.append({"$or": keys})

    if symbols:
        any_of([{f"sym_{s}": True} for s in dict.fromkeys(base_asset(s) for s in symbols)])
    if events:
        any_of([{f"ev_{e}": True} for e in dict.fromkeys(events)])
    if sources:
        src = list(dict.fromkeys(sources))
        clauses.append({"source": src[0]} if len(src) == 1 else {"source": {"$in": src}})
    if since is not None:
        clauses.append({"published_ts": {"$gte": int(since.timestamp())}})
    if until is not None:
        clauses.append({"published_ts": {"$lte": int(until.timestamp())}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class _Matcher:
    """The same filter as `build_where`, applied in Python to Chroma metadata."""

    def __init__(self, symbols: Sequence[str] | None, since: datetime | None, until: datetime | None,
                 sources: Sequence[str] | None, events: Sequence[str] | None) -> None:
        self.sym_keys = [f"sym_{base_asset(s)}" for s in symbols] if symbols else None
        self.ev_keys = [f"ev_{e}" for e in events] if events else None
        self.sources = set(sources) if sources else None
        self.lo = int(since.timestamp()) if since is not None else None
        self.hi = int(until.timestamp()) if until is not None else None

    def __call__(self, meta: Mapping[str, Any]) -> bool:
        if self.sym_keys is not None and not any(meta.get(k) is True for k in self.sym_keys):
            return False
        if self.ev_keys is not None and not any(meta.get(k) is True for k in self.ev_keys):
            return False
        if self.sources is not None and meta.get("source") not in self.sources:
            return False
        ts = int(meta.get("published_ts", 0))
        if self.lo is not None and ts < self.lo:
            return False
        return not (self.hi is not None and ts > self.hi)


def bm25_scores(query_terms: list[str], docs: list[list[str]], k1: float = 1.2, b: float = 0.75) -> list[float]:
    if not docs or not query_terms:
        return [0.0] * len(docs)
    n = len(docs)
    avg = sum(len(d) for d in docs) / n or 1.0
    df = Counter(t for d in docs for t in set(d))
    out = []
    for d in docs:
        tf = Counter(d)
        s = 0.0
        for t in set(query_terms):
            f = tf.get(t, 0)
            if not f:
                continue
            idf = math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5))
            s += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(d) / avg))
        out.append(s)
    return out


def search(
    store: NewsStore,
    query: str,
    *,
    k: int = 10,
    symbols: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sources: Sequence[str] | None = None,
    events: Sequence[str] | None = None,
    hybrid: bool = True,
    alpha: float = 0.7,
    candidates: int | None = None,
    overfetch: int = 250,
    id_limit: int = 30_000,
) -> list[SearchHit]:
    """The k best documents for `query` that pass the filters, best first."""
    query = query.strip()
    if not query:
        raise ValueError("query is empty")
    k = max(1, min(100, k))
    n_cand = candidates or (max(4 * k, 40) if hybrid else k)
    where = build_where(symbols=symbols, since=since, until=until, sources=sources, events=events)
    q_emb = store.embedder.embed([query])
    include = ["metadatas", "distances"]  # the text comes from Mongo (Chroma holds vectors and filter metadata)
    res: Any = None
    matching: list[str] | None = None
    total = 0
    if where is not None:
        # Chroma's metadata pre-filter costs ~100 ms at 100k documents. The in-process metadata index says in about
        # a millisecond which ids pass and how selective the filter is, and the cheaper plan is chosen.
        matching = store.meta.match(symbols=[base_asset(s) for s in symbols] if symbols else None, since=since,
                                    until=until, sources=sources, events=events)
        total = store.meta.size
        if not matching:
            return []
    if matching is not None and overfetch > 0:
        # Broad filter: over-fetch unfiltered neighbours (an HNSW query costs a few ms) and filter them here.
        wanted = max(n_cand, math.ceil(2.5 * k * total / len(matching)))
        if wanted <= overfetch:
            match = _Matcher(symbols, since, until, sources, events)
            wide = store.col.query(query_embeddings=q_emb, n_results=wanted, include=include)
            keep = [i for i, m in enumerate((wide["metadatas"] or [[]])[0]) if match(m or {})]
            if len(keep) >= k or len(wide["ids"][0]) < wanted:
                res = {key: [[(wide[key] or [[]])[0][i] for i in keep[:n_cand]]] for key in ("ids", *include)}
    if res is None and matching is not None and 0 < len(matching) <= id_limit:
        # Selective filter: Chroma searches only the matching ids.
        res = store.col.query(query_embeddings=q_emb, n_results=min(n_cand, len(matching)), ids=matching,
                              include=include)
    if res is None:
        res = store.col.query(query_embeddings=q_emb, n_results=n_cand, where=where, include=include)
    ids = res["ids"][0] if res["ids"] else []
    if not ids:
        return []
    metas = (res["metadatas"] or [[]])[0]
    by_id = store.texts(ids)
    texts = [by_id.get(i, "") for i in ids]
    dists = (res["distances"] or [[]])[0]
    sem = [1.0 - float(d) for d in dists]
    kw = [0.0] * len(ids)
    if hybrid:
        raw = bm25_scores(tokenize(query), [tokenize(t or "") for t in texts])
        top = max(raw) if raw else 0.0
        kw = [r / top if top > 0 else 0.0 for r in raw]
    hits: list[SearchHit] = []
    for i, doc_id in enumerate(ids):
        m: dict[str, Any] = dict(metas[i] or {})
        score = alpha * sem[i] + (1 - alpha) * kw[i] if hybrid else sem[i]
        text = texts[i] or ""
        title = str(m.get("title", ""))
        snippet = text[len(title) + 2 :] if text.startswith(title) else text
        hits.append(
            SearchHit(
                id=doc_id, title=title, source=str(m.get("source", "")),
                published=datetime.fromtimestamp(int(m.get("published_ts", 0)), UTC), url=str(m.get("url", "")),
                symbols=[s for s in str(m.get("symbols", "")).split(",") if s],
                events=[e for e in str(m.get("events", "")).split(",") if e],
                sentiment=float(m["sentiment"]) if "sentiment" in m else None,
                score=score, semantic=sem[i], keyword=kw[i], snippet=snippet[:300],
            )
        )
    hits.sort(key=lambda h: -h.score)
    hits = hits[:k]
    for r, h in enumerate(hits, start=1):
        h.rank = r
    return hits
