"""The briefing chart: each pair's close over the window, rebased to 0% at the start (one PNG, matplotlib Agg)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime

import matplotlib.dates as mdates
from matplotlib.figure import Figure


def _time(value: str | int | float) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value) / 1000.0)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def briefing_chart_png(series: Mapping[str, Sequence[tuple[str | int | float, float]]], title: str) -> bytes:
    """`series`: symbol -> [(time, close)] oldest first. Raises ValueError if there is nothing to draw."""
    drawable = {s: pts for s, pts in series.items() if len(pts) >= 2 and pts[0][1]}
    if not drawable:
        raise ValueError("no price series to chart")
    # The object API (no pyplot): no global state, safe on worker threads, no GUI backend.
    fig = Figure(figsize=(8, 4), dpi=100)
    ax = fig.add_subplot()
    for symbol, pts in drawable.items():
        base = float(pts[0][1])
        times = mdates.date2num([_time(t) for t, _ in pts])
        ax.plot(times, [(float(c) / base - 1.0) * 100.0 for _, c in pts], label=symbol)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel("change since start (%)")
    ax.set_title(title)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
