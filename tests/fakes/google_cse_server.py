"""A fake Google Custom Search JSON API (`GET /customsearch/v1`) on loopback.

Serves `corpus` (list of result dicts: title, link, snippet, displayLink, pagemap) 10 at a time with
`queries.nextPage` like the real API, validates key and cx, records every request's query parameters, and can be
switched into failure modes: "quota429", "daily403" (403 dailyLimitExceeded), "forbidden" (403 accessNotConfigured),
"bad400".
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.asgi_server import ThreadedServer


def result(n: int, title: str | None = None, published: str | None = "2026-01-05T10:00:00Z") -> dict[str, Any]:
    meta = {"og:title": title or f"Result {n}"}
    if published:
        meta["article:published_time"] = published
    return {
        "kind": "customsearch#result",
        "title": title or f"Bitcoin market update number {n}",
        "link": f"https://news.example.com/articles/{n}?utm_source=google",
        "displayLink": "news.example.com",
        "snippet": f"Snippet {n}: bitcoin and ether prices moved today.",
        "pagemap": {"metatags": [meta]},
    }


class FakeGoogleCSE:
    def __init__(self, corpus: list[dict[str, Any]] | None = None, *, key: str = "test-key", cx: str = "test-cx"):
        self.corpus = corpus if corpus is not None else [result(i) for i in range(1, 26)]
        self.key = key
        self.cx = cx
        self.mode: str | None = None
        self.requests: list[dict[str, str]] = []
        self._server = ThreadedServer(Starlette(routes=[Route("/customsearch/v1", self._search)]))

    @property
    def url(self) -> str:
        return f"{self._server.url}/customsearch/v1"

    def __enter__(self) -> FakeGoogleCSE:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    @staticmethod
    def _error(code: int, message: str, reason: str, status: str) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": code, "message": message, "status": status,
                       "errors": [{"message": message, "domain": "usageLimits", "reason": reason}]}},
            status_code=code,
        )

    async def _search(self, request: Request) -> JSONResponse:
        params = dict(request.query_params)
        self.requests.append(params)
        if self.mode == "quota429":
            return self._error(429, "Quota exceeded for quota metric 'Queries per day'.", "rateLimitExceeded",
                               "RESOURCE_EXHAUSTED")
        if self.mode == "daily403":
            return self._error(403, "This API requires billing; daily limit exceeded.", "dailyLimitExceeded",
                               "PERMISSION_DENIED")
        if self.mode == "forbidden":
            return self._error(403, "Custom Search API has not been used in project 1 or it is disabled.",
                               "accessNotConfigured", "PERMISSION_DENIED")
        if params.get("key") != self.key:
            return self._error(400, "API key not valid. Please pass a valid API key.", "badRequest",
                               "INVALID_ARGUMENT")
        if self.mode == "bad400" or params.get("cx") != self.cx:
            return self._error(400, "Request contains an invalid argument.", "invalid", "INVALID_ARGUMENT")
        num = int(params.get("num", 10))
        start = int(params.get("start", 1))
        if not 1 <= num <= 10 or start < 1 or start + num > 101:
            return self._error(400, "Request contains an invalid argument.", "invalid", "INVALID_ARGUMENT")
        page = self.corpus[start - 1 : start - 1 + num]
        queries: dict[str, Any] = {"request": [{"startIndex": start, "count": len(page)}]}
        if start - 1 + num < len(self.corpus):
            queries["nextPage"] = [{"startIndex": start + num, "count": num}]
        body: dict[str, Any] = {"kind": "customsearch#search", "queries": queries,
                                "searchInformation": {"totalResults": str(len(self.corpus))}}
        if page:
            body["items"] = page
        return JSONResponse(body)
