"""The money path end to end on a paper venue: approvals, execution, restarts, desk states."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.database import Database

from tests.money.conftest import Desk
from tests.money.helpers import CrashAfterSend, LostReply, ProcessDied
from trading.oms.service import OrderRequest
from trading.risk.gate import DeskState
from trading.types import OrderType, Side


def btc(qty: float, side: Side = Side.BUY, **kw: Any) -> OrderRequest:
    return OrderRequest("BTC/USDT", side, qty, **kw)


async def test_propose_approve_fills_and_updates_positions(desk: Desk) -> None:
    svc = desk.svc
    prop = await svc.propose_async(btc(0.1), "alice")
    assert prop.status == "pending_approval", prop.reasons
    assert prop.order and prop.order["expires_ms"] > desk.clock()
    res = await svc.approve(prop.order["_id"], "bob")
    assert res.status == "executed"
    assert res.order and res.order["state"] == "filled"
    assert sum(f["qty"] for f in res.fills) == pytest.approx(0.1)
    assert svc.portfolio.consolidated()["BTC/USDT"] == pytest.approx(0.1)
    cash = svc.portfolio.quote_cash("alpha")
    paper_cash = (await desk.venue.fetch_balance())["USDT"].total
    assert cash == pytest.approx(paper_cash)  # our book agrees with the venue, fees included
    kinds = [a["kind"] for a in svc.store.audit_entries(prop.order["_id"])]
    assert kinds[0] == "order.proposed" and "order.approved" in kinds and "fill" in kinds


async def test_second_click_changes_nothing(desk: Desk) -> None:
    svc = desk.svc
    prop = await svc.propose_async(btc(0.1), "alice")
    oid = prop.order["_id"]  # type: ignore[index]
    first = await svc.approve(oid, "bob")
    second = await svc.approve(oid, "bob")
    third = svc.reject(oid, "carol")
    assert first.status == "executed"
    assert second.status == "already_decided" and third.status == "already_decided"
    assert len(await desk.venue.fetch_open_orders()) == 0
    assert desk.db["paper_orders"].count_documents({}) == 1  # sent exactly once
    assert svc.store.fills.count_documents({"order_id": oid}) == 1


async def test_expired_approval_cannot_execute(desk: Desk) -> None:
    svc = desk.svc
    prop = await svc.propose_async(btc(0.1), "alice")
    oid = prop.order["_id"]  # type: ignore[index]
    desk.clock.advance(svc.config.approval_ttl_s + 1)
    res = await svc.approve(oid, "bob")
    assert res.status == "expired"
    assert svc.store.get_order(oid)["state"] == "expired"  # type: ignore[index]
    assert (await svc.approve(oid, "bob")).status == "already_decided"
    assert desk.db["paper_orders"].count_documents({}) == 0
    # expire_due sweeps the rest
    p2 = await svc.propose_async(btc(0.05), "alice")
    desk.clock.advance(svc.config.approval_ttl_s + 1)
    assert svc.expire_due() == 1
    assert svc.store.get_order(p2.order["_id"])["state"] == "expired"  # type: ignore[index]


async def test_four_eyes_and_approver_list(mongo_db: Database[dict[str, Any]]) -> None:
    desk = Desk(mongo_db, four_eyes=True, approvers=frozenset({"alice", "bob"}))
    prop = await desk.svc.propose_async(btc(0.1), "alice")
    oid = prop.order["_id"]  # type: ignore[index]
    assert (await desk.svc.approve(oid, "alice")).status == "forbidden"
    assert (await desk.svc.approve(oid, "mallory")).status == "forbidden"
    assert desk.svc.store.get_order(oid)["state"] == "pending_approval"  # type: ignore[index]
    assert (await desk.svc.approve(oid, "bob")).status == "executed"


async def test_gate_reruns_at_approval(desk: Desk) -> None:
    svc = desk.svc
    prop = await svc.propose_async(btc(0.3), "alice")  # 15k: fine now
    assert prop.status == "pending_approval"
    desk.source.set_mid("BTC/USDT", 80_000.0)  # now 24k > 20k max order notional
    res = await svc.approve(prop.order["_id"], "bob")  # type: ignore[index]
    assert res.status == "rejected" and any("max_order_notional" in r for r in res.reasons)
    assert desk.db["paper_orders"].count_documents({}) == 0


async def test_restart_after_send_records_once_and_never_resends(desk: Desk) -> None:
    crashing = CrashAfterSend(desk.venue)
    svc = desk.new_service(crashing)
    prop = await svc.propose_async(btc(0.1), "alice")
    oid = prop.order["_id"]  # type: ignore[index]
    with pytest.raises(ProcessDied):
        await svc.approve(oid, "bob")
    assert crashing.creates == 1
    assert svc.store.fills.count_documents({}) == 0  # the answer was never recorded
    child = svc.store.children.find_one({"order_id": oid})
    assert child["state"] == "submitted" and not child["acked"]  # type: ignore[index]

    # restart: a new process over the same database and the same venue
    crashing.crash = False
    svc2 = desk.new_service(crashing)
    report = await svc2.start()
    assert report.updated == 1
    assert crashing.creates == 1  # never re-sent
    assert svc2.store.get_order(oid)["state"] == "filled"  # type: ignore[index]
    assert svc2.store.fills.count_documents({}) == 1
    await svc2.reconcile()  # idempotent
    svc3 = desk.new_service(crashing)
    await svc3.start()
    assert svc3.store.fills.count_documents({}) == 1
    assert svc3.portfolio.consolidated()["BTC/USDT"] == pytest.approx(0.1)
    assert crashing.creates == 1


async def test_lost_reply_becomes_unresolved_then_reconciled(desk: Desk) -> None:
    lossy = LostReply(desk.venue)
    svc = desk.new_service(lossy)
    prop = await svc.propose_async(btc(0.1), "alice")
    oid = prop.order["_id"]  # type: ignore[index]
    await svc.approve(oid, "bob")
    assert svc.store.get_order(oid)["state"] == "unresolved"  # type: ignore[index]
    assert any(a["kind"] == "order_unresolved" for a in svc.alerts)
    report = await svc.reconcile()
    assert report.updated == 1 and lossy.creates == 1
    assert svc.store.get_order(oid)["state"] == "filled"  # type: ignore[index]


async def test_unknown_outcome_not_at_venue_stays_unresolved(desk: Desk) -> None:
    class NeverArrives(LostReply):
        async def create_order(self, *a: Any, **kw: Any) -> Any:
            self.creates += 1
            raise TimeoutError("lost before reaching the venue")

    venue = NeverArrives(desk.venue)
    svc = desk.new_service(venue)
    prop = await svc.propose_async(btc(0.1), "alice")
    oid = prop.order["_id"]  # type: ignore[index]
    await svc.approve(oid, "bob")
    for _ in range(3):
        await svc.reconcile()
    assert venue.creates == 1
    assert svc.store.get_order(oid)["state"] == "unresolved"  # type: ignore[index]
    # the unresolved quantity still counts against limits (worst case)
    view = svc.portfolio_view()
    assert view.pending_buy["BTC/USDT"] == pytest.approx(0.1)
    child = svc.store.children.find_one({"order_id": oid})
    assert await svc.resolve_unresolved(child["_id"], "admin", "failed")  # type: ignore[index]
    assert svc.store.get_order(oid)["state"] == "failed"  # type: ignore[index]


async def test_mismatch_halts_symbol_and_alerts(desk: Desk) -> None:
    svc = desk.svc
    prop = await svc.propose_async(btc(0.1, type=OrderType.LIMIT, limit_price=49_000.0), "alice")
    await svc.approve(prop.order["_id"], "bob")  # type: ignore[index]
    assert svc.store.get_order(prop.order["_id"])["state"] == "submitted"  # type: ignore[index]
    # the venue loses the order it acknowledged
    desk.venue._orders.clear()
    report = await svc.reconcile()
    assert report.mismatches
    assert "BTC/USDT" in svc.store.halted_symbols()
    assert any(a["kind"] == "reconcile_mismatch" for a in svc.alerts)
    blocked = await svc.propose_async(btc(0.01), "alice")
    assert blocked.status == "rejected" and any("halted" in r for r in blocked.reasons)


async def test_resting_limit_fills_later_through_reconcile(desk: Desk) -> None:
    svc = desk.svc
    prop = await svc.propose_async(btc(0.1, type=OrderType.LIMIT, limit_price=49_500.0), "alice")
    oid = prop.order["_id"]  # type: ignore[index]
    await svc.approve(oid, "bob")
    assert svc.store.get_order(oid)["state"] == "submitted"  # type: ignore[index]
    desk.source.set_mid("BTC/USDT", 49_480.0, size=0.04)  # one ask level comes through the limit
    await svc.reconcile()
    o = svc.store.get_order(oid)
    assert o["state"] in ("partially_filled", "filled")  # type: ignore[index]
    await svc.reconcile()
    await svc.reconcile()
    o = svc.store.get_order(oid)
    assert o["state"] == "filled" and o["avg_price"] == pytest.approx(49_500.0)  # type: ignore[index]
    assert svc.store.fills.count_documents({"order_id": oid}) >= 2


async def test_halted_and_reducing_desk(desk: Desk) -> None:
    svc = desk.svc
    res = await svc.approve((await svc.propose_async(btc(0.2), "alice")).order["_id"], "bob")  # type: ignore[index]
    assert res.order["state"] == "filled"  # type: ignore[index]
    svc.halt("admin", "test")
    assert svc.desk_state() is DeskState.HALTED
    assert (await svc.propose_async(btc(0.01, side=Side.SELL), "alice")).status == "rejected"
    svc.reduce_only("admin")
    assert (await svc.propose_async(btc(0.01), "alice")).status == "rejected"
    sell = await svc.propose_async(btc(0.1, side=Side.SELL), "alice")
    assert sell.status == "pending_approval"
    # a proposal made while ACTIVE is re-checked at approval once the desk halts
    svc.resume("admin")
    p = await svc.propose_async(btc(0.01), "alice")
    svc.halt("admin")
    assert (await svc.approve(p.order["_id"], "bob")).status == "rejected"  # type: ignore[index]


async def test_drawdown_breach_moves_desk_and_resume_resets_baselines(mongo_db: Database[dict[str, Any]]) -> None:
    """Who may resume is the front door's decision (API key scope, Slack user id): see
    tests/reliability/test_reliability_authz.py. Here: a breach halts, and resume with reset_baselines re-activates."""
    desk = Desk(mongo_db)
    svc = desk.svc
    for _ in range(2):
        res = await svc.approve((await svc.propose_async(btc(0.35), "a")).order["_id"], "b")  # type: ignore[index]
        assert res.status == "executed"
    desk.source.set_mid("BTC/USDT", 36_000.0)  # 0.7 BTC loses 9.8k of 100k: > 8% drawdown
    await svc.refresh_market(["BTC/USDT"])
    assert svc.desk_state() is DeskState.HALTED
    svc.resume("root", reset_baselines=True)
    assert svc.desk_state() is DeskState.ACTIVE


async def test_kill_switch_cancels_open_orders_and_halts(desk: Desk) -> None:
    svc = desk.svc
    p1 = await svc.propose_async(btc(0.1, type=OrderType.LIMIT, limit_price=49_000.0), "alice")
    await svc.approve(p1.order["_id"], "bob")  # type: ignore[index]
    p2 = await svc.propose_async(btc(0.05), "alice")
    assert len(await desk.venue.fetch_open_orders()) == 1
    out = await svc.kill("admin", "test kill")
    assert out["cancelled_orders"] == 1 and out["cancelled_proposals"] == 1
    assert len(await desk.venue.fetch_open_orders()) == 0
    assert svc.desk_state() is DeskState.HALTED
    assert svc.store.get_order(p1.order["_id"])["state"] == "cancelled"  # type: ignore[index]
    assert svc.store.get_order(p2.order["_id"])["state"] == "cancelled"  # type: ignore[index]


async def test_twap_children_each_pass_the_gate(desk: Desk) -> None:
    from trading.execution.algos import Algo

    svc = desk.svc
    prop = await svc.propose_async(btc(0.2, algo=Algo.TWAP, slices=4, duration_s=0), "alice")
    res = await svc.approve(prop.order["_id"], "bob")  # type: ignore[index]
    assert res.order["state"] == "filled"  # type: ignore[index]
    kids = svc.store.children_of(prop.order["_id"])  # type: ignore[index]
    assert len(kids) == 4 and sum(k["qty"] for k in kids) == pytest.approx(0.2)
    assert len({k["_id"] for k in kids}) == 4
    # a halt in the middle stops the remaining slices (each child is gated)
    prop2 = await svc.propose_async(btc(0.2, algo=Algo.TWAP, slices=4, duration_s=0), "alice")
    calls = {"n": 0}
    original = svc._send_child

    async def halting_send(*a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            svc.halt("admin", "mid-algo")
        return await original(*a, **kw)

    svc._send_child = halting_send  # type: ignore[method-assign]
    res2 = await svc.approve(prop2.order["_id"], "bob")  # type: ignore[index]
    assert res2.order["state"] == "cancelled"  # type: ignore[index]
    assert res2.order["filled_qty"] == pytest.approx(0.1)  # type: ignore[index]


async def test_stop_loss_fires_once_as_reduce_only_sell(desk: Desk) -> None:
    svc = desk.svc
    prop = await svc.propose_async(btc(0.1, stop_loss=48_000.0, take_profit=55_000.0), "alice")
    await svc.approve(prop.order["_id"], "bob")  # type: ignore[index]
    assert len(svc.stops("BTC/USDT")) == 2
    assert await svc.on_price("BTC/USDT", 49_000.0) == []
    desk.source.set_mid("BTC/USDT", 47_900.0)
    await svc.refresh_market(["BTC/USDT"])
    results = await svc.on_price("BTC/USDT", 47_900.0)
    assert len(results) == 1 and results[0].order["state"] == "filled"  # type: ignore[index]
    assert await svc.on_price("BTC/USDT", 47_000.0) == []  # OCO: take-profit disarmed, stop fired once
    assert svc.portfolio.consolidated().get("BTC/USDT", 0.0) == pytest.approx(0.0, abs=1e-9)


async def test_vwap_follows_the_candle_volume_profile(desk: Desk) -> None:
    from trading.execution.algos import Algo
    from trading.types import Candle

    async def fetch_ohlcv(symbol: str, timeframe: str, since: Any, limit: int) -> list[Candle]:
        return [Candle(h * 3_600_000, 1, 1, 1, 1, 30.0 if h % 2 else 10.0) for h in range(48)]

    desk.source.fetch_ohlcv = fetch_ohlcv  # type: ignore[attr-defined]
    svc = desk.svc
    prop = await svc.propose_async(btc(0.2, algo=Algo.VWAP, slices=2, duration_s=7200), "alice")
    res = await svc.approve(prop.order["_id"], "bob")  # type: ignore[index]
    assert res.order["state"] == "filled"  # type: ignore[index]
    qtys = sorted(k["qty"] for k in svc.store.children_of(prop.order["_id"]))  # type: ignore[index]
    assert qtys == pytest.approx([0.05, 0.15])
