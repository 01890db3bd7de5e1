"""The desk watches armed stops itself (polling the venues' books), and the reconcile timer leaves alone what
another desk process may be doing right now."""

from __future__ import annotations

import asyncio
from dataclasses import replace
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


async def test_stop_blocked_by_a_halted_desk_stays_armed_and_fires_after_resume(desk: Desk) -> None:
    svc = desk.svc
    await _bought_with_stops(desk, stop_loss=48_000.0, take_profit=55_000.0)
    svc.halt("admin", "incident")
    desk.source.set_mid("BTC/USDT", 47_500.0)
    for _ in range(3):
        (blocked,) = await svc.watch_stops()
        assert blocked.status == "blocked" and any("HALTED" in r for r in blocked.reasons)
    assert [a["kind"] for a in svc.alerts].count("stop_blocked") == 1  # one alert per blocked episode
    assert {s["_id"].split("-")[-1] for s in svc.stops()} == {"sl", "tp"}  # still armed, OCO partner too
    assert svc.portfolio.consolidated()["BTC/USDT"] == pytest.approx(0.1)
    svc.resume("admin")
    (fired,) = await svc.watch_stops()
    assert fired.status == "executed" and fired.order["state"] == "filled"  # type: ignore[index]
    assert svc.portfolio.consolidated().get("BTC/USDT", 0.0) == pytest.approx(0.0, abs=1e-9)
    assert svc.stops() == [] and await svc.watch_stops() == []


async def test_stop_without_a_fresh_book_or_under_the_rate_limit_stays_armed(desk: Desk) -> None:
    svc = desk.svc
    await _bought_with_stops(desk, stop_loss=48_000.0)
    desk.clock.advance(svc.config.market_max_age_ms / 1000 + 1)  # the book the service holds goes stale
    (blocked,) = await svc.on_price("BTC/USDT", 47_000.0)
    assert blocked.status == "blocked" and "no fresh order book" in blocked.reasons[0]
    assert len(svc.stops()) == 1
    # the price recovers: that episode ends; a new one alerts again
    await svc.refresh_market(["BTC/USDT"])
    assert await svc.on_price("BTC/USDT", 49_000.0) == []
    limits = svc.limits
    svc.limits = replace(limits, max_orders_per_minute=1)  # the buy's child used the only slot
    (rate,) = await svc.on_price("BTC/USDT", 47_000.0)
    assert rate.status == "blocked" and any("order rate" in r for r in rate.reasons)
    assert [a["kind"] for a in svc.alerts].count("stop_blocked") == 2
    svc.limits = limits
    desk.source.set_mid("BTC/USDT", 47_000.0)
    await svc.refresh_market(["BTC/USDT"])
    (fired,) = await svc.on_price("BTC/USDT", 47_000.0)
    assert fired.status == "executed" and svc.stops() == []


async def test_two_watchers_never_fire_one_stop_twice(mongo_db: Database[dict[str, Any]]) -> None:
    desk = Desk(mongo_db)
    await _bought_with_stops(desk, stop_loss=48_000.0)
    other = desk.new_service()  # a second desk process on the same database and venue
    seen: list[list[Any]] = []

    class RacingVenue(CrashAfterSend):
        async def create_order(self, *a: Any, **kw: Any) -> Any:
            # while this process's exit is on its way, the other watcher sees the same price
            seen.append(await other.on_price("BTC/USDT", 47_500.0))
            return await self.inner.create_order(*a, **kw)

    racing = RacingVenue(desk.venue)
    racing.crash = False
    first = desk.new_service(racing)
    desk.source.set_mid("BTC/USDT", 47_500.0)
    await other.refresh_market(["BTC/USDT"])
    fired = await first.watch_stops()
    assert [r.status for r in fired] == ["executed"]
    assert seen == [[]]  # the rule was claimed: the other watcher did nothing
    assert len(list(mongo_db["orders"].find({"source": "stop"}))) == 1
    assert await other.on_price("BTC/USDT", 47_000.0) == []  # spent
    assert desk.new_service().portfolio.consolidated().get("BTC/USDT", 0.0) == pytest.approx(0.0, abs=1e-9)
