"""Property tests: random sequences of intents, approvals, fills, large price moves, stops, halts, lost replies
and restarts on two venues (alpha holds stop-losses itself, beta leaves them to the desk).

After every step: gross and net exposure and the order rate stay within the limits, no client order id was sent
twice, every order is in a known state, and no stop sells more than it protects. After every sequence: every fill
was recorded once (the book equals each venue's balances) and executed orders stay within what was approved.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient

from tests.money.conftest import TEST_LIMITS
from tests.money.helpers import FakeClock, StaticSource
from trading.execution.algos import Algo
from trading.execution.paper import PaperExchange
from trading.oms.models import LIVE, OrderState
from trading.oms.service import OrderRequest, ServiceConfig, TradingService
from trading.types import STOP_LIMIT, STOP_MARKET, ExchangeOrder, OrderType, Side


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

    def native_stop_kind(self, symbol: str) -> str | None:
        return self.inner.native_stop_kind(symbol)

    def native_trailing(self, symbol: str) -> bool:
        return self.inner.native_trailing(symbol)

    async def create_stop_order(
        self,
        symbol: str,
        side: Side,
        amount: float,
        trigger_price: float,
        limit_price: float | None = None,
        *,
        client_order_id: str,
        trail_pct: float | None = None,
    ) -> ExchangeOrder:
        self.sent.append(client_order_id)
        eo = await self.inner.create_stop_order(
            symbol, side, amount, trigger_price, limit_price, client_order_id=client_order_id, trail_pct=trail_pct
        )
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


STATS = {"filled": 0, "sent": 0, "stop_exits": 0, "venue_stops": 0}
ALPHA_STOPS = {"BTC/USDT": STOP_MARKET, "ETH/USDT": STOP_LIMIT}
LIMITS = replace(TEST_LIMITS, max_orders_per_minute=8)  # low enough that random sequences reach it
VENUES = ("alpha", "beta")
BETA_PREMIUM = 1.001  # beta quotes a little higher: the router has a real choice
symbols = st.sampled_from(["BTC/USDT", "ETH/USDT"])
action = st.one_of(
    st.tuples(
        st.just("propose"),
        symbols,
        st.sampled_from([Side.BUY, Side.BUY, Side.SELL]),
        st.floats(0.01, 0.6),
        st.sampled_from(["market", "limit", "twap"]),
        st.floats(-0.01, 0.01),
        st.sampled_from([None, 0.02, 0.05]),  # stop-loss distance below mid
    ),
    st.tuples(st.just("approve"), st.integers(0, 20)),
    st.tuples(st.just("double_click"), st.integers(0, 20)),
    st.tuples(st.just("reject"), st.integers(0, 20)),
    st.tuples(st.just("move"), symbols, st.floats(-0.12, 0.12), st.booleans()),
    st.tuples(st.just("time"), st.integers(1, 400)),
    st.tuples(st.just("lose_reply"), st.sampled_from(VENUES)),
    st.tuples(st.just("watch")),
    st.tuples(st.just("reconcile")),
    st.tuples(st.just("restart")),
    st.tuples(st.just("halt")),
    st.tuples(st.just("resume")),
)
KNOWN = {s.value for s in OrderState}
LIVE_STATES = {s.value for s in LIVE}


def _check_step(db: Any, venues: dict[str, FlakyVenue], min_seen: dict[str, float], svc: TradingService) -> None:
    """Invariants that must hold after every single step."""
    sent = [c for v in venues.values() for c in v.sent]
    assert len(sent) == len(set(sent)), "a client order id was sent twice"
    for doc in db["orders"].find({}):
        # every order is in a known state; nothing is left half-way (proposed, or approved but never executed)
        assert doc["state"] in KNOWN and doc["state"] not in ("proposed", "approved"), doc
    for child in db["child_orders"].find({}):
        assert child["state"] in KNOWN and child["state"] != "approved", child
    # exposure: held plus still-open buys, valued at the lowest price ever seen (each buy was checked at a price
    # at or above it), never exceeds the gross and net limits
    held = svc.portfolio.consolidated()
    pending: dict[str, float] = {}
    for doc in db["orders"].find({"state": {"$in": sorted(LIVE_STATES)}, "request.side": "buy"}):
        left = float(doc.get("approved_qty", doc["request"]["qty"])) - float(doc.get("filled_qty", 0.0))
        pending[doc["request"]["symbol"]] = pending.get(doc["request"]["symbol"], 0.0) + max(left, 0.0)
    gross = sum(abs(q) * min_seen[s] for s, q in held.items()) + sum(q * min_seen[s] for s, q in pending.items())
    net = sum(q * min_seen[s] for s, q in held.items()) + sum(q * min_seen[s] for s, q in pending.items())
    assert gross <= LIMITS.max_gross_exposure * (1 + 1e-9), (gross, held, pending)
    assert net <= LIMITS.max_net_exposure * (1 + 1e-9), (net, held, pending)
    for sym, qty in held.items():
        assert qty >= -1e-9, f"short {sym} on spot"
    # orders per minute: no 60 s window holds more child orders than the limit
    times = sorted(int(c["sent_ms"]) for c in db["child_orders"].find({"sent_ms": {"$exists": True}}))
    for i, t in enumerate(times):
        in_window = sum(1 for u in times[: i + 1] if u >= t - 60_000)
        assert in_window <= LIMITS.max_orders_per_minute, (t, times)
    # a stop never sells more than the order that armed it bought
    for parent in db["orders"].find({"request.side": "buy", "filled_qty": {"$gt": 0}}):
        exits = db["orders"].find({"source": "stop", "request.note": {"$regex": parent["_id"]}})
        sold = sum(float(e.get("filled_qty", 0.0)) for e in exits)
        assert sold <= float(parent["filled_qty"]) * (1 + 1e-9), (parent["_id"], sold)


def _run(client: MongoClient[dict[str, Any]], actions: list[tuple[Any, ...]]) -> None:
    db = client[f"p_{uuid.uuid4().hex[:12]}"]
    clock = FakeClock()
    mids = {"BTC/USDT": 50_000.0, "ETH/USDT": 3_000.0}
    sources = {
        "alpha": StaticSource("alpha", mids=mids, size=0.2),
        "beta": StaticSource("beta", mids={s: m * BETA_PREMIUM for s, m in mids.items()}, size=0.2),
    }
    papers = {
        name: PaperExchange(
            src, balances={"USDT": 50_000.0}, slippage_bps=1.0, db=db, clock=clock,
            stop_kinds=ALPHA_STOPS.get if name == "alpha" else None,
        )
        for name, src in sources.items()
    }
    venues = {name: FlakyVenue(p) for name, p in papers.items()}

    async def no_sleep(_s: float) -> None:
        return None

    def new() -> TradingService:
        return TradingService(
            db,
            dict(venues),
            LIMITS,
            config=ServiceConfig(approval_ttl_s=600, iceberg_wait_s=0.0),
            initial_balances={name: {"USDT": 50_000.0} for name in venues},
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
                _, sym, side, frac, how, off, stop = act
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
                    stop_loss=round(mid * (1 - stop), 2) if stop and side is Side.BUY else None,
                )
                res = await svc.propose_async(req, "alice")
                assert res.order is not None
                ids.append(res.order["_id"])
            elif kind in ("approve", "double_click") and ids:
                pending = [i for i in ids if db["orders"].find_one({"_id": i, "state": "pending_approval"})]
                oid = pending[act[1] % len(pending)] if pending else ids[act[1] % len(ids)]
                await svc.approve(oid, "bob")
                if kind == "double_click":
                    before = sum(len(v.sent) for v in venues.values())
                    again = await svc.approve(oid, "bob")
                    assert again.status == "already_decided"
                    assert sum(len(v.sent) for v in venues.values()) == before
            elif kind == "reject" and ids:
                svc.reject(ids[act[1] % len(ids)], "bob")
            elif kind == "move":
                _, sym, pct, _watch = act
                mids[sym] = round(mids[sym] * (1 + pct), 2)
                sources["alpha"].set_mid(sym, mids[sym])
                sources["beta"].set_mid(sym, round(mids[sym] * BETA_PREMIUM, 2))
                min_seen[sym] = min(min_seen[sym], mids[sym])
                await svc.refresh_market([sym])
                if act[3]:  # the stop watcher's timer ticks after a move (or the next move comes first)
                    await svc.watch_stops()
            elif kind == "time":
                clock.advance(act[1])
                svc.expire_due()
            elif kind == "lose_reply":
                venues[act[1]].lose_next = True
            elif kind == "watch":
                await svc.watch_stops()
            elif kind == "reconcile":
                await svc.reconcile()
            elif kind == "restart":
                svc = new()
                await svc.start()
            elif kind == "halt":
                svc.halt("admin", "property test")
            elif kind == "resume":
                svc.resume("admin")
            _check_step(db, venues, min_seen, svc)
        await svc.reconcile()
        await svc.reconcile()  # a reconcile's venue lookups can fill other resting orders; settle those too
        _check_step(db, venues, min_seen, svc)

        # children that are at a venue agree with it
        for child in db["child_orders"].find({}):
            eo = papers[child["venue"]]._orders.get(child["_id"])  # the venue's record, without matching
            if eo is not None:
                assert abs(eo.filled - child["filled"]) < 1e-9, (child, eo)
        # every fill recorded once: our book equals each venue's balances
        fresh = new()
        for name, paper in papers.items():
            for asset, bal in (await paper.fetch_balance()).items():
                assert fresh.portfolio.cash[name].get(asset, 0.0) == pytest.approx(bal.total, abs=1e-6), (name, asset)
        # executed orders stay within what was approved and the order notional limit
        for order in db["orders"].find({"filled_qty": {"$gt": 0}}):
            assert order["filled_qty"] <= order.get("approved_qty", order["request"]["qty"]) * (1 + 1e-9)
            assert order["filled_qty"] * order["avg_price"] <= LIMITS.max_order_notional * 1.02
        STATS["filled"] += len(list(db["orders"].find({"filled_qty": {"$gt": 0}}, {"_id": 1})))
        STATS["sent"] += sum(len(v.sent) for v in venues.values())
        STATS["stop_exits"] += len(list(db["orders"].find({"source": "stop", "filled_qty": {"$gt": 0}}, {"_id": 1})))
        STATS["venue_stops"] += len(list(db["orders"].find({"native_stop": {"$exists": True}}, {"_id": 1})))

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


def test_the_property_test_exercises_execution(mongo_client: MongoClient[dict[str, Any]]) -> None:
    """Guard against a vacuous property test: a fixed busy sequence must fill orders."""
    before = dict(STATS)
    seq: list[tuple[Any, ...]] = [
        ("propose", "BTC/USDT", Side.BUY, 0.5, "market", 0.0, 0.02),
        ("approve", 0),
        ("lose_reply", "alpha"),
        ("propose", "ETH/USDT", Side.BUY, 0.5, "twap", 0.0, None),
        ("approve", 1),
        ("restart",),
        ("propose", "BTC/USDT", Side.SELL, 0.2, "limit", 0.0, None),
        ("double_click", 2),
        ("move", "BTC/USDT", -0.05, False),
        ("watch",),
        ("reconcile",),
    ]
    _run(mongo_client, seq)
    assert STATS["filled"] - before["filled"] >= 3
    assert STATS["stop_exits"] - before["stop_exits"] == 1  # the stop-loss fired on the 5% drop


def test_the_property_test_exercises_venue_held_stops(mongo_client: MongoClient[dict[str, Any]]) -> None:
    """Guard: small buys route to alpha alone (cheaper), so alpha holds their stops (a stop-market for BTC, a
    stop-limit for ETH); the drops fire both through the venue, and a lost reply on one is reconciled."""
    before = dict(STATS)
    seq: list[tuple[Any, ...]] = [
        ("propose", "BTC/USDT", Side.BUY, 0.1, "market", 0.0, 0.02),
        ("approve", 0),
        ("lose_reply", "alpha"),
        ("propose", "ETH/USDT", Side.BUY, 0.1, "market", 0.0, 0.02),
        ("approve", 1),  # the buy's reply is lost: reconciliation finds it, then its stop is placed
        ("reconcile",),
        ("restart",),
        ("move", "BTC/USDT", -0.05, False),
        ("move", "ETH/USDT", -0.025, False),
        ("watch",),
        ("reconcile",),
    ]
    _run(mongo_client, seq)
    assert STATS["venue_stops"] - before["venue_stops"] == 2
    assert STATS["stop_exits"] - before["stop_exits"] == 2
