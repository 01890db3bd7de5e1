"""HTTP: POST /v1/backtests runs a strategy backtest (scope read) and returns metrics, buy and hold, trades."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import Field, field_validator

from agent.api.auth import require_scope
from tools.backtest import StrategyArgs

router = APIRouter(tags=["backtests"])


class BacktestRequest(StrategyArgs):
    candles: list[list[list[float]]] | None = Field(
        default=None, max_length=2,
        description="optional candles per symbol: [[timestamp_ms, open, high, low, close, volume], ...] oldest "
        "first (default: the candle store / market source)",
    )
    limit: int = Field(default=2000, ge=50, le=20_000)
    mode: Literal["event", "vectorized"] = "event"
    initial_cash: float = Field(default=10_000.0, gt=0, le=1e12)
    fee: float = Field(default=0.001, ge=0, le=0.05)
    slippage: float = Field(default=0.0005, ge=0, le=0.05)
    participation: float = Field(default=0.1, gt=0, le=1)
    breakers: bool = False
    book: Literal["auto", "cash", "relative_value"] = Field(
        default="auto", description="auto: pairs trade spot relative value around an inventory in both legs "
        "(no shorting below zero), single symbols start in cash")
    inventory: float = Field(default=0.4, gt=0, le=0.5, description="relative_value: equity fraction per leg")
    tilt: float = Field(default=0.4, gt=0, le=1, description="relative_value: scale of the spread weights")
    include_chart: bool = False
    include_equity: bool = Field(
        default=False, description="add `equity_curve` ([timestamp_ms, equity, buy_and_hold_equity], at most 1000 "
        "points) and each trade's entry_ms/exit_ms (the web desk draws them)")
    optimize: Literal["grid", "optuna"] | None = Field(default=None, description="walk-forward parameter search")
    folds: int = Field(default=4, ge=1, le=20)

    @field_validator("candles")
    @classmethod
    def _candles(cls, v: list[list[list[float]]] | None) -> list[list[list[float]]] | None:
        if v is None:
            return v
        for s, series in enumerate(v):
            if len(series) > 100_000:
                raise ValueError(f"series {s}: at most 100000 candles")
            for i, row in enumerate(series):
                if len(row) != 6:
                    raise ValueError(f"series {s} candle {i} has {len(row)} values; need 6")
        return v


def _bars(req: BacktestRequest) -> tuple[list[Any], list[str]]:
    from trading.backtest.data import DataError, _validate, load_market

    if req.candles is not None:
        if len(req.candles) != len(req.symbols):
            raise HTTPException(422, detail="candles must have one series per symbol")
        out = []
        for sym, series in zip(req.symbols, req.candles, strict=True):
            cols = {c: [float(r[k]) for r in series] for k, c in
                    enumerate(("open", "high", "low", "close", "volume"), start=1)}
            try:
                out.append(_validate([int(r[0]) for r in series], cols, f"candles for {sym}", sym))
            except DataError as exc:
                raise HTTPException(422, detail=str(exc)) from exc
        notes = ["request body"] * len(out)
        if "timeframe" not in req.model_fields_set:  # not given: the candles' spacing says it (and the reply)
            from core.timeframes import SeriesMismatch, resolve_series

            try:
                found = resolve_series(out[0].timestamp_ms, timeframe=None, symbol=out[0].symbol,
                                       what=f"the {out[0].symbol} candles")
            except SeriesMismatch as exc:
                raise HTTPException(422, detail=str(exc)) from exc
            req.timeframe = found.timeframe
            notes = [f"request body; {n}" for n in found.notes] or notes
            notes = notes + ["request body"] * (len(out) - len(notes))
        return out, notes
    bars, notes = [], []
    for sym in req.symbols:
        try:
            b, note = load_market(sym, req.timeframe, req.limit)
        except DataError as exc:
            raise HTTPException(404, detail=str(exc)) from exc
        bars.append(b)
        notes.append(f"{sym}: {note}")
    return bars, notes


def _add_equity(out: dict[str, Any], res: Any, max_points: int = 1000) -> None:
    """The equity curve thinned to at most `max_points` (the last bar always kept) and trade times in ms."""
    ts, eq = res.timestamps, res.equity
    n = len(eq)
    bh = res.bh_equity if res.bh_equity is not None and len(res.bh_equity) == n else None
    stride = max(1, -(-n // max_points))
    idx = list(range(0, n, stride))
    if idx and idx[-1] != n - 1:
        idx.append(n - 1)
    out["equity_curve"] = [
        [int(ts[i]), round(float(eq[i]), 6), None if bh is None else round(float(bh[i]), 6)] for i in idx
    ]
    out["equity_columns"] = ["timestamp_ms", "equity", "buy_and_hold"]
    for trade in out.get("trades", []):
        for bar, key in (("entry_bar", "entry_ms"), ("exit_bar", "exit_ms")):
            i = trade.get(bar)
            trade[key] = int(ts[i]) if isinstance(i, int) and 0 <= i < n else None


@router.post("/v1/backtests", dependencies=[Depends(require_scope("read"))])
def create_backtest(req: BacktestRequest) -> dict[str, Any]:
    from trading.backtest.service import backtest, optimize

    bars, notes = _bars(req)
    try:
        if req.optimize:
            out = optimize(req.strategy, bars, req.timeframe, method=req.optimize, folds=req.folds,
                           fixed=dict(req.params) or None, fee=req.fee, slippage=req.slippage)
            out["data"] = notes
            return out
        with tempfile.TemporaryDirectory() as tmp:
            chart = Path(tmp) / "equity.png" if req.include_chart else None
            res, out = backtest(req.strategy, bars, req.timeframe, dict(req.params), req.mode, req.initial_cash,
                              req.fee, req.slippage, req.participation, req.breakers, chart, req.book,
                              req.inventory, req.tilt)
            if chart is not None:
                out["chart_png_base64"] = base64.b64encode(chart.read_bytes()).decode()
                out.pop("chart", None)
            if req.include_equity:
                _add_equity(out, res)
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    out["data"] = notes
    return out
