"""Property tests: random sequences of intents, approvals, fills, price moves, lost replies and restarts.

After every sequence: no hard limit is breached by what was executed, no client order id was sent twice, every
order is in a known state, and every fill was recorded once (the book equals the venue's balances).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient

from tests.money.conftest import TEST_LIMITS
from tests.money.helpers import FakeClock, StaticSource
from trading.execution.algos import Algo
from trading.execution.paper import PaperExchange
from trading.oms.models import OrderState
from trading.oms.service import OrderRequest, ServiceConfig, TradingService
from trading.types import ExchangeOrder, OrderType, Side


class FlakyVenue:
    """A paper venue that records every send and sometimes loses the reply (order placed, answer lost)."""

    def __init__(self, inner: PaperExchange) -> None:
        self.inner = inner
        self.exchange_id = inner.exchange_id
        self.sent: list[str] = []
        self.lose_next = False

    def market(self, symbol: str) -> Any:
        return self.inner.market(symbol)

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> Any:
        return await self.inner.fetch_order_book(symbol, limit)

    async def create_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: float,
        price: float | None = None,
        *,
        client_order_id: str,
    ) -> ExchangeOrder:
        self.sent.append(client_order_id)
        eo = await self.inner.create_order(symbol, side, type, amount, price, client_order_id=client_order_id)
        if self.lose_next:
            self.lose_next = False
            raise ConnectionError("reply lost")
        return eo

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        return await self.inner.fetch_order_by_client_id(symbol, client_order_id)

    async def cancel_order(self, symbol: str, **kw: Any) -> ExchangeOrder:
        return await self.inner.cancel_order(symbol, **kw)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        return await self.inner.fetch_open_orders(symbol)

    async def fetch_balance(self) -> Any:
        return await self.inner.fetch_balance()


STATS = {"filled": 0, "sent": 0}
symbols = st.sampled_from(["BTC/USDT", "ETH/USDT"])
action = st.one_of(
    st.tuples(
        st.just("propose"),
        symbols,
        st.sampled_from([Side.BUY, Side.BUY, Side.SELL]),
        st.floats(0.01, 0.6),
        st.sampled_from(["market", "limit", "twap"]),
        st.floats(-0.01, 0.01),
    ),
    st.tuples(st.just("approve"), st.integers(0, 20)),
    st.tuples(st.just("double_click"), st.integers(0, 20)),
    st.tuples(st.just("reject"), st.integers(0, 20)),
    st.tuples(st.just("move"), symbols, st.floats(-0.04, 0.04)),
    st.tuples(st.just("time"), st.integers(1, 400)),
    st.tuples(st.just("lose_reply")),
    st.tuples(st.just("reconcile")),
    st.tuples(st.just("restart")),
    st.tuples(st.just("resume")),
)


def _run(client: MongoClient[dict[str, Any]], actions: list[tuple[Any, ...]]) -> None:
    db = client[f"p_{uuid.uuid4().hex[:12]}"]
    clock = FakeClock()
    mids = {"BTC/USDT": 50_000.0, "ETH/USDT": 3_000.0}
    source = StaticSource("alpha", mids=mids, size=0.2)
    paper = PaperExchange(source, balances={"USDT": 100_000.0}, slippage_bps=1.0, db=db, clock=clock)
    venue = FlakyVenue(paper)

    async def no_sleep(_s: float) -> None:
        return None

    def new() -> TradingService:
        return TradingService(
            db,
            {"alpha": venue},
            TEST_LIMITS,
            config=ServiceConfig(approval_ttl_s=600),
            initial_balances={"alpha": {"USDT": 100_000.0}},
            clock=clock,
            sleep=no_sleep,
        )

    async def scenario() -> None:
        svc = new()
        await svc.start()
        ids: list[str] = []
        for act in actions:
            kind = act[0]
            if kind == "propose":
                _, sym, side, frac, how, off = act
                mid = mids[sym]
                qty = round(frac * (20_000.0 / mid), 4)
                if qty <= 0:
                    continue
                req = OrderRequest(
                    sym,
                    side,
                    qty,
                    type=OrderType.LIMIT if how == "limit" else OrderType.MARKET,
                    limit_price=round(mid * (1 + off), 2) if how == "limit" else None,
                    algo=Algo.TWAP if how == "twap" else Algo.NONE,
                    slices=3,
                )
                res = await svc.propose_async(req, "alice")
                assert res.order is not None
                ids.append(res.order["_id"])
            elif kind in ("approve", "double_click") and ids:
                pending = [i for i in ids if db["orders"].find_one({"_id": i, "state": "pending_approval"})]
                oid = pending[act[1] % len(pending)] if pending else ids[act[1] % len(ids)]
                await svc.approve(oid, "bob")
                if kind == "double_click":
                    before = len(venue.sent)
                    again = await svc.approve(oid, "bob")
                    assert again.status in ("already_decided",)
                    assert len(venue.sent) == before
            elif kind == "reject" and ids:
                svc.reject(ids[act[1] % len(ids)], "bob")
            elif kind == "move":
                _, sym, pct = act
                mids[sym] = round(mids[sym] * (1 + pct), 2)
                min_seen[sym] = min(min_seen[sym], mids[sym])
                source.set_mid(sym, mids[sym])
                await svc.refresh_market([sym])
            elif kind == "time":
                clock.advance(act[1])
                svc.expire_due()
            elif kind == "lose_reply":
                venue.lose_next = True
            elif kind == "reconcile":
                await svc.reconcile()
            elif kind == "restart":
                svc = new()
                await svc.start()
            elif kind == "resume":
                svc.resume("admin")
        await svc.reconcile()
        await svc.reconcile()  # a reconcile's venue lookups can fill other resting orders; settle those too

        # 1. no client order id was ever sent twice
        assert len(venue.sent) == len(set(venue.sent))
        # 2. every order is in a known state; children that are at the venue agree with it
        known = {s.value for s in OrderState}
        for doc in db["orders"].find({}):
            assert doc["state"] in known
            assert doc["state"] != OrderState.PROPOSED.value
        for child in db["child_orders"].find({}):
            assert child["state"] in known
            eo = paper._orders.get(child["_id"])  # the venue's record, without advancing its matching
            if eo is not None:
                assert abs(eo.filled - child["filled"]) < 1e-9, (child, eo)
        # 3. every fill recorded once: our book equals the venue's balances
        venue_bal = {a: b.total for a, b in (await paper.fetch_balance()).items()}
        fresh = new()
        for asset, amount in venue_bal.items():
            assert fresh.portfolio.cash["alpha"].get(asset, 0.0) == pytest.approx(amount, abs=1e-6)
        # 4. no hard limit breached by executed orders
        for order in db["orders"].find({"filled_qty": {"$gt": 0}}):
            assert order["filled_qty"] <= order.get("approved_qty", order["request"]["qty"]) * (1 + 1e-9)
            px = order["avg_price"]
            assert order["filled_qty"] * px <= TEST_LIMITS.max_order_notional * 1.02
        for sym, qty in fresh.portfolio.consolidated().items():
            assert qty >= -1e-9  # never short on spot
            # every buy was checked at a price >= the lowest mid seen, so this bounds the position
            assert qty * min_seen[sym] <= TEST_LIMITS.max_position_notional * (1 + 1e-9)
        STATS["filled"] += db["orders"].count_documents({"filled_qty": {"$gt": 0}})
        STATS["sent"] += len(venue.sent)

    min_seen = dict(mids)
    asyncio.run(scenario())
    client.drop_database(db.name)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(st.lists(action, min_size=4, max_size=30))
def test_random_sequences_keep_the_invariants(
    mongo_client: MongoClient[dict[str, Any]], actions: list[tuple[Any, ...]]
) -> None:
    _run(mongo_client, actions)

    assert STATS["sent"] >= 0


def test_the_property_test_exercises_execution(mongo_client: MongoClient[dict[str, Any]]) -> None:
    """Guard against a vacuous property test: a fixed busy sequence must fill orders."""
    before = dict(STATS)
    seq: list[tuple[Any, ...]] = [
        ("propose", "BTC/USDT", Side.BUY, 0.5, "market", 0.0),
        ("approve", 0),
        ("lose_reply",),
        ("propose", "ETH/USDT", Side.BUY, 0.5, "twap", 0.0),
        ("approve", 1),
        ("restart",),
        ("propose", "BTC/USDT", Side.SELL, 0.2, "limit", 0.0),
        ("double_click", 2),
        ("move", "BTC/USDT", -0.05),
        ("reconcile",),
    ]
    _run(mongo_client, seq)
    assert STATS["filled"] - before["filled"] >= 2
