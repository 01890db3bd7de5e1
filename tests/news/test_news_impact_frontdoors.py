"""Market impact wired to stored candles: the `news_impact` tool, `GET /v1/news/impact` and `crypto-agent news
impact` run the event study on stored news events against candles in the market-data candle store (written here
through its own store class, as `crypto-agent data download|import` does), with BTC/USDT as benchmark."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from core.settings import Settings
from knowledge.ingest import ingest_items
from knowledge.service import NewsService, set_service
from knowledge.store import NewsStore
from tests.news.conftest import NOW, item
from trading.market_data.candles import CandleStore
from trading.types import Candle

H = 3_600_000
LISTINGS = [  # distinct wording: near-duplicate detection would merge copies of one headline
    ("Binance to list Aptos (APT) with spot trading pairs", 24 * 10 + 0.3),
    ("Coinbase adds Aptos (APT) trading as listing goes live", 24 * 15 + 0.3),
    ("Kraken will list the APT token of Aptos for US customers", 24 * 20 + 0.3),
    ("OKX lists APT perpetual futures after Aptos mainnet", 24 * 25 + 0.3),
]
JUMP = 0.02  # APT's log return in the candle after each listing's entry candle, on top of beta * market


def _write_candles(db: Database[dict[str, Any]], *, with_btc: bool = True) -> None:
    end = int(NOW.timestamp() * 1000) // H * H
    ts = np.arange(end - 40 * 24 * H, end + H, H, dtype=np.int64)
    rng = np.random.default_rng(7)
    mret = rng.normal(0, 0.004, len(ts))
    cret = 1.2 * mret + rng.normal(0, 0.0005, len(ts))
    for _, hours_ago in LISTINGS:
        t_ms = int(NOW.timestamp() * 1000 - hours_ago * H)
        i0 = int(np.searchsorted(ts, t_ms, side="left"))
        cret[i0 + 1] += JUMP
    store = CandleStore(db)
    series = [("APT/USDT", 10 * np.exp(np.cumsum(cret)))]
    if with_btc:
        series.append(("BTC/USDT", 30_000 * np.exp(np.cumsum(mret))))
    for symbol, close in series:
        store.upsert("binance", symbol, "1h",
                     [Candle(int(t), float(c), float(c) * 1.001, float(c) * 0.999, float(c), 1.0)
                      for t, c in zip(ts, close, strict=True)], source="test")


@pytest.fixture()
def service(store: NewsStore) -> Iterator[NewsService]:
    items = [item(title, "The exchange opens trading this week.", hours_ago=h) for title, h in LISTINGS]
    items.append(item("Solana network outage halts block production for seven hours",
                      "Validators restarted the SOL chain.", hours_ago=24 * 12))
    rep = ingest_items(store, items)
    assert rep.stored == len(items)
    svc = NewsService(Settings(), store=store)
    set_service(svc)
    yield svc
    set_service(None)


def test_news_impact_tool_measures_the_listing_jump_from_stored_candles(service: NewsService) -> None:
    import tools.news  # noqa: F401
    from tools.registry import get_tool

    _write_candles(service.db)
    spec = get_tool("news_impact")
    assert spec is not None and not spec.proposes_orders
    out = spec.invoke({"event_type": "listing", "symbol": "APT/USDT"})
    assert out["ok"], out
    res = out["result"]
    assert res["benchmark"] == "BTC/USDT" and res["symbol"] == "APT/USDT" and res["events"] == len(LISTINGS)
    assert res["coins"] == ["APT", "BTC"]
    listing = res["study"]["listing"]
    for horizon in ("1h", "4h", "24h"):
        assert listing[horizon]["n"] == len(LISTINGS)
        assert listing[horizon]["mean_car"] == pytest.approx(JUMP, abs=0.006)
        assert listing[horizon]["share_positive"] == 1.0
    assert spec.invoke({"event_type": "rumour"})["ok"] is False


def test_news_impact_tool_says_how_to_get_missing_candles(service: NewsService) -> None:
    import tools.news  # noqa: F401
    from tools.registry import get_tool

    spec = get_tool("news_impact")
    assert spec is not None
    _write_candles(service.db)
    out = spec.invoke({"event_type": "outage", "symbol": "SOL"})
    assert out["ok"] is False
    assert "SOL/USDT" in out["error"] and "crypto-agent data download --symbol SOL/USDT" in out["error"]
    # all event types: SOL has none, so it is listed as missing while APT is measured
    res = spec.invoke({})["result"]
    assert "listing" in res["study"] and "outage" not in res["study"]
    assert any("SOL/USDT" in hint for hint in res["missing_candles"])


def test_news_impact_needs_the_benchmark(service: NewsService) -> None:
    import tools.news  # noqa: F401
    from tools.registry import get_tool

    _write_candles(service.db, with_btc=False)
    spec = get_tool("news_impact")
    assert spec is not None
    out = spec.invoke({"event_type": "listing"})
    assert out["ok"] is False and "BTC/USDT" in out["error"] and "benchmark" in out["error"]



def test_http_news_impact(news_http: tuple[TestClient, str, str], service: NewsService) -> None:
    c, read, _ = news_http
    h = {"Authorization": f"Bearer {read}"}
    assert c.get("/v1/news/impact").status_code == 401
    r = c.get("/v1/news/impact", params={"event_type": "listing", "symbol": "APT"}, headers=h)
    assert r.status_code == 404 and "crypto-agent data download --symbol" in r.json()["detail"]
    _write_candles(service.db)
    r = c.get("/v1/news/impact", params={"event_type": "listing", "symbol": "APT"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["study"]["listing"]["4h"]["mean_car"] == pytest.approx(JUMP, abs=0.006)
    r = c.get("/v1/news/impact", params={"event_type": "outage", "symbol": "SOL"}, headers=h)
    assert r.status_code == 404 and "SOL/USDT" in r.json()["detail"]
    for params, needle in (({"event_type": "bogus"}, "unknown event type"), ({"timeframe": "4h"}, "timeframe"),
                           ({"symbol": "BTC,ETH"}, "one coin"), ({"symbol": "B$C"}, "bad symbol")):
        r = c.get("/v1/news/impact", params=params, headers=h)
        assert r.status_code == 400 and needle in r.json()["detail"], (params, r.text)
    r = c.get("/v1/news/impact", params={"event_type": "hack"}, headers=h)
    assert r.status_code == 200 and r.json()["study"] == {} and "no hack events" in r.json()["note"]


def test_cli_news_impact(service: NewsService, capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import main

    assert main(["news", "impact", "--event-type", "listing", "--symbol", "APT"]) == 2
    assert "crypto-agent data download --symbol APT/USDT" in capsys.readouterr().err
    _write_candles(service.db)
    assert main(["news", "impact", "--event-type", "listing", "--symbol", "APT", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["study"]["listing"]["24h"]["n"] == len(LISTINGS)
    assert main(["news", "impact", "--event-type", "listing"]) == 0
    text = capsys.readouterr().out
    assert "listing" in text and "benchmark BTC/USDT" in text
    assert main(["news", "impact", "--event-type", "bogus"]) == 2
    assert "unknown event type" in capsys.readouterr().err
    assert main(["news", "impact", "--timeframe", "1d", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["ok"] is False
