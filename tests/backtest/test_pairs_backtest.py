"""Pairs as a two-legged backtest: the spot relative-value book (inventory in both legs, never below zero), parity
of the event-driven and vectorised paths on pairs, a pinned pairs fingerprint, and a constructed pair whose trades
are known."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.backtest.conftest import dislocated_pair, ou_pair
from trading.backtest.engine import BacktestConfig, BacktestResult, run_event, run_vectorized
from trading.backtest.fills import FillModel
from trading.risk import limits_from_settings
from trading.strategies import make_strategy
from trading.strategies.base import FloatArray, Strategy

KNOWN = {"window": 100, "test": "none", "entry_z": 2.5, "exit_z": 0.5, "stop_z": 10.0}
FEE, SLIP = 0.001, 0.0005


def _same_fills(ev: BacktestResult, vec: BacktestResult) -> None:
    assert len(ev.fills) == len(vec.fills)
    np.testing.assert_array_equal(ev.fills.bar, vec.fills.bar)
    np.testing.assert_array_equal(ev.fills.asset, vec.fills.asset)
    np.testing.assert_array_equal(ev.fills.qty, vec.fills.qty)
    np.testing.assert_array_equal(ev.fills.price, vec.fills.price)
    np.testing.assert_array_equal(ev.fills.fee, vec.fills.fee)
    assert ev.fingerprint == vec.fingerprint


@pytest.fixture(scope="module")
def ou() -> Any:
    return ou_pair(3000)


@pytest.fixture(scope="module")
def ou_targets(ou: Any) -> dict[str, tuple[Strategy, FloatArray]]:
    out = {}
    for key, params in {"rolling_johansen": {"window": 120, "test": "johansen"},
                        "kalman_engle_granger": {"window": 120, "hedge": "kalman", "test": "engle_granger",
                                                 "retest_every": 250}}.items():
        s = make_strategy("pairs", params)
        out[key] = (s, s.targets(list(ou)))  # the retests are the slow part: compute once
    return out


@pytest.mark.parametrize("key", ["rolling_johansen", "kalman_engle_granger"])
@pytest.mark.parametrize("participation", [1.0, 5e-9])
def test_pairs_event_and_vectorised_paths_give_the_same_two_legged_trades(
    ou: Any, ou_targets: dict[str, tuple[Strategy, FloatArray]], key: str, participation: float
) -> None:
    s, tg = ou_targets[key]
    cfg = BacktestConfig(fill=FillModel(fee=FEE, slippage=SLIP, participation=participation))
    ev, vec = run_event(s, list(ou), cfg, targets=tg), run_vectorized(s, list(ou), cfg, targets=tg)
    _same_fills(ev, vec)
    assert ev.book["kind"] == vec.book["kind"] == "relative_value"
    # both legs trade, in both directions around the inventory, and no leg ever goes below zero (spot)
    for sym in ("ETH/USDT", "BTC/USDT"):
        sides = {t.side for t in ev.trades if t.symbol == sym}
        assert sides == {"long", "short"}, (sym, sides)
    assert np.all(ev.positions >= 0.0)
    assert ev.rejections == [] and vec.rejections == []
    assert ev.spread is not None and vec.spread is not None
    assert ev.spread["pnl"] == pytest.approx(vec.spread["pnl"], rel=1e-12)
    if participation < 1:
        assert len(ev.fills) > 2 * len(ev.trades)  # partial fills: legs took several bars to reach their targets


def test_pairs_fingerprint_pins_the_results() -> None:
    """A change here means the pairs trades changed (either path); a deliberate model change updates the pin."""
    data = list(dislocated_pair())
    s = make_strategy("pairs", KNOWN)
    cfg = BacktestConfig(fill=FillModel(fee=FEE, slippage=SLIP, participation=1.0))
    ev, vec = run_event(s, data, cfg), run_vectorized(s, data, cfg)
    assert len(ev.trades) == 4
    assert ev.fingerprint == vec.fingerprint == PINNED_PAIRS_FINGERPRINT


PINNED_PAIRS_FINGERPRINT = "33bb5bcd5fee122c81e37bd4f9561055d082436e13e8ce27d3b8a405ff61964c"


@pytest.mark.parametrize("mode", ["event", "vectorized"])
def test_a_constructed_dislocation_trades_both_legs_with_the_known_answer(mode: str) -> None:
    y, x = dislocated_pair()
    s = make_strategy("pairs", KNOWN)
    cfg = BacktestConfig(initial_cash=10_000.0, fill=FillModel(fee=FEE, slippage=SLIP, participation=1.0))
    tg = s.targets([y, x])
    # the strategy sees the dislocations at their first bar and leaves them while they decay
    changes = (np.flatnonzero(np.any(np.diff(tg, axis=0) != 0, axis=1)) + 1).tolist()
    assert changes == [300, 313, 450, 462]
    assert tg[300, 0] > 0 > tg[300, 1] and tg[450, 0] < 0 < tg[450, 1]
    res = (run_event if mode == "event" else run_vectorized)(s, [y, x], cfg)

    # the book starts with 40% of equity in each leg at the first open, 20% cash
    base = np.array([0.4 * 10_000.0 / y.open[0], 0.4 * 10_000.0 / x.open[0]])
    np.testing.assert_allclose([i["qty"] for i in res.book["inventory"]], base, rtol=1e-15)
    assert res.book["cash"] == pytest.approx(2_000.0, rel=1e-12)

    # one bar of latency: both legs fill at the open after each signal; the cheap leg is bought, the rich one sold
    rows = [(r["bar"], r["symbol"], r["side"]) for r in res.fills.to_rows(res.symbols)]
    assert rows == [(301, "BTC/USDT", "sell"), (301, "ETH/USDT", "buy"), (314, "ETH/USDT", "sell"),
                    (314, "BTC/USDT", "buy"), (451, "ETH/USDT", "sell"), (451, "BTC/USDT", "buy"),
                    (463, "BTC/USDT", "sell"), (463, "ETH/USDT", "buy")]

    # entry sizes from first principles: equity at the open of 301 (inventory + cash), tilt 0.4 x the weights
    opens = np.array([y.open[301], x.open[301]])
    equity = 2_000.0 + float(base @ opens)
    px = np.array([opens[0] * (1 + SLIP), opens[1] * (1 - SLIP)])
    want = 0.4 * tg[300] * equity / px
    np.testing.assert_allclose(res.fills.qty[[1, 0]], want, rtol=1e-12)
    # the exits return exactly to the inventory
    np.testing.assert_allclose(res.positions[320], base, rtol=1e-12)
    np.testing.assert_allclose(res.positions[-1], base, rtol=1e-12)
    assert np.all(res.positions >= 0.0)

    # per-leg round trips and their PnL, by hand from the fills (fee on each side)
    def leg_pnl(i_in: int, i_out: int) -> float:
        q_in, p_in, q_out, p_out = (res.fills.qty[i_in], res.fills.price[i_in], res.fills.qty[i_out],
                                    res.fills.price[i_out])
        assert q_in == pytest.approx(-q_out, rel=1e-12)
        return float(q_in * (p_out - p_in) - FEE * abs(q_in) * (p_in + p_out))

    expected = {("ETH/USDT", "long"): leg_pnl(1, 2), ("BTC/USDT", "short"): leg_pnl(0, 3),
                ("ETH/USDT", "short"): leg_pnl(4, 7), ("BTC/USDT", "long"): leg_pnl(5, 6)}
    got = {(t.symbol, t.side): t.pnl for t in res.trades}
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, rel=1e-9), k
    # each trade on the spread makes money net of fees, though one leg of each loses
    first = expected[("ETH/USDT", "long")] + expected[("BTC/USDT", "short")]
    second = expected[("ETH/USDT", "short")] + expected[("BTC/USDT", "long")]
    assert first > 0 and second > 0
    assert min(expected.values()) < 0
    assert res.spread is not None
    assert res.spread["pnl"] == pytest.approx(first + second, rel=1e-9)
    assert res.spread["closed_pnl"] == pytest.approx(first + second, rel=1e-9)
    # the spread PnL is exactly the equity gained over the untouched inventory
    assert res.bh_equity is not None
    assert res.equity[-1] - res.bh_equity[-1] == pytest.approx(res.spread["pnl"], rel=1e-9)
    assert res.buy_and_hold["kind"] == "untouched inventory"
    assert [leg["closed_trades"] for leg in res.spread["legs"]] == [2, 2]
    # exposure counts the bars off the inventory: 301..313 and 451..462
    assert res.metrics["exposure"] == pytest.approx((13 + 12) / 600)


def test_the_cash_book_refuses_the_short_leg_on_both_paths_and_says_so() -> None:
    data = list(dislocated_pair())
    s = make_strategy("pairs", KNOWN)
    cfg = BacktestConfig(fill=FillModel(fee=FEE, slippage=SLIP, participation=1.0), book="cash")
    ev, vec = run_event(s, data, cfg), run_vectorized(s, data, cfg)
    _same_fills(ev, vec)
    assert ev.book["kind"] == "cash" and ev.spread is None
    # only long legs trade; every short leg is refused, by the gate (event) and by the spot rule (vectorised)
    assert {t.side for t in ev.trades} == {"long"}
    refused = [(r["bar"], r["symbol"], r["side"]) for r in ev.rejections]
    assert refused == [(301, "BTC/USDT", "sell"), (451, "ETH/USDT", "sell")]
    assert [(r["bar"], r["symbol"], r["side"]) for r in vec.rejections] == refused
    assert all("no shorting" in r["reasons"][0] for r in ev.rejections + vec.rejections)


def test_the_gate_keeps_deciding_in_the_relative_value_book() -> None:
    data = list(dislocated_pair())
    s = make_strategy("pairs", KNOWN)
    fm = FillModel(fee=FEE, slippage=SLIP, participation=1.0)
    # a tilt larger than the inventory asks to sell more than is held: spot rules cap the sell at the holding
    big = BacktestConfig(fill=fm, tilt=1.0, inventory=0.2)
    ev, vec = run_event(s, data, big), run_vectorized(s, data, big)
    _same_fills(ev, vec)
    assert np.all(ev.positions >= 0.0)
    assert np.min(ev.positions[:, 1]) == 0.0  # BTC sold down to exactly zero at the first entry, never short
    # the desk's own notional cap binds in the event path (resize), which the vectorised path does not model
    desk = limits_from_settings(None, overrides={"max_order_notional": 500.0})
    capped = run_event(s, data, BacktestConfig(fill=fm, limits=desk))
    assert np.all(np.abs(capped.fills.qty * capped.fills.price) <= 500.0 * 1.0001)
    assert capped.fingerprint != run_event(s, data, BacktestConfig(fill=fm)).fingerprint


def test_book_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="inventory"):
        BacktestConfig(inventory=0.6)
    with pytest.raises(ValueError, match="tilt"):
        BacktestConfig(tilt=0.0)
    with pytest.raises(ValueError, match="book"):
        BacktestConfig(book="margin")  # type: ignore[arg-type]
    y, _ = dislocated_pair()
    with pytest.raises(ValueError, match="two symbols"):
        run_event(make_strategy("trend", {"fast": 5, "slow": 20}), y, BacktestConfig(book="relative_value"))
