"""News data shapes: a raw item from a source and the normalised document the knowledge base stores."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.clock import utcnow
from knowledge.text import canonical_url, clean_text, content_hash, detect_symbols


@dataclass
class NewsItem:
    """What a source returns, before normalisation."""

    title: str
    url: str
    source: str
    published: datetime | None = None
    summary: str = ""
    body: str = ""
    origin: str = ""  # "rss", "google_cse", "csv", ...


def embed_text(title: str, summary: str = "", body: str = "") -> str:
    """The text a document is embedded (and keyword-scored) by: the headline plus the start of the summary, or of
    the body when there is no summary."""
    tail = summary or body
    return f"{title}. {tail[:400]}" if tail else title


@dataclass
class NewsDoc:
    """A normalised article: the unit stored in Mongo and Chroma."""

    id: str
    title: str
    summary: str
    body: str
    source: str
    url: str
    url_canon: str
    published: datetime
    symbols: list[str]
    content_hash: str
    origin: str = ""
    fetched_at: datetime = field(default_factory=utcnow)
    events: list[str] = field(default_factory=list)
    sentiment_label: str | None = None
    sentiment_score: float | None = None

    @property
    def embed_text(self) -> str:
        """The text that is embedded: the headline plus the start of the summary (or body)."""
        return embed_text(self.title, self.summary, self.body)

    def to_mongo(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "title": self.title,
            "summary": self.summary,
            "body": self.body,
            "source": self.source,
            "url": self.url,
            "url_canon": self.url_canon,
            "published": self.published,
            "symbols": self.symbols,
            "content_hash": self.content_hash,
            "origin": self.origin,
            "fetched_at": self.fetched_at,
            "events": self.events,
            "sentiment_label": self.sentiment_label,
            "sentiment_score": self.sentiment_score,
        }

    @classmethod
    def from_mongo(cls, doc: dict[str, Any]) -> NewsDoc:
        published = doc["published"]
        if published.tzinfo is None:
            published = published.replace(tzinfo=UTC)
        return cls(
            id=doc["_id"],
            title=doc.get("title", ""),
            summary=doc.get("summary", ""),
            body=doc.get("body", ""),
            source=doc.get("source", ""),
            url=doc.get("url", ""),
            url_canon=doc.get("url_canon", ""),
            published=published,
            symbols=list(doc.get("symbols", [])),
            content_hash=doc.get("content_hash", ""),
            origin=doc.get("origin", ""),
            events=list(doc.get("events", [])),
            sentiment_label=doc.get("sentiment_label"),
            sentiment_score=doc.get("sentiment_score"),
        )


def normalise(item: NewsItem, *, now: datetime | None = None) -> NewsDoc | None:
    """Clean, canonicalise and tag one item. None when it has no usable title."""
    title = clean_text(item.title)[:500]
    if not title:
        return None
    summary = clean_text(item.summary)[:2000]
    body = clean_text(item.body)[:20000]
    if summary == title:
        summary = ""
    url_canon = canonical_url(item.url) if item.url else ""
    digest = content_hash(title, summary or body[:2000])
    doc_id = hashlib.sha1((url_canon or digest).encode("utf-8"), usedforsecurity=False).hexdigest()[:24]
    published = item.published or now or utcnow()
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return NewsDoc(
        id=doc_id,
        title=title,
        summary=summary,
        body=body,
        source=clean_text(item.source)[:100] or "unknown",
        url=item.url.strip(),
        url_canon=url_canon,
        published=published.astimezone(UTC),
        symbols=detect_symbols(f"{title}. {summary} {body[:3000]}"),
        content_hash=digest,
        origin=item.origin,
    )
