"""Money state has one source of truth (Mongo): a restart restores the desk exactly, an unknown mark is never a
loss, and two processes on one database agree about positions, cash and equity at once."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.database import Database

from tests.money.conftest import TEST_LIMITS, Desk
from tests.money.helpers import StaticSource
from trading.execution.paper import PaperExchange
from trading.oms.service import OrderRequest, TradingService
from trading.risk.gate import DeskState
from trading.types import Side

POSITION_QTY = 0.38  # 0.38 BTC at 50,000 = 19,000: 19% of a 100,000 desk


def btc(qty: float, side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest("BTC/USDT", side, qty)


async def _buy_19pct(svc: TradingService) -> None:
    prop = await svc.propose_async(btc(POSITION_QTY), "alice")
    assert prop.status == "pending_approval", prop.reasons
    res = await svc.approve(prop.order["_id"], "bob")  # type: ignore[index]
    assert res.status == "executed", res.reasons


async def test_restart_with_an_unpriced_position_never_halts_the_desk(desk: Desk) -> None:
    """The repro: after a restart the book has no marks yet. It must read `unknown`, not cash only, and neither a
    read of the risk status nor a gate check may halt the desk on it; reducing orders (stops) still pass."""
    await _buy_19pct(desk.svc)
    before = desk.svc.positions()
    assert before["equity"] == pytest.approx(100_000.0, rel=0.002)

    restarted = desk.new_service()  # a new process: nothing priced yet (start() not called)
    pos = restarted.positions()
    row = pos["positions"][0]
    assert row["qty"] == pytest.approx(POSITION_QTY) and row["mark"] is None and row["mark_state"] == "unknown"
    assert pos["equity"] is None and pos["unmarked"] == ["BTC/USDT"]
    assert "no mark for BTC/USDT" in pos["equity_state"]

    risk = restarted.risk_status()  # what GET /v1/risk (read scope) evaluates
    assert risk["desk_state"] == DeskState.ACTIVE.value, risk["desk_reason"]
    assert risk["equity"] is None and risk["metrics"]["drawdown"] is None and risk["daily_loss_pct"] is None
    view = restarted.portfolio_view()
    assert view.equity_unknown and restarted.desk_state() is DeskState.ACTIVE

    # the gate on an unknown equity: buys wait for a price, a reducing sell (a stop) passes, nothing escalates
    restarted.set_book("alpha", desk.source.books["ETH/USDT"])
    decision = restarted.check(OrderRequest("ETH/USDT", Side.BUY, 0.1))
    assert not decision.approved and any("equity unknown" in r for r in decision.reasons)
    assert decision.desk_transition is None
    assert restarted.desk_state() is DeskState.ACTIVE


async def test_start_prices_the_book_and_restores_the_desk_exactly(desk: Desk) -> None:
    await _buy_19pct(desk.svc)
    before = desk.svc.risk_status()
    restarted = desk.new_service()
    await restarted.start()  # reconciles and prices the held symbols before any request
    after = restarted.risk_status()
    assert after["desk_state"] == "active"
    assert after["equity"] == pytest.approx(before["equity"], abs=1e-6)
    assert after["peak_equity"] == pytest.approx(before["peak_equity"], abs=1e-6)
    assert after["metrics"]["gross_exposure"] == pytest.approx(before["metrics"]["gross_exposure"], abs=1e-6)
    assert restarted.positions() == desk.svc.positions()


async def test_a_real_loss_still_halts_the_desk(desk: Desk) -> None:
    """The unknown state is not a way around the limits: a priced 19% position that falls 50% halts the desk."""
    await _buy_19pct(desk.svc)
    desk.source.set_mid("BTC/USDT", 25_000.0)
    await desk.svc.refresh_market(["BTC/USDT"])
    assert desk.svc.desk_state() is DeskState.HALTED
    assert "drawdown" in str(desk.svc.store.desk_state()["reason"])


def _process(db: Database[dict[str, Any]], source: StaticSource, clock: Any) -> tuple[TradingService, PaperExchange]:
    """One desk process: its own paper venue instance and service over the shared database."""

    async def no_sleep(_s: float) -> None:
        return None

    venue = PaperExchange(source, balances={"USDT": 100_000.0}, slippage_bps=0.0, db=db, clock=clock)
    svc = TradingService(
        db, {"alpha": venue}, TEST_LIMITS, initial_balances={"alpha": {"USDT": 100_000.0}}, clock=clock, sleep=no_sleep
    )
    return svc, venue


async def test_two_processes_agree_about_money_at_once(desk: Desk) -> None:
    """The repro: the server runs, the CLI approves an order in another process. The server's positions, cash and
    equity must show the CLI's fill at once, and its paper venue the CLI's balances (so it neither overspends nor
    writes stale balances back)."""
    server, server_venue = _process(desk.db, desk.source, desk.clock)
    cli, _ = _process(desk.db, desk.source, desk.clock)
    await server.refresh_market(["BTC/USDT"])
    await _buy_19pct(server)
    assert server.positions()["positions"][0]["qty"] == pytest.approx(POSITION_QTY)

    await cli.refresh_market(["BTC/USDT"])
    prop = await cli.propose_async(btc(0.002), "alice")
    assert (await cli.approve(prop.order["_id"], "bob")).status == "executed"  # type: ignore[index]

    seen = server.positions()
    assert seen["positions"][0]["qty"] == pytest.approx(POSITION_QTY + 0.002)
    assert seen == cli.positions()
    assert server.risk_status()["equity"] == pytest.approx(cli.risk_status()["equity"], abs=1e-6)
    assert server.portfolio.quote_cash("alpha") == pytest.approx(
        (await server_venue.fetch_balance())["USDT"].total, abs=1e-6
    )
    # the server trades next on the venue as the CLI left it: its sell succeeds and both agree again
    prop = await server.propose_async(btc(0.002, Side.SELL), "alice")
    assert (await server.approve(prop.order["_id"], "bob")).status == "executed"  # type: ignore[index]
    assert cli.positions() == server.positions()
    assert (await server_venue.fetch_balance())["BTC"].total == pytest.approx(POSITION_QTY, abs=1e-9)


async def test_front_doors_say_unknown_rather_than_a_number(desk: Desk) -> None:
    from agent.slack.rendering import positions_text, risk_text

    await _buy_19pct(desk.svc)
    restarted = desk.new_service()
    pos_text = positions_text(restarted.positions())
    risk = risk_text(restarted.risk_status())
    assert "Equity: *unknown* (equity unknown: no mark for BTC/USDT)" in pos_text
    assert "equity unknown: no mark for BTC/USDT: loss limits wait for a price" in risk
    assert "daily loss" not in risk and "Desk *active*" in risk


async def test_the_fold_always_equals_a_replay_even_when_a_fill_lands_behind(desk: Desk) -> None:
    """Another process's fill can carry a lower `seq` than one already folded (it was stamped first, inserted
    later): the book then refolds, so every process computes what a restart would."""
    from trading.portfolio.book import Portfolio

    svc = desk.svc
    await _buy_19pct(svc)
    first = svc.store.fills.find_one({})
    assert first is not None
    late = {**first, "_id": "other-process:1", "qty": 0.01, "price": 40_000.0, "seq": int(first["seq"]) - 1}
    svc.store.fills.insert_one(late)
    replay = Portfolio.replay({"alpha": {"USDT": 100_000.0}}, svc.store.all_fills())
    assert svc.portfolio.consolidated_rows({}) == replay.consolidated_rows({})
    assert svc.portfolio.consolidated()["BTC/USDT"] == pytest.approx(POSITION_QTY + 0.01)


async def test_a_stop_still_sells_while_another_holding_is_unpriced(desk: Desk) -> None:
    """Stops were blocked after a restart (the false drawdown halted the desk). With ETH unpriced, a reducing BTC
    sell passes the gate; a BTC buy waits for ETH's price."""
    await _buy_19pct(desk.svc)
    prop = await desk.svc.propose_async(OrderRequest("ETH/USDT", Side.BUY, 1.0), "alice")
    assert (await desk.svc.approve(prop.order["_id"], "bob")).status == "executed"  # type: ignore[index]
    restarted = desk.new_service()
    restarted.set_book("alpha", desk.source.books["BTC/USDT"])  # BTC priced, ETH not
    sell = restarted.check(btc(POSITION_QTY / 2, Side.SELL))
    assert sell.approved, sell.reasons
    buy = restarted.check(btc(0.01))
    assert not buy.approved and any("no mark for ETH/USDT" in r for r in buy.reasons)
    assert restarted.desk_state() is DeskState.ACTIVE
