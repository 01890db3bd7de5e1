"""The price engine's use cases: train + evaluate + register, forecast with the model's measured skill attached,
store and list forecasts. Front doors (CLI, HTTP, agent tool, scheduler) call these."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from pymongo import DESCENDING
from pymongo.database import Database

from core.clock import utcnow
from core.queries import eq
from core.timeframes import SeriesMismatch, check_spacing
from models.lstm.adaptive import AdaptiveConformal
from models.lstm.config import LSTMConfig
from models.lstm.data import DataError, data_hash, normalise_candles, prepare
from models.lstm.engine import LSTMEngine
from models.lstm.evaluate import WalkForwardReport, walk_forward
from models.lstm.online import state_summary
from models.lstm.registry import ModelRecord, ModelRegistry, code_version
from models.lstm.status import REJECTED, describe, status_for
from models.lstm.train import fit
from models.lstm.volatility import variance_components

FORECASTS = "lstm_forecasts"
VOL_HISTORY = 1_000  # candles behind the interval's volatility scale at forecast time


class ForecastError(ValueError):
    """A readable reason a forecast or training run cannot be made."""


@dataclass
class TrainOutcome:
    record: ModelRecord
    report: WalkForwardReport | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        meta = self.record.metadata
        return {
            "model": self.record.summary(),
            "status_meaning": describe(self.record.status),
            "skill": meta.get("metrics", {}).get("summary"),
            "skill_h1": meta.get("metrics", {}).get("summary_h1"),
            "verdict": skill_verdict(meta.get("metrics", {}).get("summary"), meta.get("timeframe", ""))
            + interval_sentence(meta.get("metrics", {}).get("summary")),
            "walk_forward": meta.get("metrics", {}).get("walk_forward"),
            "final_fit": meta.get("final_fit"),
            "seconds": round(self.seconds, 1),
        }


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(float(x))


def skill_verdict(summary: dict[str, Any] | None, timeframe: str = "") -> str:
    """One plain sentence about the model's measured skill against the random walk."""
    if not summary or not _finite(summary.get("rmse_ratio_rw")):
        return "This model has no walk-forward evaluation: its skill is unknown; do not rely on the point forecast."
    h = summary.get("h")
    p = summary.get("dm_p")
    dacc = summary.get("dir_acc")
    steps = f"{h} step{'s' if h != 1 else ''}" + (f" ({timeframe} candles)" if timeframe else "")
    ratio = float(summary["rmse_ratio_rw"])
    p_txt = f"DM p={float(p):.2f}" if isinstance(p, int | float) and math.isfinite(p) else "DM test n/a"
    d_txt = f", direction right {float(dacc):.0%} of the time" if isinstance(dacc, int | float) else ""
    if summary.get("beats_random_walk"):
        return (
            f"On walk-forward tests {steps} ahead the model beat the random walk: RMSE {ratio:.3f}x the random "
            f"walk's ({p_txt}{d_txt})."
        )
    return (
        f"This model does NOT beat a random walk {steps} ahead: on walk-forward tests its RMSE is {ratio:.3f}x the "
        f"random walk's ({p_txt}{d_txt}). Treat the point forecast as no better than 'the price stays where it "
        f"is'; the interval is the useful part."
    )


def interval_sentence(step: dict[str, Any] | None) -> str:
    """' ' + one sentence on the interval's walk-forward coverage and width against GARCH(1,1), or ''."""
    if not step or not _finite(step.get("coverage")) or not _finite(step.get("interval")):
        return ""
    level, cov = float(step["interval"]), float(step["coverage"])
    out = f" Its {level:.0%} interval covered {cov:.1%} of outcomes on walk-forward tests"
    g_cov, ratio = step.get("coverage_garch"), step.get("width_ratio_garch_matched")
    if isinstance(g_cov, int | float) and isinstance(ratio, int | float) and _finite(g_cov) and _finite(ratio):
        sharper = "narrower" if ratio < 1.0 else "wider"
        out += f" (GARCH(1,1)'s covered {g_cov:.1%}; at equal coverage ours is {abs(1 - ratio):.0%} {sharper})"
    return out + "."


def _summary_ok(summary: dict[str, Any]) -> bool:
    return all(_finite(summary.get(k)) for k in ("rmse_ratio_rw", "coverage"))


def train_and_register(
    candles: pd.DataFrame,
    *,
    symbol: str,
    timeframe: str,
    registry: ModelRegistry,
    config: LSTMConfig | None = None,
    pair: pd.DataFrame | None = None,
    pair_symbol: str | None = None,
    evaluate: bool = True,
    source: str = "",
) -> TrainOutcome:
    """Walk-forward evaluation, then a final fit on all candles, then registration with the measured skill."""
    config = config or LSTMConfig()
    t0 = time.perf_counter()
    candles = normalise_candles(candles)
    # a model registered as 1h must have learnt from 1h candles (daily ones would be served as hourly forecasts)
    try:
        check_spacing(candles["timestamp_ms"].to_numpy(), timeframe, f"the {symbol} candles")
    except SeriesMismatch as exc:
        raise DataError(str(exc)) from None
    prep = prepare(candles, config, pair)
    report = walk_forward(prep, config) if evaluate else None
    engine, info = fit(prep, config, 0, len(prep), desc="final fit")
    metrics: dict[str, Any] = {}
    status = status_for(None)
    if report is not None:
        metrics = {
            "summary": report.summary(),
            "summary_h1": report.summary(1),
            "walk_forward": report.to_dict(),
        }
        status = status_for(metrics["summary"], metrics["summary_h1"])
        if not _summary_ok(metrics["summary"]):
            status = REJECTED
    if not math.isfinite(info.best_val_loss):
        status = REJECTED
    ts = candles["timestamp_ms"]
    meta = {
        "data_range": {
            "from_ms": int(ts.iloc[0]),
            "to_ms": int(ts.iloc[-1]),
            "from": _iso(int(ts.iloc[0])),
            "to": _iso(int(ts.iloc[-1])),
            "n_candles": len(candles),
        },
        "data_hash": data_hash(candles),
        "data_source": source,
        "pair_symbol": pair_symbol,
        "metrics": metrics,
        "final_fit": info.to_dict(),
        "calibration": engine.calibration.summary(),
        "code_version": code_version(),
    }
    record = registry.register(engine, symbol=symbol, timeframe=timeframe, metadata=meta, status=status)
    return TrainOutcome(record=record, report=report, seconds=time.perf_counter() - t0)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _step_ms(candles: pd.DataFrame) -> int:
    diffs = np.diff(candles["timestamp_ms"].to_numpy(dtype=np.int64)[-200:])
    return int(np.median(diffs)) if diffs.size else 0


def step_skill(record: ModelRecord, h: int) -> dict[str, Any] | None:
    steps = (record.metrics.get("walk_forward") or {}).get("steps") or []
    if not steps:
        return None
    s = steps[max(1, min(h, len(steps))) - 1]
    keys = (
        "h", "n", "rmse_ratio_rw", "dir_acc", "coverage", "dm_stat", "dm_p", "beats_random_walk", "calibrated",
        "mean_width", "coverage_garch", "mean_width_garch", "width_ratio_garch", "width_ratio_garch_matched",
        "coverage_empirical", "mean_width_empirical",
    )
    out = {k: s.get(k) for k in keys if k in s}
    out["interval"] = (record.metrics.get("walk_forward") or {}).get("interval")
    return out


def make_forecast(
    engine: LSTMEngine,
    record: ModelRecord,
    candles: pd.DataFrame,
    *,
    horizon: int | None = None,
    pair: pd.DataFrame | None = None,
    now: datetime | None = None,
    interval_state: AdaptiveConformal | None = None,
) -> dict[str, Any]:
    """Forecast from the latest candle: price path with interval, the model's measured skill at that horizon, and
    a plain verdict. Uses only the tail of the candles the model needs. With `interval_state` (the running
    service's adaptive conformal state, advanced through these candles) the interval uses its offsets; without, the
    split calibration's."""
    config = engine.config
    h = config.horizon if horizon is None else horizon
    if not 1 <= h <= config.horizon:
        raise ForecastError(f"this model forecasts 1..{config.horizon} steps ahead; asked for {h}")
    if "pair" in config.features and pair is None:
        raise ForecastError(
            f"this model uses a second symbol's returns ({record.metadata.get('pair_symbol')}); give its candles"
        )
    candles = normalise_candles(candles)
    need = 3 * config.window + 2
    if len(candles) < config.window + 2:
        raise ForecastError(f"need at least {config.window + 2} candles to forecast; got {len(candles)}")
    tail = candles.iloc[-need:].reset_index(drop=True)
    try:
        check_spacing(tail["timestamp_ms"].to_numpy(), record.timeframe, f"the candles for a {record.timeframe} model")
    except SeriesMismatch as exc:
        raise ForecastError(str(exc)) from None
    # prepare() wants room for targets; forecasting needs features only, so build them directly
    from models.lstm.data import build_features, trailing_vol

    feats = build_features(tail, config, pair)
    if not np.isfinite(feats[-config.window :]).all():
        raise ForecastError("the last window has gaps (missing pair candles?)")
    # the interval's volatility scale wants a longer history than the window (its slow EWMA)
    closes = candles["close"].to_numpy(dtype=np.float64)[-VOL_HISTORY:]
    rets = np.r_[np.nan, np.diff(np.log(closes))]
    components = variance_components(rets, trailing_vol(rets, config.window))[-1]
    window = engine.scaler.features(np.nan_to_num(feats[-config.window :])).astype(np.float32)
    offsets: list[float] | None = None
    if interval_state is not None:
        issued = interval_state.issued.get(int(tail["timestamp_ms"].iloc[-1]))
        offsets = issued if issued is not None else interval_state.offsets()
    bands = engine.predict_window(window, components, offsets)
    last_close = float(tail["close"].iloc[-1])
    last_ts = int(tail["timestamp_ms"].iloc[-1])
    step = _step_ms(tail)
    path = [
        {
            "step": j + 1,
            "timestamp_ms": last_ts + (j + 1) * step,
            "price": last_close * math.exp(float(bands.mu[0, j])),
            "lower": last_close * math.exp(float(bands.lo[0, j])),
            "upper": last_close * math.exp(float(bands.hi[0, j])),
        }
        for j in range(h)
    ]
    skill = step_skill(record, h)
    now = now or utcnow()
    age_h = (now.timestamp() * 1000 - last_ts) / 3_600_000
    final = path[-1]
    return {
        "symbol": record.symbol,
        "timeframe": record.timeframe,
        "model_id": record.model_id,
        "model_version": record.version,
        "trained_on": record.metadata.get("data_range"),
        "as_of": _iso(last_ts),
        "as_of_ms": last_ts,
        "data_age_hours": round(age_h, 2),
        "stale": bool(step > 0 and now.timestamp() * 1000 - last_ts > 3 * step),
        "last_close": last_close,
        "horizon": h,
        "interval": config.interval,
        "final": {
            "timestamp": _iso(int(final["timestamp_ms"])),
            "price": final["price"],
            "lower": final["lower"],
            "upper": final["upper"],
            "return_pct": 100.0 * (final["price"] / last_close - 1.0),
        },
        "path": path,
        "skill": skill,
        "beats_random_walk": bool(skill and skill.get("beats_random_walk")),
        "verdict": skill_verdict(skill, record.timeframe) + interval_sentence(skill),
        "status": record.status,
        "status_meaning": describe(record.status),
        "interval_calibration": {
            **({} if interval_state is None else state_summary(interval_state, h)),
            "online": interval_state is not None,
        },
    }


class ForecastStore:
    """Forecasts as shown, kept in Mongo (`lstm_forecasts`) for GET /predictions and audit."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.col = db[FORECASTS]
        self.col.create_index([("symbol", 1), ("timeframe", 1), ("created_at", 1)])

    def save(self, forecast: dict[str, Any]) -> str:
        doc = {**forecast, "created_at": utcnow()}
        doc.pop("_id", None)
        return str(self.col.insert_one(doc).inserted_id)

    def latest(self, symbol: str, timeframe: str | None = None) -> dict[str, Any] | None:
        query = eq(symbol=symbol, **({"timeframe": timeframe} if timeframe else {}))  # served by the index
        doc = self.col.find_one(query, sort=[("created_at", DESCENDING)], projection={"_id": 0})
        if doc and isinstance(doc.get("created_at"), datetime):
            doc["created_at"] = doc["created_at"].isoformat()
        return doc

    def latest_per_symbol(self, symbols: list[str], timeframe: str | None = None) -> dict[str, dict[str, Any] | None]:
        return {s: self.latest(s, timeframe) for s in symbols}


class NoModelError(ForecastError):
    """No served model is registered for the symbol and timeframe."""


_ENGINES: OrderedDict[str, LSTMEngine] = OrderedDict()
_ENGINES_MAX = 8
_ENGINES_LOCK = threading.Lock()


def load_engine(registry: ModelRegistry, symbol: str, timeframe: str) -> tuple[ModelRecord, LSTMEngine]:
    """Newest served model (any evaluated status, never rejected or retired) for symbol+timeframe; loaded engines
    (and their compiled functions) are cached."""
    record = registry.latest(symbol, timeframe)
    if record is None:
        raise NoModelError(
            f"no trained model for {symbol} {timeframe}: run `crypto-agent train --symbol {symbol} "
            f"--timeframe {timeframe}` first"
        )
    key = f"{record.path}"
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is not None:
            _ENGINES.move_to_end(key)
            return record, engine
    engine = registry.load(record)
    with _ENGINES_LOCK:
        _ENGINES[key] = engine
        while len(_ENGINES) > _ENGINES_MAX:
            _ENGINES.popitem(last=False)
    return record, engine
