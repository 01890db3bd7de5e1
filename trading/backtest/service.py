"""One call from a request (CLI, HTTP, agent tool) to a JSON-able backtest result."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.timeframes import check_spacing
from trading.backtest.engine import BacktestConfig, BacktestResult, Book, run_event, run_vectorized
from trading.backtest.fills import FillModel
from trading.backtest.metrics import periods_per_year
from trading.backtest.report import plot_equity, summary_table
from trading.backtest.search import grid_search, optuna_search, walk_forward
from trading.strategies import make_strategy, resolve
from trading.strategies.base import Bars


def align(data: Sequence[Bars]) -> list[Bars]:
    """Keep the timestamps every symbol has (pairs need bar-aligned series)."""
    if len(data) == 1:
        return list(data)
    common = data[0].timestamp_ms
    for b in data[1:]:
        common = np.intersect1d(common, b.timestamp_ms)
    out = []
    for b in data:
        idx = np.searchsorted(b.timestamp_ms, common)
        out.append(Bars(common, b.open[idx], b.high[idx], b.low[idx], b.close[idx], b.volume[idx], b.symbol))
    if len(common) < 2:
        raise ValueError("the symbols share fewer than 2 timestamps")
    return out


def check_bars(data: Sequence[Bars], timeframe: str) -> None:
    """Each series' candle spacing must be the timeframe (SeriesMismatch, a ValueError): the metrics annualise by
    it, so daily candles run as 1h would report returns and Sharpe ratios 24x and ~5x too large."""
    for b in data:
        check_spacing(b.timestamp_ms, timeframe, f"the {b.symbol} candles" if b.symbol else "the candles")


def backtest(
    strategy: str,
    data: Sequence[Bars],
    timeframe: str = "1h",
    params: dict[str, Any] | None = None,
    mode: Literal["event", "vectorized"] = "event",
    initial_cash: float = 10_000.0,
    fee: float = 0.001,
    slippage: float = 0.0005,
    participation: float = 0.1,
    breakers: bool = False,
    chart: str | Path | None = None,
    book: Book = "auto",
    inventory: float = 0.4,
    tilt: float = 0.4,
) -> tuple[BacktestResult, dict[str, Any]]:
    """`book`: "auto" runs pairs on the spot relative-value book (inventory in both legs, see engine.py) and
    single-symbol strategies from cash; "cash" forces the cash book (a pair's short leg is then refused)."""
    ppy = periods_per_year(timeframe)
    check_bars(data, timeframe)
    strat = make_strategy(strategy, params, ppy)
    seq = align(data)
    if len(seq) != strat.n_symbols:
        raise ValueError(f"{strat.name} trades {strat.n_symbols} symbol(s); got {len(seq)}")
    if len(seq[0]) <= strat.warmup():
        raise ValueError(f"{len(seq[0])} bars is not more than the strategy's warm-up of {strat.warmup()} bars")
    cfg = BacktestConfig(initial_cash=initial_cash, fill=FillModel(fee, slippage, participation),
                         timeframe=timeframe, breakers=breakers, book=book, inventory=inventory, tilt=tilt)
    res = run_event(strat, seq, cfg) if mode == "event" else run_vectorized(strat, seq, cfg)
    out = res.to_json()
    out["timeframe"] = timeframe
    out["summary"] = summary_table(res)
    if chart:
        out["chart"] = str(plot_equity(res, chart))
    return res, out


def optimize(
    strategy: str,
    data: Sequence[Bars],
    timeframe: str = "1h",
    method: Literal["grid", "optuna"] = "grid",
    objective: str = "sharpe",
    folds: int = 4,
    points: int = 4,
    n_trials: int = 30,
    fixed: dict[str, Any] | None = None,
    names: Sequence[str] | None = None,
    fee: float = 0.001,
    slippage: float = 0.0005,
) -> dict[str, Any]:
    """Walk-forward with in-sample search per fold, plus the full-sample search for reference."""
    cls = resolve(strategy)
    ppy = periods_per_year(timeframe)
    check_bars(data, timeframe)
    seq = align(data)
    cfg = BacktestConfig(fill=FillModel(fee, slippage, 1.0), timeframe=timeframe)
    wf = walk_forward(cls, seq, cfg, ppy, folds=folds, objective=objective, method=method, points=points,
                      n_trials=n_trials, fixed=fixed, names=names)
    wf.pop("out_of_sample_equity", None)
    full = (grid_search(cls, seq, cfg, ppy, objective, points, fixed, names) if method == "grid"
            else optuna_search(cls, seq, cfg, ppy, objective, n_trials, fixed=fixed, names=names))
    return {"strategy": cls.name, "walk_forward": wf, "full_sample_search": full.to_json(),
            "warning": "full_sample_search is in-sample only; the walk_forward out_of_sample numbers are the estimate"}
