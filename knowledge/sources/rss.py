"""RSS/Atom feeds with feedparser, fetched through the SSRF-guarded httpx client. Keyless: the default source."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser
import httpx

from knowledge.models import NewsItem
from knowledge.safety import UnsafeURLError, guarded_client
from knowledge.sources.base import QuotaExceededError, SourceError
from knowledge.text import clean_text, tokenize

# Major crypto outlets with public feeds (no key needed).
DEFAULT_FEEDS: dict[str, str] = {
    "CoinDesk": "https://www.coindesk.com/arc/outboundfeeds/rss/",
    "Cointelegraph": "https://cointelegraph.com/rss",
    "Decrypt": "https://decrypt.co/feed",
    "The Block": "https://www.theblock.co/rss.xml",
    "Bitcoin Magazine": "https://bitcoinmagazine.com/.rss/full/",
    "CryptoSlate": "https://cryptoslate.com/feed/",
    "CryptoPotato": "https://cryptopotato.com/feed/",
    "CryptoNews": "https://cryptonews.com/news/feed/",
    "Blockworks": "https://blockworks.co/feed",
    "NewsBTC": "https://www.newsbtc.com/feed/",
    "Bitcoinist": "https://bitcoinist.com/feed/",
    "The Defiant": "https://thedefiant.io/api/feed",
}

MAX_FEED_BYTES = 5_000_000


def _entry_time(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _matches(item: NewsItem, query: str | None) -> bool:
    if not query:
        return True
    terms = set(tokenize(query))
    words = set(tokenize(f"{item.title} {item.summary}"))
    return not terms or bool(terms & words)


@dataclass
class RSSFeed:
    """One RSS or Atom feed. `fetch` raises SourceError for HTTP errors, refused URLs and unparseable feeds."""

    name: str
    url: str
    allow_private: bool = False
    timeout: float = 15.0
    client: httpx.Client | None = None

    def _download(self) -> bytes:
        client = self.client or guarded_client(allow_private=self.allow_private, timeout=self.timeout)
        try:
            with client.stream("GET", self.url, headers={"Accept": "application/rss+xml, application/atom+xml, "
                                                                  "application/xml;q=0.9, */*;q=0.5"}) as resp:
                if resp.status_code == 429:
                    retry = resp.headers.get("retry-after")
                    raise QuotaExceededError(
                        self.name, f"rate limited (HTTP 429{', retry after ' + retry + ' s' if retry else ''})"
                    )
                if resp.status_code >= 400:
                    raise SourceError(self.name, f"HTTP {resp.status_code} from {self.url}")
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > MAX_FEED_BYTES:
                        raise SourceError(self.name, f"feed larger than {MAX_FEED_BYTES} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except UnsafeURLError as exc:
            raise SourceError(self.name, str(exc)) from exc
        except httpx.HTTPError as exc:
            raise SourceError(self.name, f"fetch failed: {type(exc).__name__}: {exc}") from exc
        finally:
            if self.client is None:
                client.close()

    def fetch(self, query: str | None = None, *, since: datetime | None = None, limit: int = 100) -> list[NewsItem]:
        raw = self._download()
        parsed = feedparser.parse(raw)
        entries = parsed.get("entries") or []
        if not entries:
            if parsed.get("bozo"):
                reason = parsed.get("bozo_exception")
                raise SourceError(self.name, f"malformed feed: {type(reason).__name__}: {reason}")
            if not parsed.get("version"):
                raise SourceError(self.name, "not an RSS or Atom document")
            return []
        items: list[NewsItem] = []
        usable = 0
        for entry in entries:
            title = clean_text(entry.get("title"))
            link = str(entry.get("link") or "")
            if not title or not link:
                continue
            usable += 1
            body = ""
            if entry.get("content"):
                body = " ".join(str(c.get("value", "")) for c in entry["content"])
            item = NewsItem(
                title=title,
                url=link,
                source=self.name,
                published=_entry_time(entry),
                summary=str(entry.get("summary") or entry.get("description") or ""),
                body=body,
                origin="rss",
            )
            if since is not None and item.published is not None and item.published < since:
                continue
            if not _matches(item, query):
                continue
            items.append(item)
            if len(items) >= limit:
                break
        if usable == 0 and parsed.get("bozo"):
            reason = parsed.get("bozo_exception")
            raise SourceError(self.name, f"malformed feed: {type(reason).__name__}: {reason}")
        return items


def default_feeds(*, allow_private: bool = False, feeds: dict[str, str] | None = None) -> list[RSSFeed]:
    return [RSSFeed(name, url, allow_private=allow_private) for name, url in (feeds or DEFAULT_FEEDS).items()]
