"""HTTP: POST /v1/forecasts (a fresh LSTM forecast with its measured skill) and GET /predictions (the latest stored
forecast per configured symbol)."""

from __future__ import annotations

import base64
import math
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import Field, field_validator

from agent.api.auth import require_scope
from core.cache import TTLCache
from core.strict import StrictModel
from tools.forecast import TIMEFRAMES, check_timeframe, compact, norm_symbol

router = APIRouter(tags=["forecasts"])


class ForecastRequest(StrictModel):
    symbol: str = Field(min_length=3, max_length=30, examples=["BTC/USDT"])
    timeframe: str = Field(default="1h", description=f"one of {', '.join(TIMEFRAMES)}")
    horizon: int = Field(default=24, ge=1, le=500, description="steps ahead, at most the model's horizon")
    candles: list[list[float]] | None = Field(
        default=None,
        max_length=20_000,
        description="optional recent candles [timestamp_ms, open, high, low, close, volume], oldest first; "
        "default: the market source",
    )
    include_chart: bool = Field(default=False, description="add a base64 PNG chart of history, forecast, interval")
    full_path: bool = Field(default=False, description="every step of the path instead of a thinned one")

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        return norm_symbol(v)

    @field_validator("timeframe")
    @classmethod
    def _tf(cls, v: str) -> str:
        return check_timeframe(v)

    @field_validator("candles")
    @classmethod
    def _candles(cls, v: list[list[float]] | None) -> list[list[float]] | None:
        if v is None:
            return v
        for i, row in enumerate(v):
            if len(row) != 6:
                raise ValueError(
                    f"candle {i} has {len(row)} values; need 6 (timestamp_ms, open, high, low, close, volume)"
                )
            if not all(math.isfinite(x) for x in row):
                raise ValueError(f"candle {i} has a non-finite value")
        return v


def _db(request: Request) -> Any:
    db = getattr(request.app.state, "db", None)
    if db is None:
        from core.storage import get_db

        db = get_db()
    return db


def _settings(request: Request) -> Any:
    settings = getattr(request.app.state, "settings", None)
    if settings is None:
        from core.settings import get_settings

        settings = get_settings()
    return settings


def _symbols(request: Request) -> list[str]:
    return list(_settings(request).symbols)


PREDICTIONS_TTL_S = 5.0


@router.post("/v1/forecasts", dependencies=[Depends(require_scope("read"))])
def create_forecast(body: ForecastRequest, request: Request) -> dict[str, Any]:
    """Forecast from the newest good model. The answer always carries `skill` (walk-forward RMSE ratio to the
    random walk, directional accuracy, interval coverage, Diebold-Mariano p) and a plain `verdict`."""
    from models.lstm.data import DataError, candles_from_rows
    from models.lstm.registry import ModelRegistry
    from models.lstm.service import ForecastError, NoModelError
    from models.lstm.sources import CandleSourceUnavailable
    from tools.forecast import load_candles, run_forecast

    db = _db(request)
    root = _settings(request).data_dir / "models" / "lstm"
    if body.candles and "timeframe" not in body.model_fields_set:  # not given: the candles' spacing picks the model
        from core.timeframes import median_step_ms, timeframe_of_step

        step = median_step_ms([int(r[0]) for r in body.candles])
        inferred = timeframe_of_step(step) if step is not None else None
        if inferred is None or inferred not in TIMEFRAMES:
            raise HTTPException(status_code=422, detail="give timeframe: the candles' spacing is none of "
                                + ", ".join(TIMEFRAMES))
        body.timeframe = inferred
    if ModelRegistry(db, root).latest(body.symbol, body.timeframe) is None:
        raise HTTPException(
            status_code=404,
            detail=f"no trained model for {body.symbol} {body.timeframe}: run `crypto-agent train --symbol "
            f"{body.symbol} --timeframe {body.timeframe}` first",
        )
    try:
        source = None
        if body.candles is not None:
            candles = candles_from_rows(body.candles)
        else:  # fetched here (not inside run_forecast) so that the chart can reuse them
            candles, source = load_candles(body.symbol, body.timeframe)
        result = run_forecast(
            body.symbol, body.timeframe, body.horizon, candles=candles, source=source, db=db, root=root
        )
    except NoModelError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except CandleSourceUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    except (DataError, ForecastError) as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    out = compact(result, max_points=result["horizon"] if body.full_path else 24)
    if body.include_chart:
        from models.lstm.charts import forecast_chart_png

        out["chart_png_base64"] = base64.b64encode(forecast_chart_png(candles, result)).decode()
    return out


@router.get("/predictions", dependencies=[Depends(require_scope("read"))])
async def predictions(
    request: Request, timeframe: str | None = Query(default=None, description="filter by timeframe")
) -> dict[str, Any]:
    """The latest stored forecast per configured symbol (null where none was made yet); at most a few seconds old
    (forecasts change hourly at most, dashboards poll often)."""
    from models.lstm.service import ForecastStore

    if timeframe is not None and timeframe not in TIMEFRAMES:
        raise HTTPException(status_code=422, detail=f"timeframe must be one of {', '.join(TIMEFRAMES)}")
    db, symbols = _db(request), _symbols(request)

    def load() -> dict[str, Any]:
        latest = ForecastStore(db).latest_per_symbol(symbols, timeframe)
        return {
            "predictions": {
                sym: (None if doc is None else {**compact(doc), "created_at": doc.get("created_at")})
                for sym, doc in latest.items()
            }
        }

    cache = getattr(request.app.state, "predictions_cache", None)
    if cache is None:
        cache = request.app.state.predictions_cache = TTLCache(PREDICTIONS_TTL_S)
    return await cache.aget_or_compute((tuple(symbols), timeframe), load)
