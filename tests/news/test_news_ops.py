"""Operating the knowledge base: the `crypto-agent news ingest|search|events` commands against loopback feeds, the
scheduler's news ingestion job, and Chroma server mode (CHROMA_HOST) against a real `chroma run` on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo.database import Database

from core.settings import Settings, reset_settings
from knowledge.embeddings import Embedder
from knowledge.ingest import ingest_items
from knowledge.retrieval import search
from knowledge.service import NewsService, set_service
from knowledge.store import NewsStore, chroma_client
from tests.fakes.rss_server import FakeFeeds, rss
from tests.news.conftest import NOW, corpus_items

FEED = [
    {"title": "Hackers drain $40 million from a cross-chain bridge in an exploit",
     "link": "https://wire.example/bridge-hack", "summary": "ETH and USDC were stolen from the bridge contract.",
     "published": NOW - timedelta(hours=2)},
    {"title": "Solana network outage halts block production for hours",
     "link": "https://wire.example/sol-outage", "summary": "Validators restarted the SOL chain.",
     "published": NOW - timedelta(hours=3)},
    {"title": "Fidelity files for a spot ether ETF", "link": "https://wire.example/eth-etf",
     "summary": "The asset manager joins other institutional ETF filings for ETH.",
     "published": NOW - timedelta(hours=4)},
]


@pytest.fixture()
def cli_service(store: NewsStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[NewsService]:
    monkeypatch.setenv("ALLOW_PRIVATE_FETCH", "true")  # the loopback fake feeds
    reset_settings()
    svc = NewsService(Settings(), store=store)
    set_service(svc)
    yield svc
    set_service(None)
    reset_settings()


def test_cli_ingest_search_events(cli_service: NewsService, capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import main

    with FakeFeeds({"wire": rss("Wire", FEED)}) as fake:
        assert main(["news", "ingest", "--feed", "not-a-spec"]) == 2
        assert "NAME=URL" in capsys.readouterr().err
        assert main(["news", "ingest", "--feed", f"Wire={fake.feed_url('wire')}", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["fetched"] == 3 and report["stored"] == 3 and report["errors"] == []
        assert report["sources"] == ["Wire"]
        assert main(["news", "ingest", "--feed", f"Wire={fake.feed_url('wire')}"]) == 0  # again: duplicates
        assert "stored 0, duplicates url/exact/near 3/" in capsys.readouterr().out
        assert main(["news", "ingest", "--feed", f"Gone={fake.url}/status/500"]) == 1
        assert "source error" in capsys.readouterr().err
    assert cli_service.store.docs.count_documents({}) == 3

    assert main(["news", "search", "bridge exploit stolen funds", "--json", "-k", "2"]) == 0
    hits = json.loads(capsys.readouterr().out)["results"]
    assert hits[0]["title"].startswith("Hackers drain $40 million") and hits[0]["source"] == "Wire"
    assert main(["news", "search", "validators restarted", "--symbols", "SOL", "--hours", "24"]) == 0
    text = capsys.readouterr().out
    assert " 1. [" in text and "Solana network outage" in text and "https://wire.example/sol-outage" in text
    assert main(["news", "search", "anything at all", "--source", "Nobody"]) == 0
    assert "no results" in capsys.readouterr().out

    assert main(["news", "events", "--types", "hack,outage", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)["events"]
    assert {tuple(e["events"]) for e in events} == {("hack",), ("outage",)}
    assert main(["news", "events", "--symbols", "SOL"]) == 0
    text = capsys.readouterr().out
    assert "outage" in text and "Solana network outage" in text and "bridge" not in text


def test_scheduler_registers_and_runs_news_ingestion(mongo_db: Database[dict[str, Any]], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.scheduler.system import system_jobs
    from knowledge.sources import rss as rss_mod

    settings = Settings(data_dir=tmp_path, allow_private_fetch=True, retrain_schedule="off")
    jobs = {j.spec.id: j for j in system_jobs(settings, mongo_db)}
    assert set(jobs) == {"system:ingest_news"}
    job = jobs["system:ingest_news"]
    assert job.spec.kind == "ingest_news" and job.spec.cadence.minute == "5" and job.spec.cadence.hour == "*"
    daily = system_jobs(settings.model_copy(update={"news_ingest_schedule": "daily 03:30 UTC"}), mongo_db)
    assert [(j.spec.cadence.hour, j.spec.cadence.minute) for j in daily] == [("3", "30")]
    assert system_jobs(settings.model_copy(update={"news_ingest_schedule": "off"}), mongo_db) == []

    import asyncio

    with FakeFeeds({"wire": rss("Wire", FEED)}) as fake:
        # the job reads the default feed list; point it at the loopback fake (the list is data, not a client)
        monkeypatch.setattr(rss_mod, "DEFAULT_FEEDS", {"Wire": fake.feed_url("wire")})
        report = asyncio.run(job.handler("all"))
        assert fake.hits == ["wire"]
    assert isinstance(report, dict) and report["job"] == "news_ingest" and report["stored"] == 3
    assert mongo_db["news_docs"].count_documents({}) == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    exe = str(Path(sys.executable).parent / "chroma")
    if not Path(exe).exists():
        pytest.fail("the chroma CLI (shipped with chromadb) is missing: reinstall chromadb")
    port = _free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    log = (path / "server.log").open("wb")
    proc = subprocess.Popen([exe, "run", "--path", str(path / "data"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chroma server did not start: {(path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_chroma_server_mode_ingests_and_searches(chroma_server: int, mongo_db: Database[dict[str, Any]],
                                                 embedder: Embedder, tmp_path: Path) -> None:
    import chromadb

    settings = Settings(data_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=chroma_server)
    client = chroma_client(settings)
    assert not (tmp_path / "chroma").exists()  # no embedded store was opened
    name = f"srv_{uuid.uuid4().hex[:10]}"
    store = NewsStore(mongo_db, client, embedder=embedder, collection=name)
    rep = ingest_items(store, corpus_items())
    assert rep.stored == len(corpus_items())
    hits = search(store, "flash loan exploit drained protocol", k=3, symbols=["ETH"])
    assert hits and hits[0].title.startswith("Hackers drain")
    # the vectors live on the server: an independent client sees them
    other = chromadb.HttpClient(host="127.0.0.1", port=chroma_server,
                                settings=chromadb.config.Settings(anonymized_telemetry=False))
    assert other.get_collection(name).count() == rep.stored
