"""One facade over the news knowledge base for the tools, the HTTP routes and the CLI.

Everything here reads the store; only `ingest` fetches from the network (configured sources, SSRF-guarded), and no
tool exposes it, so nothing in the LLM loop fetches a link.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database

from core.clock import utcnow
from core.settings import Settings, get_settings
from knowledge.events import EVENT_TYPES
from knowledge.impact import CandleSource, impact_analysis
from knowledge.ingest import ingest_job
from knowledge.retrieval import SearchHit, search
from knowledge.sentiment.index import SymbolSentiment, sentiment_index
from knowledge.sentiment.offline import SentimentResult, get_offline
from knowledge.signals import NewsSignal, news_signal
from knowledge.sources.base import NewsSource
from knowledge.store import NewsStore
from knowledge.text import base_asset


class NewsService:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        db: Database[dict[str, Any]] | None = None,
        store: NewsStore | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self._db = db if db is not None else (store.db if store is not None else None)
        self._store = store
        self._lock = threading.Lock()
        self._llm: Any = None

    @property
    def db(self) -> Database[dict[str, Any]]:
        if self._db is None:
            from core.storage import get_db

            self._db = get_db(self.settings)
        return self._db

    @property
    def store(self) -> NewsStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = NewsStore.open(self.settings, self.db)
        return self._store

    # -- reads -------------------------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        k: int = 10,
        symbols: Sequence[str] | None = None,
        since_hours: float | None = None,
        until: datetime | None = None,
        sources: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        hybrid: bool = True,
    ) -> list[SearchHit]:
        since = utcnow() - timedelta(hours=since_hours) if since_hours else None
        return search(self.store, query, k=k, symbols=symbols, since=since, until=until, sources=sources,
                      events=events, hybrid=hybrid)

    def events(
        self,
        *,
        symbols: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        since_hours: float | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The newest `limit` items that carry an event type (of `types`, default any), newest first; with
        `since_hours`, only those published in that window. The event filter is part of the query, so the limit
        counts events, never documents without one (a small limit once returned nothing)."""
        since = utcnow() - timedelta(hours=since_hours) if since_hours is not None else None
        syms = [base_asset(s) for s in symbols] if symbols else None
        docs = self.store.find(symbols=syms, events=list(types) if types else list(EVENT_TYPES), since=since,
                               limit=limit)
        return [{
            "events": d.events, "symbols": d.symbols, "title": d.title, "source": d.source,
            "published": d.published.isoformat(timespec="minutes"), "url": d.url,
            "sentiment": d.sentiment_score,
        } for d in docs]

    def symbol_sentiment(
        self, symbols: Sequence[str], *, half_life_hours: float = 24.0, window_hours: float = 168.0,
        as_of: datetime | None = None,
    ) -> list[SymbolSentiment]:
        as_of = as_of or utcnow()
        syms = list(dict.fromkeys(base_asset(s) for s in symbols))
        docs = self.store.find(symbols=syms, since=as_of - timedelta(hours=window_hours), until=as_of, limit=20_000)
        return [sentiment_index(docs, s, as_of=as_of, half_life_hours=half_life_hours) for s in syms]

    def signals(
        self, symbols: Sequence[str], *, half_life_hours: float = 24.0, window_hours: float = 168.0,
        as_of: datetime | None = None,
    ) -> list[NewsSignal]:
        as_of = as_of or utcnow()
        syms = list(dict.fromkeys(base_asset(s) for s in symbols))
        docs = self.store.find(symbols=syms, since=as_of - timedelta(hours=window_hours), until=as_of, limit=20_000)
        return [news_signal(docs, s, as_of=as_of, half_life_hours=half_life_hours) for s in syms]

    def sentiment_with_signals(
        self, symbols: Sequence[str], *, half_life_hours: float = 24.0, window_hours: float = 168.0,
        as_of: datetime | None = None,
    ) -> list[tuple[SymbolSentiment, NewsSignal]]:
        """`symbol_sentiment` and `signals` together from one read of the window (the HTTP index shows both)."""
        as_of = as_of or utcnow()
        syms = list(dict.fromkeys(base_asset(s) for s in symbols))
        docs = self.store.find(symbols=syms, since=as_of - timedelta(hours=window_hours), until=as_of, limit=20_000)
        return [(sentiment_index(docs, s, as_of=as_of, half_life_hours=half_life_hours),
                 news_signal(docs, s, as_of=as_of, half_life_hours=half_life_hours)) for s in syms]

    def impact(
        self,
        candles: CandleSource,
        *,
        event_type: str | None = None,
        symbol: str | None = None,
        since_hours: float | None = None,
        limit: int = 5_000,
    ) -> dict[str, Any]:
        """Event study of the stored events (all history unless `since_hours`) against `candles`."""
        sym = base_asset(symbol) if symbol else None
        since = utcnow() - timedelta(hours=since_hours) if since_hours else None
        docs = self.store.find(symbols=[sym] if sym else None,
                               events=[event_type] if event_type else list(EVENT_TYPES), since=since, limit=limit)
        report = impact_analysis(docs, candles, event_type=event_type, symbol=sym)
        report["documents"] = len(docs)
        return report

    # -- sentiment of given texts ------------------------------------------------------------------------------
    def score_texts(self, texts: Sequence[str], *, offline: bool | None = None) -> list[SentimentResult]:
        """LLM path when an LLM key is configured and `offline` is not True; the offline model otherwise."""
        use_llm = self.settings.llm_enabled if offline is None else (not offline and self.settings.llm_enabled)
        if not use_llm:
            return get_offline().predict(list(texts))
        if self._llm is None:
            from knowledge.sentiment.llm import LLMSentiment

            self._llm = LLMSentiment.from_settings(self.settings, self.db)
        results: list[SentimentResult] = self._llm.predict(list(texts))
        return results

    # -- ingestion (never called from the LLM loop) ----------------------------------------------------------------
    def ingest(self, *, sources: Sequence[NewsSource] | None = None, query: str | None = None,
               lookback_hours: float = 48.0, retention_days: int | None = 180) -> dict[str, Any]:
        return ingest_job(self.settings, store=self.store, sources=sources, query=query,
                          lookback_hours=lookback_hours, retention_days=retention_days)


_service: NewsService | None = None
_service_lock = threading.Lock()


def get_service() -> NewsService:
    global _service
    with _service_lock:
        if _service is None:
            _service = NewsService()
        return _service


def set_service(service: NewsService | None) -> None:
    """Replace the process-wide service (tests, the app at start-up)."""
    global _service
    with _service_lock:
        _service = service
