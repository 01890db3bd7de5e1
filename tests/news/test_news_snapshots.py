"""The news read routes answer from a short shared snapshot: an ingest through the API clears it at once, anything
else written to the store shows when the TTL runs out; conversation transcripts see this store's appends at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agent.api.auth import ApiKeyStore
from agent.api.errors import install_error_handlers
from agent.memory import ConversationStore
from core.settings import Settings
from knowledge.ingest import ingest_items
from knowledge.service import NewsService
from knowledge.store import NewsStore
from tests.news.conftest import corpus_items, item

NEW_HACK = "Hackers exploit cross-chain bridge and drain $5 million in ETH"


@pytest.fixture()
def client(store: NewsStore, mongo_db: Any) -> Iterator[tuple[TestClient, NewsStore, str, str]]:
    from agent.api.news import router

    ingest_items(store, corpus_items())
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    keys = ApiKeyStore(mongo_db)
    app.state.api_keys = keys
    app.state.news = NewsService(Settings(), store=store)
    read, _ = keys.create("reader", "read")
    admin, _ = keys.create("admin", "admin")
    with TestClient(app) as c:
        yield c, store, read, admin


def _hack_titles(c: TestClient, read: str) -> list[str]:
    r = c.get("/v1/news/events", params={"types": "hack", "since_hours": 100},
              headers={"Authorization": f"Bearer {read}"})
    assert r.status_code == 200, r.text
    return [e["title"] for e in r.json()["events"]]


def test_ingest_through_the_api_clears_the_news_snapshot(client: tuple[TestClient, NewsStore, str, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    c, store, read, admin = client
    before = _hack_titles(c, read)
    assert before and NEW_HACK not in before
    # Written behind the API's back (as the scheduler or the CLI would): the snapshot still answers.
    ingest_items(store, [item(NEW_HACK, "Attackers drained the bridge contract.", hours_ago=1)])
    assert _hack_titles(c, read) == before
    from knowledge import service as service_mod

    monkeypatch.setattr(service_mod.NewsService, "ingest", lambda self, **kw: {"stored": 0, "errors": []})
    r = c.post("/v1/news/ingest", json={}, headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200
    assert NEW_HACK in _hack_titles(c, read)


def test_news_snapshot_expires_after_its_ttl(client: tuple[TestClient, NewsStore, str, str]) -> None:
    c, store, read, _ = client
    h = {"Authorization": f"Bearer {read}"}
    before = _hack_titles(c, read)
    sentiment = c.get("/v1/news/sentiment", params={"symbols": "ETH"}, headers=h).json()
    ingest_items(store, [item(NEW_HACK, "Attackers drained the bridge contract.", hours_ago=1)])
    assert _hack_titles(c, read) == before
    assert c.get("/v1/news/sentiment", params={"symbols": "ETH"}, headers=h).json() == sentiment
    c.app.state.news_snapshots.ttl_s = 0.0  # type: ignore[attr-defined]
    c.app.state.news_snapshots.clear()  # type: ignore[attr-defined]  # entries stored under the old TTL
    assert NEW_HACK in _hack_titles(c, read)
    after = c.get("/v1/news/sentiment", params={"symbols": "ETH"}, headers=h).json()
    assert after["symbols"][0]["n_docs"] == sentiment["symbols"][0]["n_docs"] + 1, (sentiment, after)


def test_conversation_snapshot_sees_this_stores_appends_at_once(mongo_db: Any) -> None:
    memory = ConversationStore(mongo_db)
    assert asyncio.run(memory.aturns("s1", "o")) == []
    memory.append("s1", "How is ETH?", "Calm.", {"user": "u"}, owner="o")
    turns = asyncio.run(memory.aturns("s1", "o"))
    assert [t["question"] for t in turns] == ["How is ETH?"]
    # Another replica's write is not seen until the snapshot expires.
    ConversationStore(mongo_db).append("s1", "And BTC?", "Up.", {"user": "u"}, owner="o")
    assert len(asyncio.run(memory.aturns("s1", "o"))) == 1
    memory._turns.clear()
    assert [t["question"] for t in asyncio.run(memory.aturns("s1", "o"))] == ["How is ETH?", "And BTC?"]
