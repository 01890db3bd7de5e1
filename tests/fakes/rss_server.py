"""Fake RSS/Atom feeds on loopback: good RSS 2.0 and Atom feeds, broken ones, and HTTP failures.

Routes: /feeds/<name> serves `feeds[name]` (bytes or str) with an XML content type; /status/<code> answers that
HTTP status (429 with Retry-After); /redirect?to=URL answers 302 to URL. `rss()` and `atom()` build documents; an
RSS entry with `content` gets a `content:encoded` body (CDATA HTML). `hosts` records each request's Host header.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.asgi_server import ThreadedServer


def rss(title: str, entries: list[dict[str, Any]]) -> str:
    items = []
    for e in entries:
        pub = e.get("published") or datetime.now(UTC)
        items.append(
            f"<item><title>{escape(e['title'])}</title><link>{escape(e['link'])}</link>"
            f"<description>{escape(e.get('summary', ''))}</description>"
            + (f"<content:encoded><![CDATA[{e['content']}]]></content:encoded>" if e.get("content") else "")
            + f"<pubDate>{format_datetime(pub)}</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>{escape(title)}</title><link>https://example.com</link><description>d</description>"
        + "".join(items) + "</channel></rss>"
    )


def atom(title: str, entries: list[dict[str, Any]]) -> str:
    items = []
    for e in entries:
        pub = (e.get("published") or datetime.now(UTC)).isoformat()
        items.append(
            f"<entry><title>{escape(e['title'])}</title><link href=\"{escape(e['link'])}\"/>"
            f"<id>{escape(e['link'])}</id><updated>{pub}</updated>"
            f"<summary>{escape(e.get('summary', ''))}</summary></entry>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(title)}</title><id>urn:x</id><updated>{datetime.now(UTC).isoformat()}</updated>"
        + "".join(items) + "</feed>"
    )


class FakeFeeds:
    def __init__(self, feeds: dict[str, str | bytes] | None = None) -> None:
        self.feeds: dict[str, str | bytes] = dict(feeds or {})
        self.hits: list[str] = []
        self.hosts: list[str] = []
        self._server = ThreadedServer(
            Starlette(routes=[
                Route("/feeds/{name}", self._feed),
                Route("/status/{code:int}", self._status),
                Route("/redirect", self._redirect),
            ])
        )

    @property
    def url(self) -> str:
        return self._server.url

    def feed_url(self, name: str) -> str:
        return f"{self._server.url}/feeds/{name}"

    def __enter__(self) -> FakeFeeds:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    async def _feed(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.hits.append(name)
        self.hosts.append(request.headers.get("host", ""))
        if name not in self.feeds:
            return Response("not found", status_code=404)
        return Response(self.feeds[name], media_type="application/rss+xml")

    async def _status(self, request: Request) -> Response:
        code = int(request.path_params["code"])
        self.hits.append(f"status/{code}")
        headers = {"Retry-After": "60"} if code == 429 else None
        return Response("error", status_code=code, headers=headers)

    async def _redirect(self, request: Request) -> Response:
        return RedirectResponse(request.query_params["to"], status_code=302)
