"""Market impact: an event study of abnormal returns of the named coins after each event type.

For an event at time t concerning coin c, the entry is the first candle opening at or after t (no look-ahead).
Abnormal return over horizon h (1h, 4h, 24h): AR = R_c(t, t+h) - E[R_c], where the expectation comes from a market
model fitted on the estimation window before the event (default 7 days of candles ending one candle before t):
E[R_c] = alpha * h + beta * R_m(t, t+h), with the market m given as a candle series (e.g. BTC). When c is the
market itself, or the window is too short, a mean-adjusted model is used (E[R_c] = mean candle return * h).
Results per event type and horizon: n, mean and median abnormal return, t statistic, share positive.

`impact_analysis` runs the study on stored news events against candles from a `CandleSource` (the tools layer
supplies one over the market-data candle store, so this package reads candles without importing trading/).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

HORIZONS_H: dict[str, int] = {"1h": 1, "4h": 4, "24h": 24}
HOUR_MS = 3_600_000
ESTIMATION_MS = 7 * 24 * HOUR_MS  # the market model is fitted on the 7 days before each event


@dataclass(frozen=True)
class Candles:
    """Close prices at candle open times (ms), ascending; one fixed timeframe."""

    ts_ms: NDArray[np.int64]
    close: NDArray[np.float64]

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[float]]) -> Candles:
        """From ccxt-style rows [ts_ms, open, high, low, close, volume]."""
        arr = np.asarray(rows, dtype=np.float64)
        return cls(arr[:, 0].astype(np.int64), arr[:, 4].astype(np.float64))

    @property
    def step_ms(self) -> int:
        return int(np.median(np.diff(self.ts_ms))) if len(self.ts_ms) > 1 else 3_600_000


@dataclass(frozen=True)
class EventObs:
    time: datetime
    type: str
    symbols: tuple[str, ...]


def _log_ret(c: Candles, i: int, j: int) -> float:
    return float(np.log(c.close[j] / c.close[i]))


def _index_of(c: Candles, ts: int) -> int | None:
    i = int(np.searchsorted(c.ts_ms, ts))
    return i if i < len(c.ts_ms) and int(c.ts_ms[i]) == ts else None


def abnormal_returns(
    event: EventObs,
    symbol: str,
    candles: Candles,
    market: Candles | None,
    *,
    estimation_candles: int = 168,
    min_estimation: int = 24,
) -> dict[str, float]:
    """Abnormal log returns of one coin after one event, per horizon name (missing horizons are left out)."""
    t_ms = int(event.time.timestamp() * 1000)
    step = candles.step_ms
    i0 = int(np.searchsorted(candles.ts_ms, t_ms, side="left"))
    if i0 >= len(candles.ts_ms):
        return {}
    lo = max(0, i0 - 1 - estimation_candles)
    est = np.diff(np.log(candles.close[lo:i0]))  # candle returns strictly before the entry candle
    use_market = market is not None and market is not candles and len(est) >= min_estimation
    alpha = float(est.mean()) if len(est) else 0.0
    beta = 0.0
    if use_market and market is not None:
        m_idx = np.searchsorted(market.ts_ms, candles.ts_ms[lo:i0])
        clipped = np.minimum(m_idx, len(market.ts_ms) - 1)
        ok = (m_idx < len(market.ts_ms)) & (market.ts_ms[clipped] == candles.ts_ms[lo:i0])
        if ok.sum() >= min_estimation:
            mc = market.close[m_idx[ok]]
            mret = np.diff(np.log(mc))
            cret = np.diff(np.log(candles.close[lo:i0][ok]))
            var = float(np.var(mret))
            if var > 0:
                beta = float(np.cov(cret, mret, ddof=0)[0, 1] / var)
                alpha = float(cret.mean() - beta * mret.mean())
        else:
            use_market = False
    out: dict[str, float] = {}
    for name, hours in HORIZONS_H.items():
        n_steps = max(1, round(hours * 3_600_000 / step))
        j = i0 + n_steps
        if j >= len(candles.close):
            continue
        r = _log_ret(candles, i0, j)
        expected = alpha * n_steps
        if use_market and market is not None:
            mi, mj = _index_of(market, int(candles.ts_ms[i0])), _index_of(market, int(candles.ts_ms[j]))
            if mi is not None and mj is not None:
                expected += beta * _log_ret(market, mi, mj)
        out[name] = r - expected
    return out


def event_study(
    events: Sequence[EventObs],
    candles: Mapping[str, Candles],
    *,
    market_symbol: str | None = "BTC",
    estimation_candles: int = 168,
) -> dict[str, dict[str, dict[str, float]]]:
    """{event_type: {horizon: {n, mean_car, median_car, t_stat, share_positive}}} over all (event, coin) pairs
    whose coin has candles."""
    market = candles.get(market_symbol) if market_symbol else None
    samples: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for ev in events:
        for sym in ev.symbols:
            c = candles.get(sym)
            if c is None:
                continue
            ars = abnormal_returns(ev, sym, c, market if sym != market_symbol else None,
                                   estimation_candles=estimation_candles)
            for h, v in ars.items():
                samples[ev.type][h].append(v)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for etype, by_h in samples.items():
        out[etype] = {}
        for h in HORIZONS_H:
            vals = np.asarray(by_h.get(h, []), dtype=np.float64)
            if len(vals) == 0:
                continue
            sd = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
            out[etype][h] = {
                "n": float(len(vals)),
                "mean_car": float(vals.mean()),
                "median_car": float(np.median(vals)),
                "t_stat": float(vals.mean() / (sd / np.sqrt(len(vals)))) if sd > 0 else 0.0,
                "share_positive": float((vals > 0).mean()),
            }
    return out


class ImpactError(ValueError):
    """The analysis cannot run (e.g. no candles for a coin or the benchmark); the message says how to fix it."""


class CandleSource(Protocol):
    """Candles of one coin against a fixed quote at one timeframe (at most 1h, so the 1h horizon is one step)."""

    timeframe: str
    step_ms: int

    def pair(self, coin: str) -> str:
        """The market symbol of a coin, e.g. SOL -> SOL/USDT."""
        ...

    def candles(self, coin: str, start_ms: int, end_ms: int) -> Candles | None:
        """Candles opening in [start_ms, end_ms], ascending; None when there are fewer than two."""
        ...

    def missing_hint(self, coin: str) -> str:
        """A sentence saying that the coin has no candles and how to get them."""
        ...


def events_from_docs(docs: Sequence[Any], *, event_type: str | None = None,
                     symbol: str | None = None) -> list[EventObs]:
    """One observation per (document, event type), at the publication time; the coins are the document's
    detected coins (only `symbol` when given)."""
    out: list[EventObs] = []
    for d in docs:
        coins = tuple(c for c in d.symbols if symbol is None or c == symbol)
        if not coins:
            continue
        for etype in d.events:
            if event_type is None or etype == event_type:
                out.append(EventObs(d.published, etype, coins))
    return out


def impact_analysis(
    docs: Sequence[Any],
    source: CandleSource,
    *,
    event_type: str | None = None,
    symbol: str | None = None,
    market_symbol: str = "BTC",
) -> dict[str, Any]:
    """The event study of stored news events against candles from `source`, as a JSON-able report.

    Raises ImpactError when `symbol` or the benchmark has no candles over the events' window; other coins
    without candles are listed under `missing_candles` and left out.
    """
    events = events_from_docs(docs, event_type=event_type, symbol=symbol)
    report: dict[str, Any] = {
        "event_type": event_type, "symbol": source.pair(symbol) if symbol else None,
        "benchmark": source.pair(market_symbol), "timeframe": source.timeframe, "horizons": list(HORIZONS_H),
        "events": len(events), "coins": [], "missing_candles": [], "study": {},
        "method": "abnormal log return = coin return - (alpha + beta * benchmark return), market model fitted on "
        "the 7 days before each event (mean model for the benchmark itself); entry at the first candle opening "
        "at or after publication",
    }
    if not events:
        what = f"{event_type} events" if event_type else "events"
        report["note"] = f"no {what}{f' concerning {symbol}' if symbol else ''} in the knowledge base"
        return report
    t_ms = [int(e.time.timestamp() * 1000) for e in events]
    start = min(t_ms) - ESTIMATION_MS - 2 * source.step_ms
    end = max(t_ms) + (max(HORIZONS_H.values()) * HOUR_MS) + 2 * source.step_ms
    coins = sorted({c for e in events for c in e.symbols} | {market_symbol})
    loaded: dict[str, Candles] = {}
    missing: list[str] = []
    for coin in coins:
        c = source.candles(coin, start, end)
        if c is None:
            missing.append(coin)
        else:
            loaded[coin] = c
    needed = []
    if symbol and symbol not in loaded:
        needed.append(source.missing_hint(symbol))
    if market_symbol not in loaded and symbol != market_symbol:
        needed.append(f"{source.missing_hint(market_symbol)} (the benchmark for abnormal returns)")
    if needed:
        raise ImpactError("; ".join(needed))
    estimation = max(24, ESTIMATION_MS // source.step_ms)
    report["coins"] = sorted(loaded)
    report["missing_candles"] = [source.missing_hint(c) for c in missing[:20]]
    report["study"] = event_study(events, loaded, market_symbol=market_symbol, estimation_candles=estimation)
    if not report["study"]:
        report["note"] = "no event has candles after it for the 1h horizon"
    return report
