"""Stop-losses held by the venue (live ccxt against the fake Binance): placed once through the gate, reconciled by
client order id, one-cancels-other with the desk's take-profit, and taken over by the desk when a stop-limit strands
or the venue loses it. Never a second sell for one stop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.database import Database

from tests.fakes.binance_server import FakeBinance
from tests.money.conftest import TEST_LIMITS
from trading.exchanges import open_exchange
from trading.exchanges.ccxt_adapter import CcxtExchange
from trading.oms.service import OrderRequest, ServiceConfig, TradingService
from trading.types import STOP_LIMIT, STOP_MARKET, Side

STOP_LOSS_MARKET_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")


class LiveDesk:
    def __init__(self, db: Database[dict[str, Any]], fake: FakeBinance) -> None:
        self.db = db
        self.fake = fake
        self.adapters: list[CcxtExchange] = []
        self.svc = self.new_service()

    def new_service(self) -> TradingService:
        adapter = open_exchange("binance", api_url=self.fake.url, api_key="k", secret="s", timeout_ms=3000)
        assert isinstance(adapter, CcxtExchange)
        self.adapters.append(adapter)
        return TradingService(
            self.db,
            {"binance": adapter},
            TEST_LIMITS,
            config=ServiceConfig(live=True, vol_regime=False),
            initial_balances={"binance": {"USDT": 100_000.0}},
        )

    def sells(self) -> list[dict[str, Any]]:
        return [o for o in self.fake.orders.values() if o["side"] == "SELL"]

    async def buy_with_stops(self, **stops: float) -> str:
        for a in self.adapters:
            await a.load_markets()
        prop = await self.svc.propose_async(OrderRequest("BTC/USDT", Side.BUY, 0.1, **stops), "alice")
        assert prop.order is not None, prop.reasons
        res = await self.svc.approve(prop.order["_id"], "bob")
        assert res.status == "executed", res.reasons
        return str(prop.order["_id"])


@pytest.fixture()
async def live(mongo_db: Database[dict[str, Any]]) -> AsyncIterator[LiveDesk]:
    with FakeBinance() as fake:
        fake.balances = {"USDT": [100_000.0, 0.0]}
        fake.set_price("BTC/USDT", 65_000.0)
        desk = LiveDesk(mongo_db, fake)
        yield desk
        for a in desk.adapters:
            await a.close()


async def test_adapter_reads_which_stops_a_market_takes(live: LiveDesk) -> None:
    live.fake.markets["ETH/USDT"].order_types = STOP_LOSS_MARKET_TYPES
    live.fake.markets["SOL/USDT"].order_types = ("LIMIT", "MARKET")
    ex = live.adapters[0]
    await ex.load_markets()
    assert ex.native_stop_kind("BTC/USDT") == STOP_LIMIT
    assert ex.native_stop_kind("ETH/USDT") == STOP_MARKET
    assert ex.native_stop_kind("SOL/USDT") is None


async def test_adapter_stop_order_rests_then_fills_at_its_trigger(live: LiveDesk) -> None:
    live.fake.balances["BTC"] = [1.0, 0.0]
    ex = live.adapters[0]
    await ex.load_markets()
    eo = await ex.create_stop_order("BTC/USDT", Side.SELL, 0.1, 60_000.0, 59_400.0, client_order_id="cqa-t-1")
    assert eo.status == "open" and eo.filled == 0 and eo.trigger_price == pytest.approx(60_000.0)
    (venue_order,) = live.fake.orders.values()
    assert venue_order["type"] == "STOP_LOSS_LIMIT" and venue_order["stopPrice"] == "60000"
    assert live.fake.balances["BTC"] == pytest.approx([0.9, 0.1])  # the venue locked what it will sell
    live.fake.set_price("BTC/USDT", 61_000.0)
    assert (await ex.fetch_order_by_client_id("BTC/USDT", "cqa-t-1")).status == "open"  # type: ignore[union-attr]
    live.fake.set_price("BTC/USDT", 59_950.0)
    done = await ex.fetch_order_by_client_id("BTC/USDT", "cqa-t-1")
    assert done is not None and done.status == "closed" and done.filled == pytest.approx(0.1)
    with pytest.raises(Exception, match="trigger immediately"):
        await ex.create_stop_order("BTC/USDT", Side.SELL, 0.1, 65_000.0, 64_000.0, client_order_id="cqa-t-2")
    with pytest.raises(Exception, match="limit price is required"):
        await ex.create_stop_order("BTC/USDT", Side.SELL, 0.1, 50_000.0, None, client_order_id="cqa-t-3")


async def test_stop_loss_is_placed_at_the_venue_and_fills_there_once(live: LiveDesk) -> None:
    svc = live.svc
    buy_id = await live.buy_with_stops(stop_loss=60_000.0, take_profit=70_000.0)
    (venue_stop,) = live.sells()
    assert venue_stop["type"] == "STOP_LOSS_LIMIT" and float(venue_stop["stopPrice"]) == 60_000.0
    assert float(venue_stop["price"]) == pytest.approx(59_400.0)  # 1% below the trigger, on the tick
    rules = {r["kind"]: r for r in svc.stops("BTC/USDT")}
    (exit_id,) = rules["stop_loss"]["native_orders"]
    exit_order = svc.get_order(exit_id)
    assert exit_order is not None and exit_order["state"] == "submitted"
    assert exit_order["approved_by"] == f"stop:{buy_id}-sl" and exit_order["request"]["reduce_only"]
    (sl_view,) = [v for v in svc.risk_status()["stops"] if v["kind"] == "stop_loss"]
    assert sl_view["held_by"] == ["venue:binance"] and sl_view["trigger"] == 60_000.0
    assert [v["held_by"] for v in svc.stops_view() if v["kind"] == "take_profit"] == [["desk"]]
    # the venue's stop counts as a pending sell: nothing else may sell the position it holds
    refused = svc.check(OrderRequest("BTC/USDT", Side.SELL, 0.1, reduce_only=True))
    assert not refused.approved
    assert await svc.watch_stops() == []  # 65k: the desk leaves the venue's stop alone
    live.fake.set_price("BTC/USDT", 59_900.0)  # the venue triggers its stop and sells at the bid
    (seen,) = await svc.watch_stops()  # the desk learns of it from the venue
    assert seen.status == "executed" and seen.order is not None and seen.order["_id"] == exit_id
    assert svc.portfolio.consolidated().get("BTC/USDT", 0.0) == pytest.approx(0.0, abs=1e-9)
    assert svc.get_order(exit_id)["state"] == "filled"  # type: ignore[index]
    assert svc.stops() == []  # the take-profit of the group is disarmed with it
    assert len(live.sells()) == 1  # the desk never sent a second sell
    assert any(a["kind"] == "stop_fired" and a.get("native") for a in svc.alerts)
    await svc.watch_stops()
    assert len(live.sells()) == 1


async def test_take_profit_cancels_the_venue_stop_first(live: LiveDesk) -> None:
    svc = live.svc
    await live.buy_with_stops(stop_loss=60_000.0, take_profit=70_000.0)
    live.fake.set_price("BTC/USDT", 70_500.0)
    results = await svc.watch_stops()
    assert [r.status for r in results] == ["executed"]
    statuses = sorted((o["type"], o["status"]) for o in live.sells())
    assert statuses == [("MARKET", "FILLED"), ("STOP_LOSS_LIMIT", "CANCELED")]
    assert svc.portfolio.consolidated().get("BTC/USDT", 0.0) == pytest.approx(0.0, abs=1e-9)
    assert svc.stops() == []
    assert not [a for a in svc.alerts if a["kind"] == "stop_native_lost"]
    assert live.fake.balances["BTC"][1] == pytest.approx(0.0)  # nothing left locked at the venue


async def test_desk_takes_over_a_stop_limit_the_market_gapped_through(live: LiveDesk) -> None:
    svc = live.svc
    await live.buy_with_stops(stop_loss=60_000.0)
    live.fake.set_price("BTC/USDT", 55_000.0)  # triggered, but the bid is below its 59,400 limit: it rests
    (venue_stop,) = live.sells()
    assert venue_stop["isWorking"] and venue_stop["status"] == "NEW"
    results = await svc.watch_stops()
    assert [r.status for r in results] == ["executed"]
    statuses = sorted((o["type"], o["status"]) for o in live.sells())
    assert statuses == [("MARKET", "FILLED"), ("STOP_LOSS_LIMIT", "CANCELED")]
    assert svc.portfolio.consolidated().get("BTC/USDT", 0.0) == pytest.approx(0.0, abs=1e-9)
    assert svc.stops() == []


async def test_stop_market_where_the_venue_lists_it(live: LiveDesk) -> None:
    live.fake.markets["BTC/USDT"].order_types = STOP_LOSS_MARKET_TYPES
    svc = live.svc
    await live.buy_with_stops(stop_loss=60_000.0)
    (venue_stop,) = live.sells()
    assert venue_stop["type"] == "STOP_LOSS" and float(venue_stop["price"]) == 0.0
    live.fake.set_price("BTC/USDT", 52_000.0)  # a gap: a stop-market still sells
    await svc.reconcile(startup=False)
    assert venue_stop["status"] == "FILLED"
    assert svc.portfolio.consolidated().get("BTC/USDT", 0.0) == pytest.approx(0.0, abs=1e-9)
    assert svc.stops() == []
    assert len(live.sells()) == 1


async def test_restart_finds_the_venue_stop_by_client_id_and_never_resends(live: LiveDesk) -> None:
    await live.buy_with_stops(stop_loss=60_000.0)
    assert len(live.sells()) == 1
    restarted = live.new_service()  # a new process on the same database
    await live.adapters[-1].load_markets()
    report = await restarted.reconcile(startup=True)
    assert not report.mismatches and not report.errors
    assert len(live.sells()) == 1
    (rule,) = restarted.stops("BTC/USDT")
    assert len(rule["native_orders"]) == 1
    live.fake.set_price("BTC/USDT", 59_950.0)
    await restarted.reconcile(startup=False)
    assert restarted.portfolio.consolidated().get("BTC/USDT", 0.0) == pytest.approx(0.0, abs=1e-9)
    assert restarted.stops() == [] and len(live.sells()) == 1


async def test_stop_cancelled_at_the_venue_is_watched_by_the_desk_again(live: LiveDesk) -> None:
    svc = live.svc
    await live.buy_with_stops(stop_loss=60_000.0)
    (venue_stop,) = live.sells()
    await live.adapters[0].cancel_order("BTC/USDT", client_order_id=venue_stop["clientOrderId"])  # someone else
    await svc.reconcile(startup=False)
    lost = [a for a in svc.alerts if a["kind"] == "stop_native_lost"]
    assert len(lost) == 1 and lost[0]["watched"]
    (rule,) = svc.stops("BTC/USDT")
    assert rule["active"]
    live.fake.set_price("BTC/USDT", 59_000.0)
    results = await svc.watch_stops()  # the desk fires it itself, at market, through the gate
    assert [r.status for r in results] == ["executed"]
    assert svc.portfolio.consolidated().get("BTC/USDT", 0.0) == pytest.approx(0.0, abs=1e-9)


async def test_kill_switch_cancels_venue_stops_and_nothing_fires_while_halted(live: LiveDesk) -> None:
    svc = live.svc
    await live.buy_with_stops(stop_loss=60_000.0)
    await svc.kill("admin", "test kill")
    assert [o["status"] for o in live.sells()] == ["CANCELED"]
    live.fake.set_price("BTC/USDT", 59_000.0)
    results = await svc.watch_stops()
    assert [r.status for r in results] == ["blocked"]
    assert len(live.sells()) == 1
    assert svc.stops("BTC/USDT")[0]["active"]  # still armed: it fires once an admin resumes


async def test_venue_refusal_leaves_the_stop_with_the_desk(live: LiveDesk) -> None:
    svc = live.svc
    for a in live.adapters:
        await a.load_markets()
    prop = await svc.propose_async(OrderRequest("BTC/USDT", Side.BUY, 0.1, stop_loss=60_000.0), "alice")
    assert prop.order is not None
    # the buy goes through; the stop right after it is refused by the venue
    original = live.adapters[0].create_stop_order

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        live.fake.fail("/api/v3/order", 400, body='{"code":-2010,"msg":"Order would trigger immediately."}')
        return await original(*args, **kwargs)

    live.adapters[0].create_stop_order = refuse  # type: ignore[method-assign]
    res = await svc.approve(prop.order["_id"], "bob")
    assert res.status == "executed"
    assert live.sells() == []
    refused = [a for a in svc.alerts if a["kind"] == "stop_native_refused"]
    assert len(refused) == 1 and refused[0]["watched"]
    live.fake.set_price("BTC/USDT", 59_000.0)
    assert [r.status for r in await svc.watch_stops()] == ["executed"]


def test_pure_helpers_split_by_venue_and_round_the_limit_down() -> None:
    from trading.oms.native_stops import filled_by_venue, native_spec, stop_limit_price, stranded

    children = [
        {"venue": "a", "side": "buy", "filled": 0.3},
        {"venue": "b", "side": "buy", "filled": 0.2},
        {"venue": "a", "side": "buy", "filled": 0.1},
        {"venue": "c", "side": "buy", "filled": 0.0},
    ]
    assert filled_by_venue(children) == pytest.approx({"a": 0.4, "b": 0.2})
    assert stop_limit_price(60_000.0, 0.01, 0.01) == 59_400.0
    assert stop_limit_price(100.057, 0.01, 0.01) == 99.05  # 99.05643 rounded down, never up
    with pytest.raises(ValueError):
        stop_limit_price(100.0, 0.5, 0.01)
    assert native_spec("r", STOP_MARKET, 100.0, 0.01, 0.01).limit is None
    assert stranded([99.0], 98.0) and not stranded([99.0], 99.5) and not stranded([None], 1.0)


@pytest.mark.parametrize("beta_holds_stops", [True, False])
async def test_split_buy_gets_one_venue_stop_per_venue_or_none(
    mongo_db: Database[dict[str, Any]], beta_holds_stops: bool
) -> None:
    with FakeBinance() as alpha, FakeBinance() as beta:
        alpha.balances = {"USDT": [100_000.0, 0.0]}
        beta.balances = {"USDT": [2_000.0, 0.0]}  # cheaper, but little cash there: the router splits
        alpha.set_price("BTC/USDT", 65_000.0)
        beta.set_price("BTC/USDT", 64_500.0)
        if not beta_holds_stops:
            beta.markets["BTC/USDT"].order_types = ("LIMIT", "MARKET")
        adapters = {
            name: open_exchange("binance", api_url=fake.url, api_key="k", secret="s", timeout_ms=3000)
            for name, fake in (("alpha", alpha), ("beta", beta))
        }
        try:
            for a in adapters.values():
                await a.load_markets()
            svc = TradingService(
                mongo_db, adapters, TEST_LIMITS, config=ServiceConfig(live=True, vol_regime=False),
                initial_balances={"alpha": {"USDT": 100_000.0}, "beta": {"USDT": 2_000.0}},
            )
            prop = await svc.propose_async(OrderRequest("BTC/USDT", Side.BUY, 0.1, stop_loss=60_000.0), "alice")
            assert prop.order is not None, prop.reasons
            assert (await svc.approve(prop.order["_id"], "bob")).status == "executed"
            bought = {k["venue"]: k["filled"] for k in svc.store.children_of(prop.order["_id"])}
            assert set(bought) == {"alpha", "beta"}
            sells = {name: [o for o in fake.orders.values() if o["side"] == "SELL"]
                     for name, fake in (("alpha", alpha), ("beta", beta))}
            (rule,) = svc.stops("BTC/USDT")
            if beta_holds_stops:
                assert {n: float(s[0]["origQty"]) for n, s in sells.items()} == pytest.approx(bought)
                assert len(rule["native_orders"]) == 2
            else:  # one venue cannot hold its part: the desk watches the whole rule, no venue holds any of it
                assert sells == {"alpha": [], "beta": []} and not rule.get("native_orders")
        finally:
            for a in adapters.values():
                await a.close()


async def test_paper_venue_holds_stops_like_the_live_one(mongo_db: Database[dict[str, Any]]) -> None:
    from tests.money.helpers import StaticSource
    from trading.exchanges.errors import OrderRejected
    from trading.execution.paper import PaperExchange

    src = StaticSource("alpha", mids={"BTC/USDT": 50_000.0, "ETH/USDT": 3_000.0})
    kinds = {"BTC/USDT": STOP_MARKET, "ETH/USDT": STOP_LIMIT}.get
    paper = PaperExchange(src, balances={"BTC": 1.0, "ETH": 10.0}, slippage_bps=0.0, db=mongo_db, stop_kinds=kinds)
    assert paper.native_stop_kind("BTC/USDT") == STOP_MARKET
    assert PaperExchange(src, balances={}).native_stop_kind("BTC/USDT") is None  # no stop kinds: the desk watches
    with pytest.raises(OrderRejected, match="trigger immediately"):
        await paper.create_stop_order("BTC/USDT", Side.SELL, 0.5, 50_100.0, client_order_id="s0")
    with pytest.raises(OrderRejected, match="stop_limit"):
        await paper.create_stop_order("ETH/USDT", Side.SELL, 1.0, 2_900.0, client_order_id="s1")
    sm = await paper.create_stop_order("BTC/USDT", Side.SELL, 0.5, 48_000.0, client_order_id="s2")
    sl = await paper.create_stop_order("ETH/USDT", Side.SELL, 2.0, 2_900.0, 2_871.0, client_order_id="s3")
    assert sm.status == sl.status == "open" and sm.trigger_price == 48_000.0
    assert (await paper.fetch_balance())["BTC"].used == pytest.approx(0.5)  # locked while it rests
    src.set_mid("BTC/USDT", 48_500.0)
    assert (await paper.fetch_order_by_client_id("BTC/USDT", "s2")).filled == 0  # type: ignore[union-attr]
    restarted = PaperExchange(src, db=mongo_db, slippage_bps=0.0, stop_kinds=kinds)  # state comes from Mongo
    src.set_mid("BTC/USDT", 47_000.0)
    done = await restarted.fetch_order_by_client_id("BTC/USDT", "s2")
    assert done is not None and done.status == "closed" and done.filled == pytest.approx(0.5)
    assert done.average is not None and done.average < 48_000.0  # a stop-market sells at the market
    src.set_mid("ETH/USDT", 2_800.0)  # triggered, but the bid is below its limit: it rests at 2,871
    rest = await restarted.fetch_order_by_client_id("ETH/USDT", "s3")
    assert rest is not None and rest.status == "open" and rest.filled == 0
    src.set_mid("ETH/USDT", 2_880.0)
    back = await restarted.fetch_order_by_client_id("ETH/USDT", "s3")
    assert back is not None and back.status == "closed" and back.average == pytest.approx(2_871.0)


async def test_adapter_trailing_stop_trails_the_high_then_fills(live: LiveDesk) -> None:
    live.fake.balances["BTC"] = [1.0, 0.0]
    ex = live.adapters[0]
    await ex.load_markets()
    assert ex.native_trailing("BTC/USDT")
    eo = await ex.create_stop_order("BTC/USDT", Side.SELL, 0.1, 61_750.0, 61_132.5, client_order_id="cqa-tr-1",
                                    trail_pct=0.05)
    assert eo.status == "open"
    (venue_order,) = live.fake.orders.values()
    assert venue_order["trailingDelta"] == 500 and venue_order["type"] == "STOP_LOSS_LIMIT"
    live.fake.set_price("BTC/USDT", 70_000.0)
    live.fake.set_price("BTC/USDT", 66_600.0)  # above 95% of the 70k high: still resting
    assert venue_order["status"] == "NEW"
    live.fake.set_price("BTC/USDT", 66_400.0)
    done = await ex.fetch_order_by_client_id("BTC/USDT", "cqa-tr-1")
    assert done is not None and done.status == "closed" and done.average == pytest.approx(66_400.0, rel=1e-3)


async def test_trailing_stop_alone_is_held_by_the_venue(live: LiveDesk) -> None:
    svc = live.svc
    await live.buy_with_stops(trailing_stop_pct=0.05)
    (venue_stop,) = live.sells()
    assert venue_stop["trailingDelta"] == 500
    (view,) = svc.stops_view()
    assert view["kind"] == "trailing_stop" and view["held_by"] == ["venue:binance"]
    live.fake.set_price("BTC/USDT", 70_000.0)
    assert await svc.watch_stops() == []
    assert svc.stops("BTC/USDT")[0]["high_water"] == pytest.approx(70_000.0, rel=1e-3)  # the desk's view follows
    live.fake.set_price("BTC/USDT", 66_400.0)
    (seen,) = await svc.watch_stops()
    assert seen.status == "executed" and len(live.sells()) == 1
    assert svc.portfolio.consolidated().get("BTC/USDT", 0.0) == pytest.approx(0.0, abs=1e-9)
    assert svc.stops() == []


async def test_stop_loss_is_the_venue_stop_and_a_trailing_stop_that_fires_first_cancels_it(live: LiveDesk) -> None:
    svc = live.svc
    await live.buy_with_stops(stop_loss=60_000.0, trailing_stop_pct=0.05)
    (venue_stop,) = live.sells()
    assert "trailingDelta" not in venue_stop and float(venue_stop["stopPrice"]) == 60_000.0
    live.fake.set_price("BTC/USDT", 72_000.0)
    assert await svc.watch_stops() == []
    live.fake.set_price("BTC/USDT", 68_000.0)  # below 95% of 72k: the desk's trailing stop fires
    results = await svc.watch_stops()
    assert [r.status for r in results] == ["executed"]
    statuses = sorted((o["type"], o["status"]) for o in live.sells())
    assert statuses == [("MARKET", "FILLED"), ("STOP_LOSS_LIMIT", "CANCELED")]
    assert svc.stops() == []
