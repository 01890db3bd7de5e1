"""PNG chart of recent history, the forecast path and its interval (matplotlib, Agg, no global pyplot state)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _dt(ms: list[int]) -> np.ndarray[Any, np.dtype[np.datetime64]]:
    return np.asarray(ms, dtype="datetime64[ms]")


def forecast_chart_png(candles: pd.DataFrame, forecast: dict[str, Any], history: int = 200) -> bytes:
    tail = candles.iloc[-history:]
    xs = _dt([int(t) for t in tail["timestamp_ms"]])
    path = forecast["path"]
    fx = _dt([int(forecast["as_of_ms"])] + [int(p["timestamp_ms"]) for p in path])
    last = float(forecast["last_close"])
    mid = [last] + [float(p["price"]) for p in path]
    lo = [last] + [float(p["lower"]) for p in path]
    hi = [last] + [float(p["upper"]) for p in path]

    fig = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(xs, tail["close"].to_numpy(), color="#1f3b73", lw=1.2, label="close")
    ax.plot(fx, mid, color="#d9480f", lw=1.6, label="forecast")
    level = round(100 * float(forecast.get("interval", 0.8)))
    ax.fill_between(fx, lo, hi, color="#d9480f", alpha=0.2, label=f"{level}% interval")
    ax.axvline(fx[0], color="grey", lw=0.8, ls="--")
    skill = forecast.get("skill") or {}
    ratio = skill.get("rmse_ratio_rw")
    note = "beats random walk" if forecast.get("beats_random_walk") else "does NOT beat random walk"
    sub = f"RMSE {ratio:.3f}x random walk, {note}" if isinstance(ratio, int | float) else "skill unknown"
    ax.set_title(
        f"{forecast['symbol']} {forecast['timeframe']}: {forecast['horizon']}-step LSTM forecast "
        f"(model v{forecast['model_version']})\n{sub}",
        fontsize=10,
    )
    ax.set_ylabel("price")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
