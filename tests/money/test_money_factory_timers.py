"""The service the app and workers build from settings watches stops and reconciles on its own timers; a one-shot
CLI service and a replaced service run none."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from trading.oms import factory
from trading.risk.stops import StopKind, StopRule

# the simulated market is a function of time: read it at a fixed date
pytestmark = pytest.mark.usefixtures("one_date_clock")


def _stop_far_above_market() -> StopRule:
    # a stop-loss whose trigger is far above any simulated price fires on the first look; with no position to
    # protect the rule is spent (alert `stop_spent`) without an order
    return StopRule("t-sl", "BTC/USDT", 0.01, StopKind.STOP_LOSS, 10_000_000.0, "t")


def _wait_until(predicate: object, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_built_service_watches_stops_on_its_timer(isolated_settings: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATED_EXCHANGE", "true")
    monkeypatch.setenv("STOP_WATCH_INTERVAL_S", "0.05")
    svc = factory.get_trading_service()
    svc.add_stop(_stop_far_above_market(), "test")
    assert _wait_until(lambda: svc.stops() == [])
    assert any(a["kind"] == "stop_spent" and a["why"] == "position gone" for a in svc.alerts)
    assert svc.list_orders() == []  # nothing was proposed for a position that is not there
    factory.set_trading_service(None)  # replacing the service stops its timers
    assert svc._stop_watch_task is None and svc._reconcile_task is None


def test_one_shot_service_runs_no_timers(isolated_settings: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATED_EXCHANGE", "true")
    monkeypatch.setenv("STOP_WATCH_INTERVAL_S", "0.05")
    svc = factory.get_trading_service(timers=False)
    svc.add_stop(_stop_far_above_market(), "test")
    time.sleep(0.5)
    assert [s["_id"] for s in svc.stops()] == ["t-sl"]
    assert svc._stop_watch_task is None and svc._reconcile_task is None
