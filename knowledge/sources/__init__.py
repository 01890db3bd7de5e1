"""News sources: RSS/Atom (keyless default), Google Custom Search (optional), and the `NewsSource` interface."""

from __future__ import annotations

from core.settings import Settings
from knowledge.sources.base import FetchResult, NewsSource, QuotaExceededError, SourceError
from knowledge.sources.google_cse import GoogleCSESource
from knowledge.sources.rss import DEFAULT_FEEDS, RSSFeed, default_feeds

__all__ = [
    "DEFAULT_FEEDS",
    "FetchResult",
    "GoogleCSESource",
    "NewsSource",
    "QuotaExceededError",
    "RSSFeed",
    "SourceError",
    "default_feeds",
    "sources_from_settings",
]


def sources_from_settings(settings: Settings, *, feeds: dict[str, str] | None = None) -> list[NewsSource]:
    """RSS feeds always; Google CSE too when GOOGLE_API_KEY and GOOGLE_CSE_ID are set."""
    sources: list[NewsSource] = list(default_feeds(allow_private=settings.allow_private_fetch, feeds=feeds))
    key = settings.google_api_key.get_secret_value() if settings.google_api_key else ""
    if key and settings.google_cse_id:
        sources.append(
            GoogleCSESource(
                key, settings.google_cse_id, base_url=settings.google_cse_url,
                allow_private=settings.allow_private_fetch,
            )
        )
    return sources
