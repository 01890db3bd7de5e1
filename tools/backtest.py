"""Backtest tools: run a strategy over history (`backtest_strategy`) and read its current signal
(`strategy_signal`). Read-only: no tool here places or proposes an order."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from core.strict import StrictModel
from tools.registry import ToolError, tool
from trading.backtest.data import DataError, load_market
from trading.backtest.metrics import TIMEFRAME_MS, periods_per_year
from trading.strategies import ALIASES, STRATEGIES, make_strategy

STRATEGY_NAMES = sorted([*STRATEGIES, *ALIASES])


def norm_symbol(value: str) -> str:
    v = value.strip().upper().replace("-", "/").replace("_", "/")
    if "/" not in v:
        for quote in ("USDT", "USDC", "USD", "BTC", "ETH"):
            if v.endswith(quote) and len(v) > len(quote):
                return f"{v[: -len(quote)]}/{quote}"
        raise ValueError(f"symbol {value!r} should look like BTC/USDT")
    return v


def _sig(x: Any) -> Any:
    if isinstance(x, float):
        return float(f"{x:.6g}")
    if isinstance(x, dict):
        return {k: _sig(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_sig(v) for v in x]
    return x


class StrategyArgs(StrictModel):
    """Which strategy on which market: shared by the tools and the HTTP backtest body."""

    strategy: str = Field(description=f"one of {', '.join(STRATEGY_NAMES)}")
    symbols: list[str] = Field(
        min_length=1, max_length=2, description="one symbol; two for pairs, e.g. [ETH/USDT, BTC/USDT]"
    )
    timeframe: str = Field(default="1h", description=f"one of {', '.join(TIMEFRAME_MS)}")
    params: dict[str, float | int | bool | str] = Field(default_factory=dict, description="strategy parameters")

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, v: str) -> str:
        if v.strip().lower() not in STRATEGY_NAMES:
            raise ValueError(f"unknown strategy; known: {', '.join(STRATEGY_NAMES)}")
        return v.strip().lower()

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str]) -> list[str]:
        return [norm_symbol(s) for s in v]

    @field_validator("timeframe")
    @classmethod
    def _tf(cls, v: str) -> str:
        if v not in TIMEFRAME_MS:
            raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAME_MS)}")
        return v


class BacktestArgs(StrategyArgs):
    limit: int = Field(default=2000, ge=50, le=20_000, description="candles of history")
    fee: float = Field(default=0.001, ge=0, le=0.01)
    slippage: float = Field(default=0.0005, ge=0, le=0.05)
    mode: Literal["event", "vectorized"] = "event"
    book: Literal["auto", "cash", "relative_value"] = Field(
        default="auto", description="auto: pairs trade spot relative value around an inventory in both legs")


def _load(symbols: list[str], timeframe: str, limit: int) -> tuple[list[Any], list[str]]:
    bars, notes = [], []
    for s in symbols:
        try:
            b, note = load_market(s, timeframe, limit)
        except DataError as exc:
            raise ToolError(str(exc)) from exc
        bars.append(b)
        notes.append(f"{s}: {note}")
    return bars, notes


@tool(
    name="backtest_strategy",
    description="Backtest a trading strategy (trend, mean reversion, pairs) on recent candles through the risk gate "
    "and a fill model with fees, slippage and one bar of latency; returns metrics next to buy and hold. Pairs "
    "(two symbols) trade both legs as spot relative value around an inventory and report the spread's PnL.",
    args=BacktestArgs,
)
def backtest_strategy(args: BacktestArgs) -> dict[str, Any]:
    from trading.backtest.service import backtest

    bars, notes = _load(args.symbols, args.timeframe, args.limit)
    try:
        _, out = backtest(args.strategy, bars, args.timeframe, dict(args.params), args.mode, fee=args.fee,
                          slippage=args.slippage, book=args.book)
    except ValueError as exc:
        raise ToolError(str(exc)) from exc
    return _sig({
        "strategy": out["strategy"],
        "symbols": out["symbols"],
        "timeframe": args.timeframe,
        "bars": out["bars"],
        "data": notes,
        "metrics": {k: out["metrics"].get(k) for k in (
            "total_return", "annual_return", "sharpe", "sortino", "max_drawdown", "trades", "win_rate",
            "profit_factor", "exposure", "fees", "final_equity")},
        "buy_and_hold": {k: out["buy_and_hold"].get(k) for k in ("total_return", "sharpe", "max_drawdown")},
        "excess_return": out["excess_return"],
        "rejected_orders": out["rejected_orders"],
        "book": out["book"]["kind"],
        "spread": out["spread"],
        "fingerprint": out["fingerprint"][:16],
        "note": "in-sample backtest on past data; not a forecast",
    })


class SignalArgs(StrategyArgs):
    limit: int = Field(default=1000, ge=50, le=10_000, description="candles of history")


@tool(
    name="strategy_signal",
    description="The current target position of a strategy on the latest closed candles (weights per symbol, "
    "+1 fully long, 0 flat), with the last few changes. Informational: it places no order.",
    args=SignalArgs,
)
def strategy_signal(args: SignalArgs) -> dict[str, Any]:
    bars, notes = _load(args.symbols, args.timeframe, args.limit)
    try:
        from trading.backtest.service import align

        strat = make_strategy(args.strategy, dict(args.params), periods_per_year(args.timeframe))
        seq = align(bars)
        if len(seq) != strat.n_symbols:
            raise ValueError(f"{strat.name} trades {strat.n_symbols} symbol(s); got {len(seq)}")
        tg = strat.targets(seq)
    except ValueError as exc:
        raise ToolError(str(exc)) from exc
    ts = seq[0].timestamp_ms
    changes = [i for i in range(1, len(tg)) if (tg[i] != tg[i - 1]).any()][-5:]
    return _sig({
        "strategy": strat.name,
        "params": strat.params,
        "symbols": args.symbols,
        "as_of_ms": int(ts[-1]),
        "target": [float(x) for x in tg[-1]],
        "recent_changes": [{"timestamp_ms": int(ts[i]), "target": [float(x) for x in tg[i]]} for i in changes],
        "data": notes,
    })
