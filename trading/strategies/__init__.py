"""Strategies: target-position generators shared by backtest, paper and live (see base.Strategy)."""

from __future__ import annotations

from typing import Any

from trading.strategies.base import Bars, ParamSpec, Strategy, StrategyState
from trading.strategies.mean_reversion import RSIReversion, ZScoreReversion
from trading.strategies.pairs import PairsStatArb
from trading.strategies.trend import DonchianBreakout, MACrossover, TSMomentum

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (MACrossover, DonchianBreakout, TSMomentum, ZScoreReversion, RSIReversion, PairsStatArb)
}
# Family names resolve to a default member.
ALIASES: dict[str, str] = {
    "trend": "ma_crossover",
    "sma_crossover": "ma_crossover",
    "breakout": "donchian",
    "momentum": "ts_momentum",
    "mean_reversion": "zscore",
    "bollinger": "zscore",
    "stat_arb": "pairs",
}


def resolve(name: str) -> type[Strategy]:
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    cls = STRATEGIES.get(key)
    if cls is None:
        known = sorted([*STRATEGIES, *ALIASES])
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(known)}")
    return cls


def make_strategy(name: str, params: dict[str, Any] | None = None, periods_per_year: float = 8760.0) -> Strategy:
    return resolve(name)(periods_per_year=periods_per_year, **(params or {}))


__all__ = [
    "ALIASES",
    "STRATEGIES",
    "Bars",
    "DonchianBreakout",
    "MACrossover",
    "PairsStatArb",
    "ParamSpec",
    "RSIReversion",
    "Strategy",
    "StrategyState",
    "TSMomentum",
    "ZScoreReversion",
    "make_strategy",
    "resolve",
]
