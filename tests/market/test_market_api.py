"""HTTP /v1/market/*: read scope, payloads, error codes (unknown symbol 404, venue down 503, bad input 4xx)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.fakes.binance_server import FakeBinance


@pytest.fixture()
def client(isolated_settings: Path, market_env: FakeBinance) -> Iterator[tuple[TestClient, str]]:
    from agent.app import create_app
    from core.settings import get_settings

    app = create_app(get_settings())
    with TestClient(app) as c:
        key, _ = app.state.api_keys.create("market-test", "read")
        yield c, key


def test_requires_api_key(client: tuple[TestClient, str]) -> None:
    c, _ = client
    assert c.get("/v1/market/ticker", params={"symbol": "BTC/USDT"}).status_code == 401


def test_ticker_orderbook_candles(client: tuple[TestClient, str], market_env: FakeBinance) -> None:
    c, key = client
    h = {"Authorization": f"Bearer {key}"}
    market_env.set_price("BTC/USDT", 61_000.0, push=False)
    r = c.get("/v1/market/ticker", params={"symbol": "btc-usdt"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["last"] == pytest.approx(61_000.0) and r.json()["simulated"] is False
    r = c.get("/v1/market/orderbook", params={"symbol": "BTC/USDT", "depth": 3}, headers=h)
    assert r.status_code == 200 and len(r.json()["asks"]) == 3
    r = c.get("/v1/market/candles", params={"symbol": "BTC/USDT", "timeframe": "4h", "limit": 6}, headers=h)
    assert r.status_code == 200 and r.json()["count"] == 6
    r = c.get("/v1/market/compare", params={"symbol": "BTC/USDT", "amount": 0.2, "exchanges": "binance"},
              headers=h)
    assert r.status_code == 200 and r.json()["ranking"][0]["exchange"] == "binance"


def test_error_codes(client: tuple[TestClient, str], market_env: FakeBinance) -> None:
    c, key = client
    h = {"Authorization": f"Bearer {key}"}
    r = c.get("/v1/market/ticker", params={"symbol": "BTC/USTD"}, headers=h)
    assert r.status_code == 404 and "BTC/USDT" in r.json()["detail"]
    r = c.get("/v1/market/ticker", params={"symbol": "BTC/USDT", "exchange": "binanse"}, headers=h)
    assert r.status_code == 404 and "binance" in r.json()["detail"]
    r = c.get("/v1/market/candles", params={"symbol": "BTC/USDT", "timeframe": "7m"}, headers=h)
    assert r.status_code == 400 and "timeframe" in r.json()["detail"]
    r = c.get("/v1/market/orderbook", params={"symbol": "BTC/USDT", "depth": 500}, headers=h)
    assert r.status_code == 422
    r = c.get("/v1/market/compare", params={"symbol": "BTC/USTD", "exchanges": "binance"}, headers=h)
    assert r.status_code == 404
    market_env.fail("/api/v3/ticker/24hr", 503, times=20)
    r = c.get("/v1/market/ticker", params={"symbol": "ETH/USDT"}, headers=h)
    assert r.status_code == 503
