"""Event-driven vs vectorised parity, the pinned fingerprint, fills, the risk gate in the loop, metrics, search."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.backtest.conftest import wave_bars
from trading.backtest.engine import BacktestConfig, run_event, run_vectorized
from trading.backtest.fills import FillModel
from trading.backtest.ledger import closed_trades, fingerprint
from trading.backtest.metrics import drawdown, equity_metrics, periods_per_year
from trading.backtest.search import grid_search, optuna_search, param_grid, walk_forward
from trading.risk import limits_from_settings
from trading.strategies import Bars, MACrossover, make_strategy

SINGLE = {
    "ma_crossover": {"fast": 10, "slow": 40},
    "donchian": {"entry": 30, "exit": 10},
    "ts_momentum": {"lookback": 48, "vol_lookback": 24, "band": 0.1},
    "zscore": {"window": 30, "entry_z": 1.5, "exit_z": 0.0},
    "rsi": {"period": 14},
}


@pytest.mark.parametrize("name", sorted(SINGLE))
@pytest.mark.parametrize("participation", [1.0, 1e-7])
def test_event_and_vectorised_paths_give_the_same_trades(name: str, participation: float) -> None:
    # participation 1e-7 of ~1e9 volume = ~100 units per bar: orders fill over several bars
    b = wave_bars(3000)
    cfg = BacktestConfig(fill=FillModel(fee=0.001, slippage=0.0005, participation=participation))
    s = make_strategy(name, SINGLE[name])
    ev, vec = run_event(s, b, cfg), run_vectorized(s, b, cfg)
    assert len(ev.trades) > 5
    assert len(ev.fills) == len(vec.fills)
    np.testing.assert_array_equal(ev.fills.bar, vec.fills.bar)
    np.testing.assert_array_equal(ev.fills.qty, vec.fills.qty)
    np.testing.assert_array_equal(ev.fills.price, vec.fills.price)
    np.testing.assert_array_equal(ev.fills.fee, vec.fills.fee)
    assert ev.fingerprint == vec.fingerprint
    assert ev.rejections == []
    if participation < 1:
        # partial fills: some targets took more than one bar to reach
        assert len(ev.fills) > 2 * len(ev.trades)


def test_fingerprint_pins_the_results() -> None:
    """A change here means the trades changed: a speed-up must not move it; a deliberate model change updates it."""
    b = wave_bars(3000)
    cfg = BacktestConfig(fill=FillModel(fee=0.001, slippage=0.0005, participation=0.5))
    res = run_event(MACrossover(fast=10, slow=40), b, cfg)
    assert len(res.trades) == PINNED_TRADES
    assert res.fingerprint == PINNED_FINGERPRINT
    # and any change to one trade changes it
    t = res.trades
    bumped = [*t[:-1], type(t[-1])(**{**t[-1].__dict__, "pnl": t[-1].pnl + 0.01})]
    assert fingerprint(bumped) != res.fingerprint


PINNED_TRADES = 37
PINNED_FINGERPRINT = "3fcd3d5bb39bfdbf76f685a9c4ea93a981feae6cc2a423a6fe2900af0f7764e1"


def test_a_single_crossover_gives_the_exact_trade() -> None:
    close = np.concatenate([np.full(20, 100.0), 110.0 + np.arange(10.0), np.full(10, 90.0)])
    open_ = close.copy()
    open_[21] = 111.0  # the fill bar's open differs from the signal bar's close
    b = Bars(np.arange(40, dtype=np.int64) * 3_600_000, open_, np.maximum(open_, close), np.minimum(open_, close),
             close, np.full(40, 1e9), "BTC/USDT")
    fee, slip = 0.001, 0.001
    cfg = BacktestConfig(initial_cash=10_000.0, fill=FillModel(fee=fee, slippage=slip, participation=1.0))
    res = run_event(MACrossover(fast=2, slow=5), b, cfg)
    # signal at the close of bar 20 (fast 105 > slow 102) -> buy at the open of bar 21; out at bar 30 -> sell at 31
    assert res.fills.bar.tolist() == [21, 31]
    p_buy = 111.0 * (1 + slip)
    qty = 10_000.0 / (p_buy * (1 + fee))  # all in, fee included: the gate's cash cap
    assert res.fills.qty[0] == pytest.approx(qty, rel=1e-12)
    assert res.fills.price.tolist() == pytest.approx([p_buy, 90.0 * (1 - slip)], rel=1e-12)
    (trade,) = res.trades
    expected = qty * 90.0 * (1 - slip) * (1 - fee) - 10_000.0
    assert trade.pnl == pytest.approx(expected, rel=1e-9)
    assert res.metrics["final_equity"] == pytest.approx(10_000.0 + expected, rel=1e-9)
    assert res.metrics["fees"] == pytest.approx(qty * p_buy * fee + qty * 90.0 * (1 - slip) * fee, rel=1e-9)
    assert res.metrics["trades"] == 1 and res.metrics["win_rate"] == 0.0
    # buy and hold is bought like the strategy: at the open after the first close, fee included
    assert res.buy_and_hold["total_return"] == pytest.approx(90.0 / (100.0 * (1 + fee)) - 1.0, rel=1e-9)


def test_the_real_gate_binds_in_the_event_path_only() -> None:
    b = wave_bars(3000)
    fm = FillModel(fee=0.001, slippage=0.0005, participation=1.0)
    s = MACrossover(fast=10, slow=40)
    # desk limits: orders above 2,000 USDT are resized down by the gate
    desk = limits_from_settings(None, overrides={"max_order_notional": 2_000.0})
    ev = run_event(s, b, BacktestConfig(fill=fm, limits=desk))
    vec = run_vectorized(s, b, BacktestConfig(fill=fm))
    assert np.all(np.abs(ev.fills.qty * ev.fills.price) <= 2_000.0 * 1.0001)
    assert ev.fingerprint != vec.fingerprint
    # a symbol off the allowlist is rejected with the gate's reason, and nothing trades
    off = run_event(s, wave_bars(500, symbol="SCAM/USDT"), BacktestConfig(fill=fm, limits=desk))
    assert len(off.fills) == 0 and off.rejections
    assert "allowlist" in off.rejections[0]["reasons"][0]
    # spot: the gate never lets a short through; a -1 target ends up exactly like the long/flat strategy
    shorty = MACrossover(fast=10, slow=40, allow_short=True)
    ev2 = run_event(shorty, b, BacktestConfig(fill=fm))
    assert np.all(ev2.positions >= -1e-12)
    assert ev2.fingerprint == run_event(s, b, BacktestConfig(fill=fm)).fingerprint
    flat_then_short = np.concatenate([np.full(30, 100.0), np.linspace(100, 80, 30)])
    ev3 = run_event(shorty, Bars.from_close(flat_then_short, "BTC/USDT"), BacktestConfig(fill=fm))
    assert len(ev3.fills) == 0
    assert any("no shorting" in " ".join(r["reasons"]) for r in ev3.rejections)


def test_drawdown_breaker_halts_the_run() -> None:
    up = np.linspace(100, 120, 60)
    crash = np.linspace(120, 60, 60)
    wiggle = 60 + 5 * np.sin(np.arange(200) / 3.0)
    b = Bars.from_close(np.concatenate([up, crash, wiggle]), "BTC/USDT")
    fm = FillModel(fee=0.0, slippage=0.0, participation=1.0)
    s = MACrossover(fast=2, slow=10)
    free = run_event(s, b, BacktestConfig(fill=fm, breakers=False))
    halted = run_event(s, b, BacktestConfig(fill=fm, breakers=True))
    assert free.halted_at_bar is None
    assert halted.halted_at_bar is not None
    assert len(halted.fills) < len(free.fills)
    reasons = " ".join(" ".join(r["reasons"]) for r in halted.rejections)
    assert "daily loss" in reasons or "drawdown" in reasons
    assert not free.rejections


def test_metrics_on_a_known_equity_curve() -> None:
    eq = np.array([100.0, 110.0, 99.0, 121.0, 121.0])
    m = equity_metrics(eq, ppy=4.0)
    assert m["total_return"] == pytest.approx(0.21)
    assert m["annual_return"] == pytest.approx(0.21)  # 4 returns at 4 per year = one year
    assert m["max_drawdown"] == pytest.approx(0.1)
    rets = np.array([0.1, -0.1, 121 / 99 - 1, 0.0])
    assert m["sharpe"] == pytest.approx(rets.mean() / rets.std(ddof=1) * 2.0)
    downside = np.minimum(rets, 0)
    assert m["sortino"] == pytest.approx(rets.mean() / math.sqrt(np.mean(downside**2)) * 2.0)
    assert m["calmar"] == pytest.approx(0.21 / 0.1)
    _, mdd, dur = drawdown(np.array([1.0, 2.0, 1.0, 1.5, 1.9, 2.5, 2.0]))
    assert mdd == pytest.approx(0.5) and dur == 3
    assert periods_per_year("1h") == 8760.0
    with pytest.raises(ValueError):
        periods_per_year("7h")


def test_trades_split_at_a_flip() -> None:
    from trading.backtest.ledger import Fills

    f = Fills.from_lists([1, 5, 9], [0, 0, 0], [2.0, -3.0, 1.0], [10.0, 12.0, 11.0], [0.0, 0.0, 0.0])
    long_, short = closed_trades(f, ["X/USDT"])
    assert long_.side == "long" and long_.pnl == pytest.approx(4.0) and long_.exit_bar == 5
    assert short.side == "short" and short.pnl == pytest.approx(1.0) and short.entry_bar == 5


def test_grid_optuna_and_walk_forward_stay_in_range_and_report_out_of_sample() -> None:
    b = wave_bars(2400)
    grid = param_grid(MACrossover, points=4, names=["fast", "slow"])
    assert grid and all(p["fast"] < p["slow"] for p in grid)
    assert all(2 <= p["fast"] <= 200 and 5 <= p["slow"] <= 1000 for p in grid)
    cfg = BacktestConfig(fill=FillModel(fee=0.001, slippage=0.0, participation=1.0))
    g = grid_search(MACrossover, b, cfg, points=3, names=["fast", "slow"])
    assert math.isfinite(g.best_score)
    assert g.best_params["fast"] < g.best_params["slow"]
    assert g.best_score == max(t["score"] for t in g.trials)
    o = optuna_search(MACrossover, b, cfg, n_trials=12, names=["fast", "slow"], seed=1)
    assert all(2 <= t["params"]["fast"] <= 200 for t in o.trials)
    wf = walk_forward(MACrossover, b, cfg, folds=3, points=3, names=["fast", "slow"])
    assert len(wf["folds"]) == 3
    for f in wf["folds"]:
        assert f["train"][1] == f["test"][0]  # parameters never saw the test window
        assert f["out_of_sample"]["total_return"] is not None
    assert wf["out_of_sample"]["total_return"] is not None
    assert wf["out_of_sample_equity"].shape[0] == 2400 - 1200 - 3 + 1
