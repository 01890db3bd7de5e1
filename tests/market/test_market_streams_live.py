"""MARKET_STREAMS wires the websocket streams into the running service: the app's streams (ccxt.pro against the
fake Binance websocket) feed the trading service's books, and an armed stop fires from the stream with the REST
stop-watch poll switched off."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.settings import get_settings, reset_settings
from tests.fakes.binance_server import FakeBinance
from trading.oms import factory
from trading.oms.service import OrderRequest
from trading.types import Side


def _wait(cond: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture()
def streaming_env(isolated_settings: Path, market_env: FakeBinance,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBinance]:
    monkeypatch.setenv("SYMBOLS", "BTC/USDT")
    monkeypatch.setenv("EXCHANGES", "binance")
    monkeypatch.setenv("STOP_WATCH_INTERVAL_S", "0")  # the REST poll is off: only the stream can fire a stop
    monkeypatch.setenv("RECONCILE_INTERVAL_S", "0")
    monkeypatch.setenv("SCHEDULER_ENABLED", "false")
    reset_settings()
    yield market_env


def _client(streams: bool, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    from agent.app import create_app

    monkeypatch.setenv("MARKET_STREAMS", "true" if streams else "false")
    reset_settings()
    return TestClient(create_app(get_settings()))


def test_streamed_book_fires_stop_without_the_poll(streaming_env: FakeBinance,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fake = streaming_env
    with _client(True, monkeypatch) as client:
        streams = client.app.state.market_streams  # type: ignore[attr-defined]
        assert streams is not None and streams.running
        svc = factory.get_trading_service()
        assert _wait(lambda: streams.feed.stats.books >= 1), "the stream fed no book"
        assert streams.feed.stats.last_ts  # books keyed by the service's venue name
        assert ("binance", "BTC/USDT") in svc._books
        prop = factory.run(svc.propose_async(OrderRequest("BTC/USDT", Side.BUY, 0.01, stop_loss=60_000.0), "alice"))
        assert prop.order is not None, prop.reasons
        done = factory.run(svc.approve(prop.order["_id"], "bob"))
        assert done.status == "executed", done.reasons
        assert [s["trigger"] for s in svc.stops("BTC/USDT")] == [60_000.0]
        depth_polls = fake.count("GET", "/api/v3/depth")
        # each move pushes a depth diff to the websocket; the paper venue holds the stop-loss as Binance would (a
        # stop-limit 1% under its trigger), and the last move triggers it within its limit
        for price in (64_000.0, 62_000.0, 59_800.0):
            fake.set_price("BTC/USDT", price)
            time.sleep(0.1)

        def fired() -> bool:
            fake.push("BTC/USDT")  # keep the stream talking: a diff lost in a resubscribe must not decide the test
            return svc.stops("BTC/USDT") == []

        assert _wait(fired), f"the stop did not fire from the stream: {streams.feed.stats} {streams.streamer.stats}"
        assert _wait(lambda: streams.feed.stats.stop_actions == 1), streams.feed.stats
        assert svc.portfolio.consolidated().get("BTC/USDT", 0.0) == pytest.approx(0.0, abs=1e-9)
        sells = [o for o in svc.store.orders.find({"request.side": "sell"})]
        assert len(sells) == 1 and sells[0]["approved_by"].startswith("stop:") and sells[0]["native_stop"]
        # the stop was found from the stream, not by polling books (the exit's own pre-trade refresh aside)
        assert fake.count("GET", "/api/v3/depth") - depth_polls <= 2
    assert not streams.running  # the app's shutdown stops the streams


def test_streams_off_by_setting(streaming_env: FakeBinance, monkeypatch: pytest.MonkeyPatch) -> None:
    with _client(False, monkeypatch) as client:
        assert client.app.state.market_streams is None  # type: ignore[attr-defined]
        time.sleep(0.3)
    assert streaming_env.ws_connections == 0
