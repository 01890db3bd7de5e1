"""The desk watches armed stops itself (polling the venues' books), and the reconcile timer leaves alone what
another desk process may be doing right now."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo.database import Database

from tests.money.conftest import TEST_LIMITS, Desk
from tests.money.helpers import CrashAfterSend, ProcessDied
from trading.oms.service import RECONCILE_GRACE_MS, OrderRequest, TradingService
from trading.types import Side


def btc(qty: float, **kw: Any) -> OrderRequest:
    return OrderRequest("BTC/USDT", Side.BUY, qty, **kw)


async def _bought_with_stops(desk: Desk, **stops: float) -> str:
    prop = await desk.svc.propose_async(btc(0.1, **stops), "alice")
    res = await desk.svc.approve(prop.order["_id"], "bob")  # type: ignore[index]
    assert res.status == "executed", res.reasons
    return str(prop.order["_id"])  # type: ignore[index]


async def test_watch_fires_stop_loss_at_the_bid_once(desk: Desk) -> None:
    svc = desk.svc
    await _bought_with_stops(desk, stop_loss=48_000.0, take_profit=55_000.0)
    assert await svc.watch_stops() == []  # 50k: nothing to do
    desk.source.set_mid("BTC/USDT", 47_800.0)
    results = await svc.watch_stops()
    assert len(results) == 1 and results[0].order is not None
    sell = results[0].order
    assert sell["request"]["side"] == "sell" and sell["state"] == "filled"
    assert sell["approved_by"].startswith("stop:")
    assert svc.portfolio.consolidated().get("BTC/USDT", 0.0) == pytest.approx(0.0, abs=1e-9)
    assert svc.stops() == []  # the take-profit of the same group is disarmed
    assert await svc.watch_stops() == []


async def test_trailing_stop_follows_the_bid_up_then_fires(desk: Desk) -> None:
    svc = desk.svc
    await _bought_with_stops(desk, trailing_stop_pct=0.05)
    desk.source.set_mid("BTC/USDT", 60_000.0)
    assert await svc.watch_stops() == []
    (rule,) = svc.stops("BTC/USDT")
    assert rule["trigger"] > 50_000.0 * 0.95  # raised with the high-water mark
    desk.source.set_mid("BTC/USDT", 56_500.0)  # below 95% of the ~60k high
    fired = await svc.watch_stops()
    assert len(fired) == 1 and fired[0].order["state"] == "filled"  # type: ignore[index]


async def test_no_fresh_price_alerts_once_and_never_fires(desk: Desk) -> None:
    svc = desk.svc
    await _bought_with_stops(desk, stop_loss=48_000.0)
    book = desk.source.books.pop("BTC/USDT")  # the venue stops answering for this symbol
    desk.clock.advance(svc.config.market_max_age_ms / 1000 + 1)  # the last book goes stale
    assert await svc.watch_stops() == []
    assert await svc.watch_stops() == []
    assert [a["kind"] for a in svc.alerts].count("stop_unwatched") == 1
    desk.source.books["BTC/USDT"] = book
    desk.source.set_mid("BTC/USDT", 47_000.0)
    assert len(await svc.watch_stops()) == 1


async def test_started_service_watches_stops_on_its_own(mongo_db: Database[dict[str, Any]]) -> None:
    desk = Desk(mongo_db)
    svc = TradingService(
        mongo_db, {"alpha": desk.venue}, TEST_LIMITS, config=desk.config,
        initial_balances={"alpha": {"USDT": 100_000.0}}, clock=desk.clock,
    )
    desk.svc = svc
    await _bought_with_stops(desk, stop_loss=48_000.0)
    await svc.start(stop_watch_interval_s=0.01)
    try:
        desk.source.set_mid("BTC/USDT", 47_500.0)
        for _ in range(300):
            if not svc.stops():
                break
            await asyncio.sleep(0.01)
        assert svc.stops() == []
        assert svc.portfolio.consolidated().get("BTC/USDT", 0.0) == pytest.approx(0.0, abs=1e-9)
    finally:
        await svc.stop()
    assert svc._stop_watch_task is None and svc._reconcile_task is None


async def test_timer_reconcile_leaves_recent_sends_to_their_sender(desk: Desk) -> None:
    crashing = CrashAfterSend(desk.venue)
    sender = desk.new_service(crashing)
    prop = await sender.propose_async(btc(0.1), "alice")
    oid = prop.order["_id"]  # type: ignore[index]
    with pytest.raises(ProcessDied):
        await sender.approve(oid, "bob")  # sent; the answer is not recorded yet
    other = desk.new_service(desk.venue)  # another desk process on the same database
    report = await other.reconcile(startup=False)
    assert report.checked == 0 and report.updated == 0
    assert other.store.get_order(oid)["state"] == "submitted"  # type: ignore[index]
    # past the grace period the timer settles it from the venue, once
    desk.clock.advance(RECONCILE_GRACE_MS / 1000 + 1)
    report = await other.reconcile(startup=False)
    assert report.updated == 1
    (child,) = other.store.children_of(oid)
    assert child["state"] == "filled" and other.store.fills.count_documents({"order_id": oid}) == 1
    # the parent's plan may still be running in its own process: only a startup reconcile concludes it
    assert other.store.get_order(oid)["state"] == "partially_filled"  # type: ignore[index]
    await other.reconcile()
    assert other.store.get_order(oid)["state"] == "filled"  # type: ignore[index]
    assert crashing.creates == 1 and other.store.fills.count_documents({"order_id": oid}) == 1
