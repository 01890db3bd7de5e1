"""Paper exchange fill model, smart router, order-splitting schedules, sizing and metrics."""

from __future__ import annotations

import numpy as np
import pytest

from tests.money.helpers import StaticSource, make_book
from trading.exchanges.errors import InsufficientFunds, OrderRejected
from trading.execution.algos import iceberg, twap, volume_profile, vwap
from trading.execution.paper import PaperExchange
from trading.execution.router import VenueQuote, route
from trading.execution.venue import OrderVenue
from trading.portfolio.book import Portfolio
from trading.risk import metrics, sizing
from trading.risk.stops import StopKind, StopRule, evaluate, trailing
from trading.types import Candle, OrderType, Side


async def test_paper_market_order_walks_book_with_fees_slippage_and_partial_fill() -> None:
    src = StaticSource("alpha", mids={"BTC/USDT": 50_000.0}, size=0.1)
    paper = PaperExchange(src, balances={"USDT": 1_000_000.0}, slippage_bps=10.0)
    assert isinstance(paper, OrderVenue)
    eo = await paper.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 2.0, client_order_id="c1")
    assert eo.status == "canceled" and eo.filled == pytest.approx(1.0)  # 10 levels x 0.1: depth ran out
    top = src.books["BTC/USDT"].asks[0].price
    assert eo.fills[0].price == pytest.approx(top * 1.001)
    assert eo.average is not None and eo.average > top
    assert eo.fee_cost == pytest.approx(eo.average * eo.filled * 0.001)
    bal = await paper.fetch_balance()
    assert bal["BTC"].total == pytest.approx(1.0)
    assert bal["USDT"].total == pytest.approx(1_000_000 - eo.average * 1.0 - eo.fee_cost)
    assert bal["USDT"].used == pytest.approx(0.0)
    with pytest.raises(OrderRejected):
        await paper.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 0.1, client_order_id="c1")


async def test_paper_limit_rests_then_fills_as_maker_in_parts() -> None:
    src = StaticSource("alpha", mids={"BTC/USDT": 50_000.0}, size=0.05)
    paper = PaperExchange(src, balances={"USDT": 100_000.0}, fill_ratio=0.5)
    eo = await paper.create_order("BTC/USDT", Side.BUY, OrderType.LIMIT, 0.1, 49_900.0, client_order_id="l1")
    assert eo.status == "open" and eo.filled == 0
    assert (await paper.fetch_balance())["USDT"].used > 0
    src.set_mid("BTC/USDT", 49_880.0, size=0.05)  # one ask level at or below 49,900
    await paper.poll()
    got = await paper.fetch_order_by_client_id("BTC/USDT", "l1")
    assert got is not None and 0 < got.filled < 0.1 and got.fills[0].price == 49_900.0
    cancelled = await paper.cancel_order("BTC/USDT", client_order_id="l1")
    assert cancelled.status == "canceled"
    assert (await paper.fetch_balance())["USDT"].used == pytest.approx(0.0, abs=1e-6)


async def test_paper_refuses_what_the_balance_cannot_cover() -> None:
    paper = PaperExchange(StaticSource("alpha"), balances={"USDT": 100.0})
    with pytest.raises(InsufficientFunds):
        await paper.create_order("BTC/USDT", Side.BUY, OrderType.MARKET, 0.01, client_order_id="x")
    with pytest.raises(InsufficientFunds):
        await paper.create_order("BTC/USDT", Side.SELL, OrderType.MARKET, 0.01, client_order_id="y")


def test_router_splits_only_when_cheaper_after_fees() -> None:
    a = VenueQuote("a", make_book("BTC/USDT", 50_000.0, venue="a", size=0.5), 0.001)
    b = VenueQuote("b", make_book("BTC/USDT", 50_010.0, venue="b", size=0.5), 0.001)
    small = route(Side.BUY, 0.3, [a, b])
    assert not small.split and small.allocations[0].venue == "a"
    big = route(Side.BUY, 2.0, [a, b])
    assert big.split and {x.venue for x in big.allocations} == {"a", "b"}
    assert big.filled_qty == pytest.approx(2.0)
    assert big.total < (big.single_venue_total or float("inf"))
    # a cheaper price with a much higher fee loses
    c = VenueQuote("c", make_book("BTC/USDT", 49_990.0, venue="c", size=5.0), 0.01)
    assert route(Side.BUY, 0.3, [a, c]).allocations[0].venue == "a"
    # sells go where proceeds after fees are highest, within the venue's holdings
    sell = route(Side.SELL, 1.0, [VenueQuote("a", a.book, 0.001, max_qty=0.2), b])
    assert sum(x.qty for x in sell.allocations) == pytest.approx(1.0)
    assert all(x.qty <= 0.2 + 1e-12 for x in sell.allocations if x.venue == "a")


def test_schedules_preserve_totals_and_steps() -> None:
    t = twap(1.0, 3, 60.0, step=0.0001, min_qty=0.0001)
    assert sum(s.qty for s in t) == pytest.approx(1.0, abs=1e-4) and t[-1].offset_s == pytest.approx(40.0)
    candles = [Candle(h * 3_600_000, 1, 1, 1, 1, 10.0 if h % 24 < 12 else 30.0) for h in range(48)]
    prof = volume_profile(candles, 4)
    assert prof == pytest.approx([1 / 8, 1 / 8, 3 / 8, 3 / 8])
    v = vwap(2.0, prof, 100.0, step=0.001)
    assert [s.qty for s in v] == pytest.approx([0.25, 0.25, 0.75, 0.75])
    ice = iceberg(1.05, 0.25, step=0.01)
    assert [s.qty for s in ice] == pytest.approx([0.25, 0.25, 0.25, 0.25, 0.05])
    assert all(s.wait_for_previous for s in ice)


def test_portfolio_fold_pnl_and_fees() -> None:
    pf = Portfolio({"a": {"USDT": 10_000.0}})
    pf.apply_fill("a", "BTC/USDT", "buy", 0.1, 50_000.0, 5.0, "USDT")
    pf.apply_fill("a", "BTC/USDT", "sell", 0.05, 52_000.0, 2.6, "USDT")
    assert pf.consolidated()["BTC/USDT"] == pytest.approx(0.05)
    assert pf.quote_cash() == pytest.approx(10_000 - 5_000 - 5 + 2_600 - 2.6)
    avg = (5_000 + 5) / 0.1
    assert pf.realised() == pytest.approx((52_000 - avg) * 0.05 - 2.6)
    assert pf.unrealised({"BTC/USDT": 51_000.0}) == pytest.approx((51_000 - avg) * 0.05)


def test_sizing_and_metrics() -> None:
    assert sizing.fixed_fractional(100_000, 0.01, 50_000, 49_000) == pytest.approx(1.0)
    assert sizing.capped_kelly(0.6, 1.0, fraction=1.0, cap=0.25) == pytest.approx(0.2)
    assert sizing.capped_kelly(0.3, 1.0) == 0.0
    assert sizing.vol_target_notional(100_000, 0.2, 0.8) == pytest.approx(25_000)
    assert sizing.vol_regime_factor(0.9, 0.6) == pytest.approx(2 / 3)
    assert sizing.vol_regime_factor(0.3, 0.6) == 1.0
    highs, lows, closes = [11.0] * 20, [9.0] * 20, [10.0] * 20
    assert sizing.atr(highs, lows, closes, 14) == pytest.approx(2.0)
    rng = np.random.default_rng(1)
    r = rng.normal(0.001, 0.02, 5000)
    assert metrics.parametric_var(r, 0.95) == pytest.approx(-(0.001 - 1.645 * 0.02), rel=0.05)
    assert metrics.historical_var(r) == pytest.approx(metrics.parametric_var(r), rel=0.1)
    assert metrics.historical_es(r) > metrics.historical_var(r)
    assert metrics.parametric_es(r) > metrics.parametric_var(r)
    assert metrics.max_drawdown([100, 120, 90, 130]) == pytest.approx(0.25)
    assert metrics.sharpe(r) > 0 and metrics.sortino(r) > metrics.sharpe(r)


def test_stops_trailing_and_oco_rules() -> None:
    rule = trailing("t", "BTC/USDT", 0.1, 100.0, 0.1, "g")
    fired, rule = evaluate(rule, 120.0)
    assert not fired and rule.trigger == pytest.approx(108.0)
    fired, rule = evaluate(rule, 107.0)
    assert fired and not rule.active
    tp = StopRule("p", "BTC/USDT", 0.1, StopKind.TAKE_PROFIT, 150.0, "g")
    assert not evaluate(tp, 149.0)[0] and evaluate(tp, 150.0)[0]
