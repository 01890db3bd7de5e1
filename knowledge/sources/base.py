"""The source interface: anything that returns `NewsItem`s. RSS is the keyless default; Google CSE is optional."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from knowledge.models import NewsItem


class SourceError(RuntimeError):
    """A source failed; the message says which and why (ingestion reports it and goes on with other sources)."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


class QuotaExceededError(SourceError):
    """The provider refused for quota or rate reasons (HTTP 429, or 403 with a quota reason)."""


@runtime_checkable
class NewsSource(Protocol):
    name: str

    def fetch(self, query: str | None = None, *, since: datetime | None = None, limit: int = 100) -> list[NewsItem]:
        """Items newer than `since` (when given), matching `query` (when given). Raises SourceError."""
        ...


class FetchResult:
    """Items plus per-source errors from a multi-source fetch."""

    def __init__(self) -> None:
        self.items: list[NewsItem] = []
        self.errors: list[str] = []
