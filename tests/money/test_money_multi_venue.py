"""Smart routing across two paper venues with their own balances: a split lands only where the funds are, and
positions and balances are reported per venue."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.database import Database

from tests.money.conftest import TEST_LIMITS
from tests.money.helpers import FakeClock, StaticSource, make_book
from trading.execution.paper import PaperExchange
from trading.execution.router import affordable_qty
from trading.oms.service import OrderRequest, ServiceConfig, TradingService
from trading.types import OrderType, Side

BALANCES = {"alpha": {"USDT": 100_000.0}, "beta": {"USDT": 1_000.0}}


def two_venues(
    db: Database[dict[str, Any]], beta_usdt: float = 1_000.0
) -> tuple[TradingService, dict[str, StaticSource], dict[str, PaperExchange]]:
    balances = {"alpha": BALANCES["alpha"], "beta": {"USDT": beta_usdt}}
    clock = FakeClock()
    sources = {
        "alpha": StaticSource("alpha", mids={"BTC/USDT": 50_000.0}),
        "beta": StaticSource("beta", mids={"BTC/USDT": 49_500.0}),  # 1% cheaper, but little cash there
    }
    venues = {
        name: PaperExchange(src, balances=balances[name], slippage_bps=0.0, db=db, clock=clock)
        for name, src in sources.items()
    }

    async def no_sleep(_s: float) -> None:
        return None

    svc = TradingService(
        db, venues, TEST_LIMITS, config=ServiceConfig(), initial_balances=balances, clock=clock, sleep=no_sleep
    )
    return svc, sources, venues


def test_affordable_qty_walks_the_asks_with_fees() -> None:
    book = make_book("BTC/USDT", 100.0, spread=0.0, levels=3, size=1.0, step_pct=0.1)  # asks 100, 110, 120
    assert affordable_qty(book, 100.0 * 1.001, 0.001) == pytest.approx(1.0)
    assert affordable_qty(book, (100.0 + 55.0) * 1.001, 0.001) == pytest.approx(1.5)
    assert affordable_qty(book, 1e9, 0.001) == pytest.approx(3.0)  # depth runs out
    assert affordable_qty(book, 99.0, 0.0, limit_price=99.0) == pytest.approx(1.0)
    assert affordable_qty(book, 0.0, 0.001) == 0.0


async def test_split_lands_where_the_funds_are(mongo_db: Database[dict[str, Any]]) -> None:
    svc, sources, venues = two_venues(mongo_db)
    prop = await svc.propose_async(OrderRequest("BTC/USDT", Side.BUY, 0.3), "alice")
    assert prop.status == "pending_approval", prop.reasons
    res = await svc.approve(prop.order["_id"], "bob")  # type: ignore[index]
    assert res.status == "executed" and res.order["state"] == "filled", res.to_dict()  # type: ignore[index]
    kids = {k["venue"]: k for k in svc.store.children_of(prop.order["_id"])}  # type: ignore[index]
    assert set(kids) == {"alpha", "beta"}
    # beta gets what its 1,000 USDT pays for at its price (fees and the market-order allowance included)
    assert 0.019 <= kids["beta"]["filled"] < 0.02
    assert kids["alpha"]["filled"] == pytest.approx(0.3 - kids["beta"]["filled"])
    for name, venue in venues.items():
        bal = await venue.fetch_balance()
        assert bal["USDT"].total >= 0
        assert bal["BTC"].total == pytest.approx(kids[name]["filled"])

    book = svc.positions(by_venue=True)
    rows = {r["venue"]: r for r in book["positions"]}
    assert rows["alpha"]["qty"] == pytest.approx(kids["alpha"]["filled"])
    assert rows["beta"]["qty"] == pytest.approx(kids["beta"]["filled"])
    for name, venue in venues.items():
        bal = await venue.fetch_balance()
        assert book["cash"][name]["USDT"] == pytest.approx(bal["USDT"].total)
        assert book["cash"][name]["BTC"] == pytest.approx(bal["BTC"].total)
    consolidated = svc.positions()["positions"]
    assert len(consolidated) == 1 and consolidated[0]["qty"] == pytest.approx(0.3)

    # sells are capped by each venue's base balance: beta bids richer now but holds only its small lot
    sources["beta"].set_mid("BTC/USDT", 51_000.0)
    sell = await svc.propose_async(OrderRequest("BTC/USDT", Side.SELL, 0.25), "alice")
    done = await svc.approve(sell.order["_id"], "bob")  # type: ignore[index]
    assert done.order["state"] == "filled", done.to_dict()  # type: ignore[index]
    sold = {k["venue"]: k["filled"] for k in svc.store.children_of(sell.order["_id"])}  # type: ignore[index]
    assert sold["beta"] == pytest.approx(kids["beta"]["filled"]) and sold["alpha"] == pytest.approx(0.25 - sold["beta"])
    assert (await venues["beta"].fetch_balance())["BTC"].total == pytest.approx(0.0, abs=1e-12)


async def test_a_venue_pinned_buy_is_capped_by_that_venues_cash(mongo_db: Database[dict[str, Any]]) -> None:
    svc, _sources, venues = two_venues(mongo_db)
    prop = await svc.propose_async(OrderRequest("BTC/USDT", Side.BUY, 0.1, venue="beta"), "alice")
    # the proposal is checked against the consolidated cash; the router then asks what beta itself can pay for
    assert prop.status == "pending_approval", prop.reasons
    oid = prop.order["_id"]  # type: ignore[index]
    res = await svc.approve(oid, "bob")
    (child,) = svc.store.children_of(oid)
    assert child["venue"] == "beta" and child["state"] == "filled" and 0.019 <= child["filled"] < 0.02
    assert res.order["state"] == "cancelled"  # type: ignore[index]  # the remainder was never sent
    capped = [a for a in svc.store.audit_entries(oid) if a["kind"] == "route.capped"]
    assert capped and capped[0]["data"]["unplaced"] == pytest.approx(0.1 - child["qty"])
    assert (await venues["beta"].fetch_balance())["USDT"].total >= 0


async def test_no_venue_with_funds_sends_nothing(mongo_db: Database[dict[str, Any]]) -> None:
    svc, _sources, venues = two_venues(mongo_db, beta_usdt=0.0)
    req = OrderRequest("BTC/USDT", Side.BUY, 0.05, type=OrderType.LIMIT, limit_price=49_400.0, venue="beta")
    prop = await svc.propose_async(req, "alice")
    assert prop.status == "pending_approval", prop.reasons
    out = await svc.approve(prop.order["_id"], "bob")  # type: ignore[index]
    assert out.order["state"] == "rejected"  # type: ignore[index]
    assert "no venue has the quote balance" in " ".join(out.order["reasons"])  # type: ignore[index]
    assert svc.store.children_of(prop.order["_id"]) == []  # type: ignore[index]
    assert await venues["beta"].fetch_open_orders() == []
