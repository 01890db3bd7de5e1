"""Backtest speed: the same SMA crossover with fees on the same 1,000,000 bars through our vectorised path, our
event-driven path (real risk gate + fill model), vectorbt and backtrader (a subsample, scaled).

Timed work per engine: from close prices to the final portfolio value (indicators, signals, simulation, marking).
Our event path is also timed with the full result (trades, metrics, buy and hold) as `event_full_bars_per_s`.
Semantics shared by all: signal at the close of bar i, fill at the open of bar i+1, all-in long / flat, fee on
notional, no slippage, unlimited volume. Prints one JSON line last.

Agreement with vectorbt (`agree_with_vectorbt`) needs the same final value (to 1e-6 relative) AND the same closed
trades: their count and each trade's entry and exit bar (`pf.trades.records`, closed trades only, against our
`closed_trades`). `--bars N` runs a smaller series (a quick check; the goals are stated for 1,000,000 bars).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trading.backtest.engine import BacktestConfig, run_event  # noqa: E402
from trading.backtest.fills import FillModel  # noqa: E402
from trading.backtest.ledger import closed_trades, equity_curve  # noqa: E402
from trading.backtest.vectorized import simulate  # noqa: E402
from trading.strategies import Bars, MACrossover  # noqa: E402

N = 1_000_000
FAST, SLOW = 50, 200
FEE = 0.001
CASH = 10_000.0
DATA = ROOT.parent / "shared" / "data" / "ohlcv" / "binance_BTC_USDT-5m.csv"


def load_bars(n: int = N) -> tuple[Bars, str]:
    if DATA.exists():
        import pandas as pd

        df = pd.read_csv(DATA)
        c0, o0, v0 = df["close"].to_numpy(float), df["open"].to_numpy(float), df["volume"].to_numpy(float)
        reps = -(-n // len(df))
        closes, opens, scale = [], [], 1.0
        for _ in range(reps):  # chain copies end to start so the series stays continuous
            closes.append(c0 * scale)
            opens.append(o0 * scale)
            scale = closes[-1][-1] / c0[0]
        c, o = np.concatenate(closes)[:n], np.concatenate(opens)[:n]
        v = np.tile(v0, reps)[:n]
        src = f"real candles {DATA.name} ({len(df)} rows) chained x{reps} to {n} bars"
    else:
        rng = np.random.default_rng(7)
        c = 20_000 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
        o = np.concatenate([[c[0]], c[:-1]])
        v = np.full(n, 1e6)
        src = f"synthetic GBM ({n} bars); {DATA} absent"
    ts = np.arange(n, dtype=np.int64) * 300_000
    return Bars(ts, o, np.maximum(o, c), np.minimum(o, c), c, v, "BTC/USDT"), src


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def trade_bars(records: object) -> list[tuple[int, int]]:
    """(entry bar, exit bar) of vectorbt's closed trades (status 1), in order, from `pf.trades.records_arr`."""
    rec = np.asarray(records)
    closed = rec[rec["status"] == 1]
    return [(int(a), int(b)) for a, b in zip(closed["entry_idx"], closed["exit_idx"], strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--bars", type=int, default=N, help=f"series length (default {N:,})")
    n = ap.parse_args().bars
    if n < 2 * SLOW:
        ap.error(f"--bars must be at least {2 * SLOW}")
    bars, source = load_bars(n)
    strat = MACrossover(periods_per_year=105_120, fast=FAST, slow=SLOW)
    fill = FillModel(fee=FEE, slippage=0.0, participation=1.0)
    cfg = BacktestConfig(initial_cash=CASH, fill=fill, timeframe="5m")
    close2 = bars.close.reshape(-1, 1)

    def ours_vec() -> float:
        tg = strat.targets(bars)
        f = simulate(bars.open, bars.volume, tg, fill, CASH)
        eq, _, _ = equity_curve(f, close2, CASH)
        return float(eq[-1])

    def ours_event() -> float:
        res = run_event(strat, bars, cfg)
        return float(res.equity[-1])

    ours_vec()
    run_event(strat, bars.slice(0, 5000), cfg)  # compile / warm up
    t_vec, final_vec = best_of(ours_vec, 5)
    t_evt, res = best_of(lambda: run_event(strat, bars, cfg), 3)
    final_evt = float(res.equity[-1])  # type: ignore[attr-defined]
    n_trades = res.metrics["trades"]  # type: ignore[attr-defined]
    # our closed trades (entry, exit bar), from the vectorised fills, outside the timed region
    ours = [(t.entry_bar, t.exit_bar) for t in closed_trades(
        simulate(bars.open, bars.volume, strat.targets(bars), fill, CASH), [bars.symbol])]
    evt_trades = [(t.entry_bar, t.exit_bar) for t in res.trades]  # type: ignore[attr-defined]
    out: dict[str, object] = {
        "data": source,
        "strategy": f"SMA({FAST},{SLOW}) long/flat, fee {FEE}, fill at next open",
        "bars": n,
        "trades": n_trades,
        "our_final_value": final_vec,
        "event_final_value": final_evt,
        "event_equals_vectorized": abs(final_evt - final_vec) <= 1e-9 * abs(final_vec) and evt_trades == ours,
        "vectorized_s": t_vec,
        "event_full_s": t_evt,
    }
    print(f"vectorised: {n / t_vec:,.0f} bars/s; event (gate+fills+metrics): {n / t_evt:,.0f} bars/s", file=sys.stderr)

    vbt_rate = None
    agree = None
    try:
        import vectorbt as vbt

        close_s = bars.close
        open_s = bars.open

        def run_vbt() -> tuple[float, object]:
            fast = vbt.MA.run(close_s, FAST, short_name="fast")
            slow = vbt.MA.run(close_s, SLOW, short_name="slow")
            entries = fast.ma_crossed_above(slow).to_numpy()
            exits = fast.ma_crossed_below(slow).to_numpy()
            # signal at close i -> order at open i+1
            ent = np.concatenate([[False], entries[:-1]])
            ex = np.concatenate([[False], exits[:-1]])
            pf = vbt.Portfolio.from_signals(close_s, ent, ex, price=open_s, fees=FEE, init_cash=CASH, freq="5min")
            return float(pf.final_value()), pf

        run_vbt()
        t_vbt, vbt_out = best_of(run_vbt, 3)
        final_vbt, pf = vbt_out  # type: ignore[misc]
        vbt_rate = n / t_vbt
        theirs = trade_bars(pf.trades.records_arr)  # the structured array behind pf.trades.records
        first_diff = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), None)
        value_agrees = bool(abs(float(final_vbt) - final_vec) <= 1e-6 * abs(final_vec))
        trades_agree = ours == theirs
        agree = value_agrees and trades_agree
        out["vectorbt_final_value"] = final_vbt
        out["vectorbt_agreement"] = {
            "final_value": value_agrees, "closed_trades_ours": len(ours), "closed_trades_vectorbt": len(theirs),
            "entry_exit_bars_equal": trades_agree,
            "first_difference": None if first_diff is None else {
                "trade": first_diff, "ours": ours[first_diff], "vectorbt": theirs[first_diff]},
        }
        out["vectorbt_version"] = vbt.__version__
    except ImportError as exc:
        out["vectorbt_error"] = f"vectorbt not installed: {exc}"

    bt_rate = None
    try:
        import backtrader as bt
        import pandas as pd

        sub = min(50_000, n)

        class Cross(bt.Strategy):  # type: ignore[misc]
            def __init__(self) -> None:
                self.cross = bt.ind.CrossOver(bt.ind.SMA(period=FAST), bt.ind.SMA(period=SLOW))

            def next(self) -> None:
                if self.cross > 0 and not self.position:
                    self.order_target_percent(target=0.99)
                elif self.cross < 0 and self.position:
                    self.close()

        idx = pd.date_range("2020-01-01", periods=sub, freq="5min")
        df = pd.DataFrame({"open": bars.open[:sub], "high": bars.high[:sub], "low": bars.low[:sub],
                           "close": bars.close[:sub], "volume": bars.volume[:sub]}, index=idx)

        def run_bt() -> float:
            cerebro = bt.Cerebro(stdstats=False)
            cerebro.adddata(bt.feeds.PandasData(dataname=df))
            cerebro.addstrategy(Cross)
            cerebro.broker.setcash(CASH)
            cerebro.broker.setcommission(commission=FEE)
            cerebro.run()
            return float(cerebro.broker.getvalue())

        t_bt, _ = best_of(run_bt, 1)
        bt_rate = sub / t_bt
        out["backtrader_subsample_bars"] = sub
    except ImportError as exc:
        out["backtrader_error"] = f"backtrader not installed: {exc}"

    vec_rate = n / t_vec
    evt_rate = n / t_evt
    out["ratios"] = {
        "vectorized_vs_vectorbt": vec_rate / vbt_rate if vbt_rate else None,
        "event_vs_backtrader": evt_rate / bt_rate if bt_rate else None,
    }
    out["goals_met"] = {
        "vectorized_5x_vectorbt": bool(vbt_rate and vec_rate >= 5 * vbt_rate),
        "event_1M_bars_per_s": evt_rate >= 1e6,
        "event_50x_backtrader": bool(bt_rate and evt_rate >= 50 * bt_rate),
    }
    print(json.dumps(out, default=str), file=sys.stderr)
    print(json.dumps({
        "benchmark": "backtest",
        "vectorized_bars_per_s": round(vec_rate),
        "event_bars_per_s": round(evt_rate),
        "vectorbt_bars_per_s": round(vbt_rate) if vbt_rate else None,
        "backtrader_bars_per_s": round(bt_rate) if bt_rate else None,
        "agree_with_vectorbt": agree,
    }))


if __name__ == "__main__":
    main()
