"""Every proposal ends in a decision: extreme prices are refused with a reason, a failing risk check is a recorded
refusal (never an order stuck in `proposed` or `pending_approval`), exit levels must sit on the right side of the
market, and the approval reply states the order's real state."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.database import Database

from tests.money.conftest import Desk
from trading.oms.service import OrderRequest, TradingError, TradingService
from trading.risk.gate import Decision
from trading.types import OrderType, Side

MID = 50_000.0  # the static source's BTC/USDT mid


def btc(qty: float, side: Side = Side.BUY, **kw: Any) -> OrderRequest:
    return OrderRequest("BTC/USDT", side, qty, **kw)


@pytest.mark.parametrize("price", [1e308, 0.001, 1e-300])
async def test_extreme_limit_prices_end_in_a_recorded_refusal(desk: Desk, price: float) -> None:
    res = await desk.svc.propose_async(btc(0.01, type=OrderType.LIMIT, limit_price=price), "alice")
    assert res.status == "rejected" and res.reasons, res
    assert any("limit price" in r for r in res.reasons), res.reasons
    assert res.order is not None and desk.svc.store.get_order(res.order["_id"])["state"] == "rejected"  # type: ignore[index]
    assert desk.db["orders"].count_documents({"state": "proposed"}) == 0


@pytest.mark.parametrize("field,value", [("qty", float("inf")), ("qty", float("nan")), ("limit_price", float("inf")),
                                         ("stop_loss", -1.0), ("trailing_stop_pct", 1.5)])
async def test_non_finite_or_out_of_range_numbers_are_refused_before_anything_is_recorded(
    desk: Desk, field: str, value: float
) -> None:
    kw: dict[str, Any] = {"type": OrderType.LIMIT, "limit_price": MID} if field == "limit_price" else {}
    kw[field] = value
    req = OrderRequest("BTC/USDT", Side.BUY, kw.pop("qty", 0.01), **kw)
    with pytest.raises(TradingError, match=field):
        await desk.svc.propose_async(req, "alice")
    assert desk.db["orders"].count_documents({}) == 0


class _BrokenCheck(TradingService):
    """A risk check that fails unexpectedly (a bug, a broken input): the service must still decide."""

    broken = False

    def check(self, request: OrderRequest, **kw: Any) -> Decision:
        if self.broken:
            raise RuntimeError("simulated failure inside the risk check")
        return super().check(request, **kw)


def _broken_desk(mongo_db: Database[dict[str, Any]]) -> tuple[Desk, _BrokenCheck]:
    desk = Desk(mongo_db)
    svc = _BrokenCheck(
        desk.db, {"alpha": desk.venue}, desk.svc.limits, config=desk.config,
        initial_balances={"alpha": {"USDT": 100_000.0}}, clock=desk.clock,
    )  # fmt: skip
    return desk, svc


async def test_a_failing_risk_check_at_proposal_is_a_recorded_refusal(mongo_db: Database[dict[str, Any]]) -> None:
    desk, svc = _broken_desk(mongo_db)
    svc.broken = True
    res = await svc.propose_async(btc(0.01), "alice")
    assert res.status == "rejected"
    assert res.reasons and "risk check failed" in res.reasons[0] and "RuntimeError" in res.reasons[0]
    doc = svc.store.get_order(res.order["_id"])  # type: ignore[index]
    assert doc is not None and doc["state"] == "rejected" and doc["reasons"] == res.reasons
    assert desk.db["orders"].count_documents({"state": "proposed"}) == 0


async def test_a_failing_risk_check_at_approval_rejects_instead_of_leaving_it_pending(
    mongo_db: Database[dict[str, Any]],
) -> None:
    desk, svc = _broken_desk(mongo_db)
    prop = await svc.propose_async(btc(0.01), "alice")
    assert prop.status == "pending_approval", prop.reasons
    svc.broken = True
    res = await svc.approve(prop.order["_id"], "bob")  # type: ignore[index]
    assert res.status == "rejected" and "risk check failed" in res.reasons[0]
    assert svc.store.get_order(prop.order["_id"])["state"] == "rejected"  # type: ignore[index]
    assert desk.db["paper_orders"].count_documents({}) == 0


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"stop_loss": MID * 1.2}, "stop_loss"),  # a buy's stop far above the market would sell at once
        ({"take_profit": MID * 0.8}, "take_profit"),
        ({"stop_loss": 45_000.0, "take_profit": 44_000.0}, "take_profit"),
        ({"type": OrderType.LIMIT, "limit_price": 49_500.0, "stop_loss": 49_800.0}, "limit price"),
    ],
)
async def test_exit_levels_on_the_wrong_side_are_refused(desk: Desk, kw: dict[str, Any], needle: str) -> None:
    res = await desk.svc.propose_async(btc(0.01, **kw), "alice")
    assert res.status == "rejected", res
    assert any(needle in r for r in res.reasons), res.reasons


async def test_exit_levels_on_a_sell_are_refused(desk: Desk) -> None:
    await desk.svc.approve((await desk.svc.propose_async(btc(0.02), "alice")).order["_id"], "bob")  # type: ignore[index]
    res = await desk.svc.propose_async(btc(0.01, Side.SELL, stop_loss=40_000.0), "alice")
    assert res.status == "rejected" and any("protect a buy" in r for r in res.reasons), res.reasons


async def test_exit_levels_on_the_right_side_pass(desk: Desk) -> None:
    res = await desk.svc.propose_async(btc(0.01, stop_loss=45_000.0, take_profit=60_000.0), "alice")
    assert res.status == "pending_approval", res.reasons


async def test_approving_a_resting_limit_order_says_submitted_not_executed(desk: Desk) -> None:
    prop = await desk.svc.propose_async(btc(0.01, type=OrderType.LIMIT, limit_price=49_000.0), "alice")
    assert prop.status == "pending_approval", prop.reasons
    res = await desk.svc.approve(prop.order["_id"], "bob")  # type: ignore[index]
    assert res.order is not None and res.order["state"] == "submitted"
    assert res.status == "submitted"


async def test_a_proposal_orphaned_before_its_decision_is_refused_by_the_sweep(desk: Desk) -> None:
    """A process that died between recording a proposal and checking it leaves `proposed`: the sweep refuses it."""
    now = desk.clock()
    for oid, age_ms in (("orphan-old", 120_000), ("in-flight", 1_000)):
        desk.svc.store.insert_order({
            "_id": oid, "state": "proposed", "request": btc(0.01).to_doc(), "requester": "alice", "source": "api",
            "created_ms": now - age_ms, "updated_ms": now - age_ms, "version": 0, "child_seq": 0,
            "filled_qty": 0.0, "avg_price": None, "fee_quote": 0.0,
        })  # fmt: skip
    assert desk.svc.expire_due() == 1
    old = desk.svc.store.get_order("orphan-old")
    assert old is not None and old["state"] == "rejected" and "no risk decision" in old["reasons"][0]
    assert desk.svc.store.get_order("in-flight")["state"] == "proposed"  # type: ignore[index]
