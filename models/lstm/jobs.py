"""Scheduled retraining: one job function the scheduler registers (e.g. daily). Each symbol is trained, evaluated
walk-forward and registered; a failure on one symbol is reported in the result and does not stop the others."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pymongo.database import Database

from models.lstm.config import LSTMConfig
from models.lstm.data import DataError

log = logging.getLogger(__name__)

CandleLoader = Callable[[str, str], pd.DataFrame]


def default_models_root() -> Path:
    from core.settings import get_settings

    return get_settings().data_dir / "models" / "lstm"


def retrain_job(
    symbols: Sequence[str],
    timeframe: str = "1h",
    *,
    db: Database[dict[str, Any]] | None = None,
    root: Path | None = None,
    config: LSTMConfig | None = None,
    limit: int = 5_000,
    exchange: str | None = None,
    candle_loader: CandleLoader | None = None,
) -> list[dict[str, Any]]:
    """Retrain every symbol; returns one result per symbol ({symbol, ok, model|error, skill, verdict})."""
    from models.lstm.registry import ModelRegistry
    from models.lstm.service import train_and_register
    from models.lstm.sources import from_market

    if db is None:
        from core.storage import get_db

        db = get_db()
    registry = ModelRegistry(db, root or default_models_root())
    config = (config or LSTMConfig()).with_(progress=False)
    results: list[dict[str, Any]] = []
    for symbol in symbols:
        try:
            if candle_loader is not None:
                candles, source, simulated = candle_loader(symbol, timeframe), "loader", False
            else:
                batch = from_market(symbol, timeframe, limit, exchange)
                candles, source, simulated = batch.candles, batch.source, batch.simulated
            outcome = train_and_register(
                candles, symbol=symbol, timeframe=timeframe, registry=registry, config=config, source=source
            )
            out = outcome.to_dict()
            results.append(
                {
                    "symbol": symbol,
                    "timeframe": timeframe,
                    "ok": True,
                    "simulated_data": simulated,
                    "model": out["model"],
                    "skill": out["skill"],
                    "verdict": out["verdict"],
                }
            )
            log.info("lstm retrain %s %s: %s", symbol, timeframe, out["model"]["model_id"])
        except (DataError, ValueError, OSError) as exc:
            log.warning("lstm retrain %s %s failed: %s", symbol, timeframe, exc)
            results.append({"symbol": symbol, "timeframe": timeframe, "ok": False, "error": str(exc)})
        except Exception as exc:  # a job must report, not die: keep the trace for the log
            log.error("lstm retrain %s %s crashed:\n%s", symbol, timeframe, traceback.format_exc())
            error = f"{type(exc).__name__}: {exc}"
            results.append({"symbol": symbol, "timeframe": timeframe, "ok": False, "error": error})
    return results


def update_intervals_job(
    symbols: Sequence[str],
    timeframe: str = "1h",
    *,
    db: Database[dict[str, Any]] | None = None,
    root: Path | None = None,
    limit: int = 1_000,
    exchange: str | None = None,
    candle_loader: CandleLoader | None = None,
) -> list[dict[str, Any]]:
    """Advance each served model's adaptive interval state through the candles closed since it last ran (run it
    after each candle closes, e.g. hourly); one result per symbol ({symbol, ok, learnt, updated_through|error})."""
    from models.lstm.online import IntervalStateStore, updated_state
    from models.lstm.registry import ModelRegistry
    from models.lstm.service import NoModelError, load_engine
    from models.lstm.sources import from_market

    if db is None:
        from core.storage import get_db

        db = get_db()
    registry = ModelRegistry(db, root or default_models_root())
    store = IntervalStateStore(db)
    results: list[dict[str, Any]] = []
    for symbol in symbols:
        try:
            record, engine = load_engine(registry, symbol, timeframe)
            if "pair" in engine.config.features:
                raise DataError("models with a pair feature are updated when they forecast")
            if candle_loader is not None:
                candles = candle_loader(symbol, timeframe)
            else:
                candles = from_market(symbol, timeframe, limit, exchange).candles
            state, learnt = updated_state(store, engine, record, candles)
            results.append({"symbol": symbol, "timeframe": timeframe, "ok": True, "model_id": record.model_id,
                            "learnt": learnt, "updated_through_ms": state.last_key})
        except (NoModelError, DataError, ValueError, OSError) as exc:
            results.append({"symbol": symbol, "timeframe": timeframe, "ok": False, "error": str(exc)})
        except Exception as exc:  # a job must report, not die
            log.error("interval update %s %s crashed:\n%s", symbol, timeframe, traceback.format_exc())
            results.append({"symbol": symbol, "timeframe": timeframe, "ok": False,
                            "error": f"{type(exc).__name__}: {exc}"})
    return results
