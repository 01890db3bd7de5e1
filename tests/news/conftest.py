"""News fixtures: the MiniLM embedder loaded once per session, one Chroma client per session with a fresh collection
per test, a store over the test's Mongo database, and loopback fakes (RSS feeds, Google CSE)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database

from knowledge.embeddings import Embedder
from knowledge.models import NewsItem
from knowledge.store import NewsStore, chroma_client
from tests.fakes.google_cse_server import FakeGoogleCSE
from tests.fakes.rss_server import FakeFeeds

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    emb = Embedder()
    emb.embed(["warm up"])  # loads the model once for the whole session
    return emb


@pytest.fixture(scope="session")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from core.settings import Settings

    path: Path = tmp_path_factory.mktemp("chroma")
    return chroma_client(Settings(data_dir=path), path=path)


@pytest.fixture()
def store(mongo_db: Database[dict[str, Any]], chroma: Any, embedder: Embedder) -> NewsStore:
    return NewsStore(mongo_db, chroma, embedder=embedder, collection=f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture()
def feeds() -> Iterator[FakeFeeds]:
    with FakeFeeds() as fake:
        yield fake


@pytest.fixture()
def cse() -> Iterator[FakeGoogleCSE]:
    with FakeGoogleCSE() as fake:
        yield fake


def item(title: str, summary: str = "", *, url: str | None = None, source: str = "TestWire",
         hours_ago: float = 1.0) -> NewsItem:
    return NewsItem(
        title=title, summary=summary, source=source,
        url=url or f"https://news.example.com/{uuid.uuid4().hex[:10]}",
        published=NOW - timedelta(hours=hours_ago), origin="test",
    )


CORPUS: list[tuple[str, str, str, float]] = [
    # title, summary, source, hours ago
    ("Hackers drain $80 million from DeFi lending protocol in flash loan exploit",
     "Attackers exploited a price oracle bug; ETH funds were moved through a mixer.", "CoinDesk", 2),
    ("Binance to list Aptos (APT) with spot trading pairs",
     "The exchange will open APT/USDT trading on Tuesday.", "Cointelegraph", 5),
    ("SEC sues crypto exchange over unregistered securities offering",
     "The regulator filed a lawsuit in federal court naming XRP and other tokens.", "Decrypt", 10),
    ("Spot bitcoin ETFs record $1 billion of inflows in a single day",
     "BlackRock and Fidelity funds led institutional demand for BTC.", "The Block", 20),
    ("Federal Reserve raises interest rates; bitcoin and stocks slide",
     "Powell signalled more hikes as inflation stays high.", "CoinDesk", 30),
    ("Solana network outage halts block production for seven hours",
     "Validators restarted the SOL chain after a consensus bug.", "Decrypt", 40),
    ("Chainlink partners with SWIFT on cross-border token transfers",
     "The LINK oracle network will connect banks to blockchains.", "Cointelegraph", 50),
    ("Arbitrum token unlock releases 1.1 billion ARB to team and investors",
     "The vesting cliff ends next week.", "The Block", 60),
    ("Dogecoin jumps 20% after Elon Musk tweet",
     "DOGE rallied on heavy retail volume.", "CoinDesk", 200),
    ("Ethereum developers schedule the next network upgrade for March",
     "The hard fork will lower fees for layer-two rollups on ETH.", "Decrypt", 300),
]


def corpus_items() -> list[NewsItem]:
    return [item(t, s, source=src, hours_ago=h, url=f"https://{src.replace(' ', '').lower()}.example/{i}")
            for i, (t, s, src, h) in enumerate(CORPUS)]


@pytest.fixture()
def news_http(service: Any, mongo_db: Database[dict[str, Any]]) -> Iterator[tuple[Any, str, str]]:
    """The news router on its own app, over the requesting module's `service`: (client, read key, admin key)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from agent.api.auth import ApiKeyStore
    from agent.api.errors import install_error_handlers
    from agent.api.news import router

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    keys = ApiKeyStore(mongo_db)
    app.state.api_keys = keys
    app.state.news = service
    read, _ = keys.create("reader", "read")
    admin, _ = keys.create("admin", "admin")
    with TestClient(app) as c:
        yield c, read, admin
