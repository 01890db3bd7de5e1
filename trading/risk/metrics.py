"""Risk metrics of the book: drawdown, VaR and expected shortfall, Sharpe and Sortino."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm


def max_drawdown(equity: Sequence[float]) -> float:
    """Largest peak-to-trough fall as a fraction of the peak (0 when the curve never falls)."""
    arr = np.asarray(equity, dtype=float)
    if arr.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(arr)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peaks > 0, (peaks - arr) / peaks, 0.0)
    return float(np.max(dd))


def current_drawdown(equity: float, peak: float) -> float:
    return max(0.0, (peak - equity) / peak) if peak > 0 else 0.0


def historical_var(returns: Sequence[float] | Any, level: float = 0.95) -> float:
    """Loss (positive number, fraction) not exceeded with probability `level`, from the empirical quantile."""
    arr = np.asarray(returns, dtype=float)
    if arr.size == 0:
        raise ValueError("no returns")
    return float(max(0.0, -np.quantile(arr, 1.0 - level)))


def historical_es(returns: Sequence[float] | Any, level: float = 0.95) -> float:
    """Mean loss in the worst (1 - level) tail."""
    arr = np.asarray(returns, dtype=float)
    if arr.size == 0:
        raise ValueError("no returns")
    cutoff = np.quantile(arr, 1.0 - level)
    tail = arr[arr <= cutoff]
    return float(max(0.0, -tail.mean())) if tail.size else 0.0


def parametric_var(returns: Sequence[float] | Any, level: float = 0.95) -> float:
    """Gaussian VaR: -(mu + sigma * z_(1-level))."""
    arr = np.asarray(returns, dtype=float)
    if arr.size < 2:
        raise ValueError("need at least 2 returns")
    mu, sigma = float(arr.mean()), float(arr.std(ddof=1))
    return max(0.0, -(mu + sigma * float(norm.ppf(1.0 - level))))


def parametric_es(returns: Sequence[float] | Any, level: float = 0.95) -> float:
    """Gaussian ES: -mu + sigma * pdf(z) / (1 - level)."""
    arr = np.asarray(returns, dtype=float)
    if arr.size < 2:
        raise ValueError("need at least 2 returns")
    mu, sigma = float(arr.mean()), float(arr.std(ddof=1))
    z = float(norm.ppf(1.0 - level))
    return max(0.0, -mu + sigma * float(norm.pdf(z)) / (1.0 - level))


def sharpe(returns: Sequence[float] | Any, periods_per_year: float = 365.0, risk_free: float = 0.0) -> float:
    arr = np.asarray(returns, dtype=float) - risk_free / periods_per_year
    if arr.size < 2:
        return 0.0
    sd = float(arr.std(ddof=1))
    return float(arr.mean()) / sd * math.sqrt(periods_per_year) if sd > 0 else 0.0


def sortino(returns: Sequence[float] | Any, periods_per_year: float = 365.0, target: float = 0.0) -> float:
    arr = np.asarray(returns, dtype=float) - target
    if arr.size < 2:
        return 0.0
    downside = np.minimum(arr, 0.0)
    dd = math.sqrt(float(np.mean(downside**2)))
    return float(arr.mean()) / dd * math.sqrt(periods_per_year) if dd > 0 else 0.0


@dataclass(frozen=True)
class RiskReport:
    equity: float
    gross_exposure: float
    net_exposure: float
    realised_pnl: float
    unrealised_pnl: float
    drawdown: float
    var_hist_95: float | None
    es_hist_95: float | None
    var_param_95: float | None
    es_param_95: float | None
    sharpe: float | None
    sortino: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {k: (None if v is None else round(float(v), 8)) for k, v in self.__dict__.items()}


def book_report(
    *,
    equity: float,
    peak_equity: float,
    gross: float,
    net: float,
    realised: float,
    unrealised: float,
    equity_curve: Sequence[float] = (),
    periods_per_year: float = 365.0,
) -> RiskReport:
    """Metrics of the book; return-based ones need at least 10 points of the equity curve."""
    curve = np.asarray(equity_curve, dtype=float)
    rets = np.diff(curve) / curve[:-1] if curve.size >= 2 and np.all(curve > 0) else np.asarray([])
    enough = rets.size >= 10
    return RiskReport(
        equity=equity,
        gross_exposure=gross,
        net_exposure=net,
        realised_pnl=realised,
        unrealised_pnl=unrealised,
        drawdown=current_drawdown(equity, peak_equity),
        var_hist_95=historical_var(rets) if enough else None,
        es_hist_95=historical_es(rets) if enough else None,
        var_param_95=parametric_var(rets) if enough else None,
        es_param_95=parametric_es(rets) if enough else None,
        sharpe=sharpe(rets, periods_per_year) if enough else None,
        sortino=sortino(rets, periods_per_year) if enough else None,
    )
