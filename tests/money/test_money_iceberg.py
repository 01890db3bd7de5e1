"""Iceberg orders through the service: one clip at a time, each clip gated right before it is sent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.money.conftest import Desk
from tests.money.helpers import CrashAfterSend
from trading.execution.algos import Algo
from trading.oms.service import OrderRequest
from trading.types import ExchangeOrder, OrderType, Side


class Watching(CrashAfterSend):
    """Records, at every send, how many of our orders were still open at the venue."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.crash = False
        self.open_at_send: list[int] = []
        self.on_lookup: Any = None

    async def create_order(self, symbol: str, side: Side, type: OrderType, amount: float,
                           price: float | None = None, *, client_order_id: str) -> ExchangeOrder:
        self.open_at_send.append(len(await self.inner.fetch_open_orders(symbol)))
        return await super().create_order(symbol, side, type, amount, price, client_order_id=client_order_id)

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        eo = await super().fetch_order_by_client_id(symbol, client_order_id)
        if self.on_lookup is not None and eo is not None:
            self.on_lookup(eo)
        return eo


def _iceberg(desk: Desk) -> OrderRequest:
    desk.source.set_mid("BTC/USDT", 50_000.0, size=0.06)  # a clip of 0.1 takes 0.06 now and rests 0.04
    top_ask = desk.source.books["BTC/USDT"].asks[0].price
    return OrderRequest("BTC/USDT", Side.BUY, 0.25, type=OrderType.LIMIT, limit_price=top_ask,
                        algo=Algo.ICEBERG, display_qty=0.1)


async def test_iceberg_sends_one_gated_clip_at_a_time(desk: Desk) -> None:
    venue = Watching(desk.venue)
    svc = desk.new_service(venue)
    gated: list[float] = []
    original = svc.check

    def counting_check(request: OrderRequest, **kw: Any) -> Any:
        decision = original(request, **kw)
        if kw.get("qty") is not None:  # a child's check right before its send
            gated.append(kw["qty"])
        return decision

    svc.check = counting_check  # type: ignore[method-assign]
    prop = await svc.propose_async(_iceberg(desk), "alice")
    assert prop.status == "pending_approval", prop.reasons
    res = await svc.approve(prop.order["_id"], "bob")  # type: ignore[index]
    assert res.order["state"] == "filled", res.to_dict()  # type: ignore[index]
    assert res.order["filled_qty"] == pytest.approx(0.25)  # type: ignore[index]
    kids = sorted(svc.store.children_of(prop.order["_id"]), key=lambda k: k["seq"])  # type: ignore[index]
    assert [k["qty"] for k in kids] == pytest.approx([0.1, 0.1, 0.05])
    assert all(k["state"] == "filled" for k in kids)
    # the first clip rested (taken in two fills), so the next one really had to wait for it
    assert len([f for f in res.fills if f["client_order_id"] == kids[0]["_id"]]) == 2
    assert venue.open_at_send == [0, 0, 0]  # each clip shows only after the previous one is done
    assert gated == pytest.approx([0.1, 0.1, 0.05])  # every clip passed the gate itself
    assert sum(f["qty"] for f in res.fills) == pytest.approx(0.25)
    assert svc.portfolio.consolidated()["BTC/USDT"] == pytest.approx(0.25)


async def test_a_halt_between_clips_stops_the_rest(desk: Desk) -> None:
    venue = Watching(desk.venue)
    svc = desk.new_service(venue)

    def halt_when_filled(eo: ExchangeOrder) -> None:
        if eo.status == "closed":
            svc.halt("admin", "halt between clips")

    venue.on_lookup = halt_when_filled
    prop = await svc.propose_async(_iceberg(desk), "alice")
    res = await svc.approve(prop.order["_id"], "bob")  # type: ignore[index]
    kids = svc.store.children_of(prop.order["_id"])  # type: ignore[index]
    assert len(kids) == 1 and kids[0]["filled"] == pytest.approx(0.1)
    assert res.order["state"] == "cancelled" and res.order["filled_qty"] == pytest.approx(0.1)  # type: ignore[index]
    audit = svc.store.audit_entries(prop.order["_id"])  # type: ignore[index]
    rejected = [a for a in audit if a["kind"] == "child.gate_rejected"]
    assert rejected and "HALTED" in " ".join(rejected[0]["data"]["reasons"])
    assert venue.creates == 1
