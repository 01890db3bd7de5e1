"""Ingestion: fetch from sources, normalise, drop duplicates, tag events and sentiment, embed, store.

Duplicates, in order: the same canonical URL (already stored or earlier in the batch), the same content hash
(exact text), and near duplicates (cosine similarity of MiniLM embeddings >= `near_dup_threshold`, within the batch
and against the store). `ingest_job` is the scheduled entry point (the scheduler helper registers it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from pymongo.database import Database

from core.clock import utcnow
from core.settings import Settings, get_settings
from knowledge.events import classify_events
from knowledge.models import NewsDoc, NewsItem, normalise
from knowledge.sentiment.offline import OfflineSentiment, get_offline
from knowledge.sources.base import NewsSource, QuotaExceededError, SourceError
from knowledge.store import NewsStore

log = logging.getLogger(__name__)

NEAR_DUP_THRESHOLD = 0.93
DEFAULT_RETENTION_DAYS = 180


@dataclass
class IngestReport:
    fetched: int = 0
    stored: int = 0
    invalid: int = 0
    dup_url: int = 0
    dup_exact: int = 0
    dup_near: int = 0
    purged: int = 0
    errors: list[str] = field(default_factory=list)
    quota_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # wall seconds per stage (normalise, lookup, embed, near_dup, events, sentiment, mongo, chroma): where the
    # ingestion time goes, so a slow run says which stage to look at
    timings: dict[str, float] = field(default_factory=dict)

    def add_time(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds

    @property
    def docs_per_s(self) -> float:
        return self.fetched / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["docs_per_s"] = round(self.docs_per_s, 1)
        out["seconds"] = round(self.seconds, 3)
        out["timings"] = {k: round(v, 3) for k, v in self.timings.items()}
        return out

    def merge(self, other: IngestReport) -> None:
        for name in ("fetched", "stored", "invalid", "dup_url", "dup_exact", "dup_near", "purged"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors
        self.quota_errors += other.quota_errors
        for stage, seconds in other.timings.items():
            self.add_time(stage, seconds)


def _lap(report: IngestReport, stage: str, since: float) -> float:
    now = time.perf_counter()
    report.add_time(stage, now - since)
    return now


def ingest_items(
    store: NewsStore,
    items: Sequence[NewsItem],
    *,
    near_dup_threshold: float = NEAR_DUP_THRESHOLD,
    batch_size: int = 256,
    sentiment: OfflineSentiment | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Normalise, deduplicate, tag and store `items` in batches. Returns counts per outcome."""
    t0 = time.perf_counter()
    report = IngestReport(fetched=len(items))
    scorer = sentiment or get_offline()
    now = now or utcnow()
    for start in range(0, len(items), batch_size):
        t = time.perf_counter()
        docs: list[NewsDoc] = []
        seen_ids: set[str] = set()
        seen_hashes: set[str] = set()
        for item in items[start : start + batch_size]:
            doc = normalise(item, now=now)
            if doc is None:
                report.invalid += 1
                continue
            if doc.id in seen_ids:
                report.dup_url += 1
                continue
            if doc.content_hash in seen_hashes:
                report.dup_exact += 1
                continue
            seen_ids.add(doc.id)
            seen_hashes.add(doc.content_hash)
            docs.append(doc)
        t = _lap(report, "normalise", t)
        known_ids = store.known_ids(d.id for d in docs)
        known_hashes = store.known_hashes(d.content_hash for d in docs)
        fresh: list[NewsDoc] = []
        for d in docs:
            if d.id in known_ids:
                report.dup_url += 1
            elif d.content_hash in known_hashes:
                report.dup_exact += 1
            else:
                fresh.append(d)
        t = _lap(report, "lookup", t)
        if not fresh:
            continue
        emb = store.embedder.embed([d.embed_text for d in fresh])
        t = _lap(report, "embed", t)
        # near duplicates inside the batch: keep the first of each group
        sims = emb @ emb.T
        keep = np.ones(len(fresh), dtype=bool)
        for i in range(1, len(fresh)):
            earlier = np.flatnonzero(keep[:i])
            if earlier.size and float(sims[i, earlier].max()) >= near_dup_threshold:
                keep[i] = False
        # ... and against the store
        idx = np.flatnonzero(keep)
        for j, (_, sim) in zip(idx, store.nearest(emb[idx]), strict=True):
            if sim >= near_dup_threshold:
                keep[j] = False
        report.dup_near += int((~keep).sum())
        kept = [d for d, k in zip(fresh, keep, strict=True) if k]
        kept_emb = emb[keep]
        t = _lap(report, "near_dup", t)
        if not kept:
            continue
        for d in kept:
            d.events = [e.type for e in classify_events(d.title, d.summary)]
        t = _lap(report, "events", t)
        # sentiment reuses the embeddings just computed (no second model pass)
        for d, res in zip(kept, scorer.predict([d.embed_text for d in kept], kept_emb), strict=True):
            d.sentiment_label, d.sentiment_score = res.label, round(res.score, 4)
        t = _lap(report, "sentiment", t)
        report.stored += store.add(kept, kept_emb, timings=report.timings)
    report.seconds = time.perf_counter() - t0
    return report


def fetch_all(
    sources: Sequence[NewsSource], *, query: str | None = None, since: datetime | None = None, limit: int = 100
) -> tuple[list[NewsItem], list[str], list[str]]:
    """Items from every source; a failing source is reported and skipped (the others still count)."""
    items: list[NewsItem] = []
    errors: list[str] = []
    quota: list[str] = []
    for src in sources:
        try:
            items.extend(src.fetch(query, since=since, limit=limit))
        except QuotaExceededError as exc:
            quota.append(str(exc))
            errors.append(str(exc))
        except SourceError as exc:
            errors.append(str(exc))
        except Exception as exc:  # one broken source must not stop ingestion
            log.exception("news source %s failed", getattr(src, "name", src))
            errors.append(f"{getattr(src, 'name', 'source')}: unexpected {type(exc).__name__}: {exc}")
    return items, errors, quota


def ingest_from_sources(
    store: NewsStore,
    sources: Sequence[NewsSource],
    *,
    query: str | None = None,
    since: datetime | None = None,
    limit_per_source: int = 100,
    retention_days: int | None = DEFAULT_RETENTION_DAYS,
) -> IngestReport:
    t0 = time.perf_counter()
    items, errors, quota = fetch_all(sources, query=query, since=since, limit=limit_per_source)
    report = ingest_items(store, items)
    report.errors += errors
    report.quota_errors += quota
    if retention_days:
        report.purged = store.purge_older_than(utcnow() - timedelta(days=retention_days))
    report.seconds = time.perf_counter() - t0
    return report


def ingest_job(
    settings: Settings | None = None,
    *,
    db: Database[dict[str, Any]] | None = None,
    sources: Sequence[NewsSource] | None = None,
    store: NewsStore | None = None,
    query: str | None = None,
    lookback_hours: float = 48.0,
    retention_days: int | None = DEFAULT_RETENTION_DAYS,
) -> dict[str, Any]:
    """The scheduled ingestion job: every configured source (RSS always, Google CSE when keyed) into the store.

    Returns the report as a dict (JSON-able) so the scheduler can log and audit it.
    """
    from knowledge.sources import sources_from_settings

    settings = settings or get_settings()
    store = store or NewsStore.open(settings, db)
    srcs = list(sources) if sources is not None else sources_from_settings(settings)
    since = utcnow() - timedelta(hours=lookback_hours)
    report = ingest_from_sources(store, srcs, query=query, since=since, retention_days=retention_days)
    log.info("news ingest: %s", report.as_dict())
    return {"job": "news_ingest", "sources": [getattr(s, "name", "?") for s in srcs], **report.as_dict()}
