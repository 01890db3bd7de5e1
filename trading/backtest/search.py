"""Parameter search (grid, Optuna) and walk-forward evaluation with out-of-sample reporting.

Searches run on the vectorised path (same rules as the event path; see vectorized.py). Walk-forward: the history
is cut into consecutive folds; for each fold the parameters are chosen on the training window only and then
scored on the following test window, which the search never saw. The stitched out-of-sample result is the honest
estimate; the in-sample score is reported next to it so that the gap (overfitting) is visible.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from trading.backtest.engine import BacktestConfig, _as_seq, _columns, setup_book
from trading.backtest.ledger import closed_trades, equity_curve
from trading.backtest.metrics import equity_metrics
from trading.backtest.vectorized import simulate
from trading.strategies.base import Bars, FloatArray, Strategy

OBJECTIVES = ("sharpe", "total_return", "calmar", "sortino")


def _score(equity: FloatArray, ppy: float, objective: str) -> float:
    m = equity_metrics(equity, ppy)
    v = m.get(objective)
    return float(v) if v is not None and math.isfinite(v) else -math.inf


def evaluate(
    strategy_cls: type[Strategy], params: dict[str, Any], data: Sequence[Bars], config: BacktestConfig,
    ppy: float, start: int = 0, stop: int | None = None,
) -> tuple[FloatArray, int]:
    """Equity over bars [start, stop) for one parameter set. Targets are computed on the whole history up to
    `stop` (causal, so the warm-up uses earlier data and nothing later), and trading starts flat at `start`."""
    strat = strategy_cls(periods_per_year=ppy, **params)
    stop = len(data[0]) if stop is None else stop
    window = [b.slice(0, stop) for b in data]
    tg = strat.targets(window)[start:stop]
    o, c, v = _columns([b.slice(start, stop) for b in data])
    # the same book as a backtest (pairs: relative value around an inventory), set up at the window's first open
    book = setup_book(len(data), config, o[0])
    fills = simulate(o, v, tg * book.scale, config.fill, book.cash0, config.max_leverage, book.base)
    eq, _, _ = equity_curve(fills, c, book.cash0)
    return eq + c @ book.base, len(closed_trades(fills, [b.symbol for b in data]))


def param_grid(strategy_cls: type[Strategy], points: int = 5, fixed: dict[str, Any] | None = None,
               names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Cartesian grid over the declared ranges of numeric parameters (others stay at their defaults);
    combinations that violate cross-parameter constraints are dropped."""
    fixed = dict(fixed or {})
    specs = [p for p in strategy_cls.PARAMS if p.kind in ("int", "float") and p.name not in fixed
             and (names is None or p.name in names)]
    axes = [p.grid(points) for p in specs]
    out: list[dict[str, Any]] = []
    for combo in itertools.product(*axes):
        params = {**fixed, **{p.name: val for p, val in zip(specs, combo, strict=True)}}
        try:
            strategy_cls(**params)
        except ValueError:
            continue
        out.append(params)
    return out


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_score: float
    objective: str
    trials: list[dict[str, Any]]

    def to_json(self, top: int = 10) -> dict[str, Any]:
        ranked = sorted(self.trials, key=lambda t: -t["score"] if math.isfinite(t["score"]) else math.inf)
        return {
            "objective": self.objective,
            "best_params": self.best_params,
            "best_score": self.best_score if math.isfinite(self.best_score) else None,
            "trials": len(self.trials),
            "top": [{"params": t["params"], "score": t["score"] if math.isfinite(t["score"]) else None}
                    for t in ranked[:top]],
        }


def grid_search(
    strategy_cls: type[Strategy], data: Bars | Sequence[Bars], config: BacktestConfig | None = None,
    ppy: float = 8760.0, objective: str = "sharpe", points: int = 5, fixed: dict[str, Any] | None = None,
    names: Sequence[str] | None = None, start: int = 0, stop: int | None = None,
) -> SearchResult:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}")
    cfg = config or BacktestConfig()
    seq = _as_seq(data)
    trials: list[dict[str, Any]] = []
    for params in param_grid(strategy_cls, points, fixed, names):
        eq, _ = evaluate(strategy_cls, params, seq, cfg, ppy, start, stop)
        trials.append({"params": params, "score": _score(eq, ppy, objective)})
    if not trials:
        raise ValueError("the grid is empty (every combination violates a parameter constraint)")
    best = max(trials, key=lambda t: t["score"])
    return SearchResult(best["params"], best["score"], objective, trials)


def optuna_search(
    strategy_cls: type[Strategy], data: Bars | Sequence[Bars], config: BacktestConfig | None = None,
    ppy: float = 8760.0, objective: str = "sharpe", n_trials: int = 50, seed: int = 0,
    fixed: dict[str, Any] | None = None, names: Sequence[str] | None = None, start: int = 0,
    stop: int | None = None,
) -> SearchResult:
    """TPE search (Optuna, seeded) inside the declared ranges."""
    import optuna

    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = config or BacktestConfig()
    seq = _as_seq(data)
    fixed = dict(fixed or {})
    trials: list[dict[str, Any]] = []

    def run(trial: optuna.Trial) -> float:
        params = dict(fixed)
        for p in strategy_cls.PARAMS:
            if p.name in fixed or (names is not None and p.name not in names):
                continue
            if p.kind == "int":
                assert p.low is not None and p.high is not None
                params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high))
            elif p.kind == "float":
                assert p.low is not None and p.high is not None
                params[p.name] = trial.suggest_float(p.name, float(p.low), float(p.high))
        try:
            strategy_cls(**params)
        except ValueError:
            raise optuna.TrialPruned() from None
        eq, _ = evaluate(strategy_cls, params, seq, cfg, ppy, start, stop)
        score = _score(eq, ppy, objective)
        trials.append({"params": params, "score": score})
        return score if math.isfinite(score) else -1e9

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(run, n_trials=n_trials)
    if not trials:
        raise ValueError("no valid trial (every sampled combination violated a parameter constraint)")
    best = max(trials, key=lambda t: t["score"])
    return SearchResult(best["params"], best["score"], objective, trials)


@dataclass
class Fold:
    train: tuple[int, int]
    test: tuple[int, int]
    params: dict[str, Any]
    in_sample: dict[str, Any]
    out_of_sample: dict[str, Any]


def walk_forward(
    strategy_cls: type[Strategy], data: Bars | Sequence[Bars], config: BacktestConfig | None = None,
    ppy: float = 8760.0, folds: int = 4, train_frac: float = 0.5, objective: str = "sharpe",
    method: Literal["grid", "optuna"] = "grid", points: int = 4, n_trials: int = 30,
    fixed: dict[str, Any] | None = None, names: Sequence[str] | None = None, anchored: bool = False,
) -> dict[str, Any]:
    """Rolling (or anchored) walk-forward. The first `train_frac` of the history is the first training window;
    the rest is cut into `folds` test windows, each scored with parameters chosen on the data before it."""
    cfg = config or BacktestConfig()
    seq = _as_seq(data)
    n = len(seq[0])
    first_train = int(n * train_frac)
    if folds < 1 or first_train < 10 or n - first_train < folds * 10:
        raise ValueError("not enough bars for this walk-forward (need >= 10 bars per window)")
    edges = np.linspace(first_train, n, folds + 1).astype(int).tolist()
    results: list[Fold] = []
    oos_returns: list[FloatArray] = []
    for f in range(folds):
        test = (edges[f], edges[f + 1])
        train = (0 if anchored else max(0, test[0] - first_train), test[0])
        if method == "optuna":
            sr = optuna_search(strategy_cls, seq, cfg, ppy, objective, n_trials, seed=f, fixed=fixed, names=names,
                               start=train[0], stop=train[1])
        else:
            sr = grid_search(strategy_cls, seq, cfg, ppy, objective, points, fixed, names, train[0], train[1])
        eq_in, tr_in = evaluate(strategy_cls, sr.best_params, seq, cfg, ppy, train[0], train[1])
        eq_out, tr_out = evaluate(strategy_cls, sr.best_params, seq, cfg, ppy, test[0], test[1])
        oos_returns.append(eq_out[1:] / eq_out[:-1] - 1.0 if len(eq_out) > 1 else np.zeros(0))
        results.append(Fold(train, test, sr.best_params,
                            equity_metrics(eq_in, ppy) | {"trades": tr_in},
                            equity_metrics(eq_out, ppy) | {"trades": tr_out}))
    stitched = cfg.initial_cash * np.concatenate([[1.0], np.cumprod(1.0 + np.concatenate(oos_returns))])
    ins = [r.in_sample.get(objective) for r in results]
    outs = [r.out_of_sample.get(objective) for r in results]
    mean_in = float(np.mean([x for x in ins if x is not None])) if any(x is not None for x in ins) else None
    mean_out = float(np.mean([x for x in outs if x is not None])) if any(x is not None for x in outs) else None
    return {
        "objective": objective,
        "method": method,
        "anchored": anchored,
        "folds": [
            {"train": list(r.train), "test": list(r.test), "params": r.params, "in_sample": r.in_sample,
             "out_of_sample": r.out_of_sample}
            for r in results
        ],
        "in_sample_mean": mean_in,
        "out_of_sample_mean": mean_out,
        "out_of_sample": equity_metrics(stitched, ppy),
        "out_of_sample_equity": stitched,
        "note": "parameters were chosen on each training window only; judge the strategy by out_of_sample",
    }
