"""Performance metrics from an equity curve, fills and closed trades (plus buy and hold for comparison)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trading.backtest.ledger import Fills, Trade
from trading.strategies.base import FloatArray

TIMEFRAME_MS: dict[str, int] = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
    "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000,
    "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}
YEAR_MS = 365 * 86_400_000  # crypto trades every day


def periods_per_year(timeframe: str) -> float:
    if timeframe not in TIMEFRAME_MS:
        raise ValueError(f"unknown timeframe {timeframe!r}; known: {', '.join(TIMEFRAME_MS)}")
    return YEAR_MS / TIMEFRAME_MS[timeframe]


def _clean(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def drawdown(equity: FloatArray) -> tuple[FloatArray, float, int]:
    """(drawdown series as a negative fraction, max drawdown as a positive fraction, longest duration in bars)."""
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, equity / peak - 1.0, 0.0)
    max_dd = float(-dd.min()) if dd.size else 0.0
    # longest stretch below a previous peak: bars since the last bar that was at its peak
    idx = np.arange(dd.shape[0])
    last_peak = np.maximum.accumulate(np.where(dd >= 0, idx, -1))
    longest = int(np.max(idx - last_peak)) if dd.size else 0
    return dd, max_dd, longest


def equity_metrics(equity: FloatArray, ppy: float) -> dict[str, float | None]:
    """Return, volatility and risk-adjusted ratios of an equity curve sampled once per bar."""
    n = equity.shape[0]
    if n < 2 or equity[0] <= 0:
        return {k: None for k in ("total_return", "annual_return", "volatility", "sharpe", "sortino", "calmar",
                                  "max_drawdown", "max_drawdown_bars")}
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.diff(equity) / equity[:-1]
    rets = np.where(np.isfinite(rets), rets, 0.0)
    total = equity[-1] / equity[0] - 1.0
    years = (n - 1) / ppy
    annual = (equity[-1] / equity[0]) ** (1.0 / years) - 1.0 if equity[-1] > 0 and years > 0 else -1.0
    sd = float(np.std(rets, ddof=1)) if n > 2 else 0.0
    vol = sd * math.sqrt(ppy)
    mean = float(np.mean(rets))
    sharpe = mean / sd * math.sqrt(ppy) if sd > 0 else math.nan
    downside = np.minimum(rets, 0.0)
    dsd = float(np.sqrt(np.mean(downside * downside)))
    sortino = mean / dsd * math.sqrt(ppy) if dsd > 0 else math.nan
    _, max_dd, dd_bars = drawdown(equity)
    calmar = annual / max_dd if max_dd > 0 else math.nan
    return {
        "total_return": _clean(total),
        "annual_return": _clean(annual),
        "volatility": _clean(vol),
        "sharpe": _clean(sharpe),
        "sortino": _clean(sortino),
        "calmar": _clean(calmar),
        "max_drawdown": _clean(max_dd),
        "max_drawdown_bars": float(dd_bars),
    }


def compute_metrics(
    equity: FloatArray,
    positions: FloatArray,
    closes: FloatArray,
    fills: Fills,
    trades: list[Trade],
    ppy: float,
    bar_ms: int | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = dict(equity_metrics(equity, ppy))
    if bar_ms and out.get("max_drawdown_bars") is not None:
        out["max_drawdown_days"] = round(float(out["max_drawdown_bars"]) * bar_ms / 86_400_000, 3)
    wins = [t.pnl for t in trades if t.pnl > 0]
    losses = [t.pnl for t in trades if t.pnl <= 0]
    out["trades"] = len(trades)
    out["win_rate"] = len(wins) / len(trades) if trades else None
    gross_loss = -sum(losses)
    out["profit_factor"] = _clean(sum(wins) / gross_loss) if gross_loss > 0 else None
    out["avg_trade_return"] = float(np.mean([t.ret for t in trades])) if trades else None
    held = np.any(np.abs(positions) > 0, axis=1)
    out["exposure"] = float(np.mean(held)) if held.size else 0.0
    traded = float(np.sum(np.abs(fills.qty * fills.price))) if len(fills) else 0.0
    mean_eq = float(np.mean(equity)) if equity.size else 0.0
    years = max(equity.shape[0] / ppy, 1e-12)
    out["turnover"] = traded / mean_eq if mean_eq > 0 else None  # traded notional / mean equity
    out["turnover_per_year"] = out["turnover"] / years if out["turnover"] is not None else None
    out["fees"] = float(np.sum(fills.fee)) if len(fills) else 0.0
    out["fills"] = len(fills)
    out["final_equity"] = float(equity[-1]) if equity.size else None
    return out


def buy_and_hold_equity(
    closes: FloatArray, initial_cash: float, fee: float, opens: FloatArray | None = None
) -> FloatArray:
    """Equal weight, bought like the strategy would: decided at the first close, filled at the next open with the
    fee, then held. Equity is the initial cash at bar 0."""
    c = closes.reshape(closes.shape[0], -1)
    o = c if opens is None else opens.reshape(c.shape)
    k = c.shape[1]
    if c.shape[0] < 2:
        return np.full(c.shape[0], float(initial_cash))
    qty = (initial_cash / k) / (o[1] * (1.0 + fee))
    eq = np.asarray(c @ qty, dtype=np.float64)
    eq[0] = initial_cash
    return eq


def buy_and_hold(
    closes: FloatArray, initial_cash: float, fee: float, ppy: float, opens: FloatArray | None = None
) -> dict[str, Any]:
    equity = buy_and_hold_equity(closes, initial_cash, fee, opens)
    m: dict[str, Any] = dict(equity_metrics(equity, ppy))
    m["final_equity"] = float(equity[-1])
    return m
