"""Google Custom Search JSON API client (optional source; closed to new customers, ends 2027-01-01).

GET {base}?key=&cx=&q= with num (<= 10), start (1-based, start + num <= 101), dateRestrict (d[N], w[N], m[N]),
sort. Quota errors (HTTP 429, or 403 with a quota/rate reason) raise QuotaExceededError with a readable message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from knowledge.models import NewsItem
from knowledge.safety import UnsafeURLError, guarded_client
from knowledge.sources.base import QuotaExceededError, SourceError

DEFAULT_QUERY = "bitcoin OR ethereum OR crypto"
_QUOTA_REASONS = {"dailyLimitExceeded", "rateLimitExceeded", "quotaExceeded", "userRateLimitExceeded",
                  "RATE_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED"}
_TIME_KEYS = ("article:published_time", "og:article:published_time", "datepublished", "pubdate",
              "article:modified_time", "og:updated_time")


def _parse_time(value: str) -> datetime | None:
    try:
        ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _published(item: dict[str, Any]) -> datetime | None:
    for tags in (item.get("pagemap") or {}).get("metatags") or []:
        for key in _TIME_KEYS:
            if isinstance(tags, dict) and tags.get(key):
                ts = _parse_time(str(tags[key]))
                if ts is not None:
                    return ts
    return None


def _error_reason(resp: httpx.Response) -> tuple[str, str]:
    try:
        err = resp.json().get("error") or {}
    except ValueError:
        return "", resp.text[:200]
    reasons = [str(e.get("reason", "")) for e in err.get("errors") or [] if isinstance(e, dict)]
    reasons.append(str(err.get("status", "")))
    for detail in err.get("details") or []:
        if isinstance(detail, dict) and detail.get("reason"):
            reasons.append(str(detail["reason"]))
    reason = next((r for r in reasons if r in _QUOTA_REASONS), next((r for r in reasons if r), ""))
    return reason, str(err.get("message", ""))[:300]


class GoogleCSESource:
    name = "google_cse"

    def __init__(
        self,
        api_key: str,
        cse_id: str,
        *,
        base_url: str = "https://www.googleapis.com/customsearch/v1",
        allow_private: bool = False,
        timeout: float = 15.0,
        client: httpx.Client | None = None,
    ) -> None:
        if not api_key or not cse_id:
            raise ValueError("Google CSE needs GOOGLE_API_KEY and GOOGLE_CSE_ID")
        self.api_key = api_key
        self.cse_id = cse_id
        self.base_url = base_url
        self.allow_private = allow_private
        self.timeout = timeout
        self.client = client
        self.requests_made = 0

    def _get(self, client: httpx.Client, params: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = client.get(self.base_url, params={"key": self.api_key, "cx": self.cse_id, **params})
        except UnsafeURLError as exc:
            raise SourceError(self.name, str(exc)) from exc
        except httpx.HTTPError as exc:
            raise SourceError(self.name, f"request failed: {type(exc).__name__}") from exc
        self.requests_made += 1
        if resp.status_code == 200:
            data: dict[str, Any] = resp.json()
            return data
        reason, message = _error_reason(resp)
        if resp.status_code == 429 or (resp.status_code == 403 and reason in _QUOTA_REASONS):
            raise QuotaExceededError(
                self.name,
                f"quota exhausted (HTTP {resp.status_code}{', ' + reason if reason else ''}): {message or 'no detail'}."
                " The free tier allows 100 queries/day; RSS sources keep working.",
            )
        if resp.status_code == 403:
            raise SourceError(
                self.name,
                f"forbidden (HTTP 403{', ' + reason if reason else ''}): {message or 'no detail'}. Check that the key "
                "is valid and the Custom Search API is enabled for its project.",
            )
        if resp.status_code == 400:
            raise SourceError(self.name, f"bad request (HTTP 400): {message or 'no detail'}. Check GOOGLE_CSE_ID.")
        raise SourceError(self.name, f"HTTP {resp.status_code}: {message or 'no detail'}")

    def search(
        self,
        query: str,
        *,
        date_restrict: str | None = "d1",
        max_results: int = 10,
        sort: str | None = None,
    ) -> list[NewsItem]:
        """Up to `max_results` (<= 100) results, paging 10 at a time while the API reports a next page."""
        max_results = max(1, min(100, max_results))
        client = self.client or guarded_client(allow_private=self.allow_private, timeout=self.timeout)
        items: list[NewsItem] = []
        start = 1
        try:
            while len(items) < max_results and start <= 91:
                num = min(10, max_results - len(items))
                params: dict[str, Any] = {"q": query, "num": num, "start": start}
                if date_restrict:
                    params["dateRestrict"] = date_restrict
                if sort:
                    params["sort"] = sort
                data = self._get(client, params)
                results = data.get("items") or []
                for res in results:
                    link = str(res.get("link") or "")
                    if not link or not res.get("title"):
                        continue
                    items.append(
                        NewsItem(
                            title=str(res.get("title")),
                            url=link,
                            source=str(res.get("displayLink") or urlsplit(link).hostname or "google"),
                            published=_published(res),
                            summary=str(res.get("snippet") or ""),
                            origin="google_cse",
                        )
                    )
                next_pages = (data.get("queries") or {}).get("nextPage") or []
                if not results or not next_pages:
                    break
                start = int(next_pages[0].get("startIndex", start + num))
        finally:
            if self.client is None:
                client.close()
        return items[:max_results]

    def fetch(self, query: str | None = None, *, since: datetime | None = None, limit: int = 30) -> list[NewsItem]:
        restrict = "d1"
        if since is not None:
            days = max(1, int((datetime.now(UTC) - since).total_seconds() // 86400) + 1)
            restrict = f"d{days}"
        items = self.search(query or DEFAULT_QUERY, date_restrict=restrict, max_results=limit)
        return [i for i in items if since is None or i.published is None or i.published >= since]
