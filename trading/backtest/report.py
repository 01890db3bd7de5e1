"""Reports: equity and drawdown chart (PNG, matplotlib Agg), a plain-text summary table, JSON."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from trading.backtest.engine import BacktestResult
from trading.backtest.metrics import drawdown

_ROWS: list[tuple[str, str, str]] = [
    ("total_return", "Total return", "pct"),
    ("annual_return", "Annual return", "pct"),
    ("volatility", "Volatility (ann.)", "pct"),
    ("sharpe", "Sharpe", "num"),
    ("sortino", "Sortino", "num"),
    ("calmar", "Calmar", "num"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_bars", "Max DD duration (bars)", "int"),
    ("trades", "Trades", "int"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "num"),
    ("exposure", "Exposure", "pct"),
    ("turnover_per_year", "Turnover / year", "num"),
    ("fees", "Fees paid", "num"),
    ("final_equity", "Final equity", "num"),
]


def _fmt(v: Any, kind: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if kind == "pct":
        return f"{100 * float(v):.2f}%"
    if kind == "int":
        return f"{int(v)}"
    return f"{float(v):,.3f}"


def summary_table(result: BacktestResult) -> str:
    m, bh = result.metrics, result.buy_and_hold
    width = max(len(r[1]) for r in _ROWS)
    rv = result.spread is not None
    bench = "inventory" if rv else "buy & hold"  # relative value is measured against the untouched inventory
    lines = [f"{result.strategy['name']} on {', '.join(result.symbols)} ({result.mode}, {len(result.equity)} bars, "
             f"{result.book.get('kind', 'cash')} book)",
             f"{'':<{width}}  {'strategy':>14}  {bench:>14}"]
    for key, label, kind in _ROWS:
        lines.append(f"{label:<{width}}  {_fmt(m.get(key), kind):>14}  {_fmt(bh.get(key), kind):>14}")
    if result.spread is not None:
        lines.append(f"{'Spread PnL':<{width}}  {_fmt(result.spread['pnl'], 'num'):>14}")
    lines.append(f"{'Fingerprint':<{width}}  {result.fingerprint[:16]}")
    if result.rejections:
        lines.append(f"{'Rejected orders':<{width}}  {len(result.rejections)} (first: "
                     f"{'; '.join(result.rejections[0]['reasons'])})")
    return "\n".join(lines)


def plot_equity(result: BacktestResult, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ts = result.timestamps.astype("datetime64[ms]")
    eq = result.equity
    dd, _, _ = drawdown(eq)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax1.plot(ts, eq, label=f"{result.strategy['name']}", lw=1.2)
    if result.bh_equity is not None:
        ax1.plot(ts, result.bh_equity, label="inventory" if result.spread is not None else "buy & hold", lw=1.0,
                 alpha=0.7)
    ax1.set_ylabel("equity")
    ax1.legend(loc="upper left")
    ax1.grid(alpha=0.3)
    ax2.fill_between(ts, 100 * dd, 0, color="tab:red", alpha=0.4)
    ax2.set_ylabel("drawdown %")
    ax2.grid(alpha=0.3)
    fig.suptitle(f"{result.strategy['name']} {', '.join(result.symbols)}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
