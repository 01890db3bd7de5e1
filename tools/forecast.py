"""Price forecasts from the LSTM engine, always with the model's measured skill.

`forecast_price` is the agent tool; `run_forecast` and `run_train` are the shared entry points behind the CLI and
the HTTP routes. TensorFlow is imported only when a forecast or training actually runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from core.strict import StrictModel
from tools.registry import ToolError, tool

if TYPE_CHECKING:
    import pandas as pd
    from pymongo.database import Database

    from models.lstm.config import LSTMConfig

TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
_SYMBOL = re.compile(r"^[A-Z0-9]{2,12}/[A-Z0-9]{2,8}$")
FORECAST_HISTORY = 1_000  # candles fetched for a forecast (about 3 windows, and the interval's volatility history)


def norm_symbol(value: str) -> str:
    value = value.strip().upper().replace("-", "/").replace("_", "/")
    if "/" not in value:
        for quote in ("USDT", "USDC", "USD", "BTC", "ETH", "EUR"):
            if value.endswith(quote) and len(value) > len(quote):
                value = f"{value[: -len(quote)]}/{quote}"
                break
    if not _SYMBOL.match(value):
        raise ValueError("symbol must look like BASE/QUOTE, e.g. BTC/USDT")
    return value


def check_timeframe(value: str) -> str:
    if value not in TIMEFRAMES:
        raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAMES)}")
    return value


def models_root() -> Path:
    from models.lstm.jobs import default_models_root

    return default_models_root()


def _db() -> Database[dict[str, Any]]:
    from core.storage import get_db

    return get_db()


def load_candles(
    symbol: str, timeframe: str, *, data_path: str | None = None, limit: int = FORECAST_HISTORY
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Candles from a CSV file when given, else from the market-data layer; plus a description of the source."""
    from models.lstm.sources import from_file, from_market

    batch = from_file(data_path) if data_path else from_market(symbol, timeframe, limit)
    return batch.candles, batch.describe()


def run_forecast(
    symbol: str,
    timeframe: str = "1h",
    horizon: int = 24,
    *,
    candles: pd.DataFrame | None = None,
    data_path: str | None = None,
    db: Database[dict[str, Any]] | None = None,
    root: Path | None = None,
    chart_path: Path | None = None,
    store: bool = True,
    pair: pd.DataFrame | None = None,
    pair_path: str | None = None,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Load the newest served model (models.lstm.status), learn the interval from newly closed candles, forecast from
    the latest candles, optionally write a PNG chart, store it.

    Raises models.lstm.data.DataError / models.lstm.service.ForecastError with readable messages."""
    from models.lstm.charts import forecast_chart_png
    from models.lstm.registry import ModelRegistry
    from models.lstm.service import ForecastError, ForecastStore, load_engine, make_forecast

    database = db if db is not None else _db()
    registry = ModelRegistry(database, root or models_root())
    record, engine = load_engine(registry, symbol, timeframe)
    if candles is not None:
        source = source or {"source": "request", "simulated": False, "n_candles": len(candles)}
    else:
        candles, source = load_candles(symbol, timeframe, data_path=data_path)
    if pair is None and "pair" in engine.config.features:
        pair_symbol = record.metadata.get("pair_symbol")
        if not pair_path and not pair_symbol:
            raise ForecastError("this model uses a second symbol's returns; give that symbol's candles")
        pair, _ = load_candles(str(pair_symbol or ""), timeframe, data_path=pair_path)
    # the interval's adaptive state learns from the candles closed since it last ran, and is stored again
    from models.lstm.online import IntervalStateStore, updated_state

    state, _ = updated_state(IntervalStateStore(database), engine, record, candles, pair)
    result = make_forecast(engine, record, candles, horizon=horizon, pair=pair, interval_state=state)
    result["data"] = source
    if source.get("simulated"):
        result["verdict"] += " The candles are SIMULATED (no real venue answered)."
    if chart_path is not None:
        chart_path.parent.mkdir(parents=True, exist_ok=True)
        chart_path.write_bytes(forecast_chart_png(candles, result))
        result["chart"] = str(chart_path)
    if store:
        ForecastStore(database).save(dict(result))
    return result


def run_train(
    symbol: str,
    timeframe: str = "1h",
    *,
    config: LSTMConfig | None = None,
    data_path: str | None = None,
    pair_symbol: str | None = None,
    pair_path: str | None = None,
    limit: int = 5_000,
    db: Database[dict[str, Any]] | None = None,
    root: Path | None = None,
) -> dict[str, Any]:
    from models.lstm.registry import ModelRegistry
    from models.lstm.service import train_and_register

    candles, source = load_candles(symbol, timeframe, data_path=data_path, limit=limit)
    pair = None
    if pair_symbol or pair_path:
        pair, _ = load_candles(pair_symbol or "", timeframe, data_path=pair_path, limit=limit)
    database = db if db is not None else _db()
    registry = ModelRegistry(database, root or models_root())
    simulated = bool(source.get("simulated"))
    outcome = train_and_register(
        candles,
        symbol=symbol,
        timeframe=timeframe,
        registry=registry,
        config=config,
        pair=pair,
        pair_symbol=pair_symbol,
        source=str(source.get("source", "")) + (" (simulated)" if simulated else ""),
    )
    out = outcome.to_dict()
    out["data"] = source
    if simulated:
        out["verdict"] += " It was trained and evaluated on SIMULATED candles (no real venue answered)."
    return out


def compact(forecast: dict[str, Any], max_points: int = 24) -> dict[str, Any]:
    """A short, JSON-able view for the model: final price + interval, a thinned path, skill and verdict."""

    def sig(x: Any) -> Any:
        return float(f"{x:.7g}") if isinstance(x, float) else x

    path = forecast["path"]
    stride = max(1, -(-len(path) // max_points))
    thinned = path[stride - 1 :: stride]
    if thinned[-1] is not path[-1]:
        thinned.append(path[-1])
    skill = forecast.get("skill") or {}
    out = {
        "symbol": forecast["symbol"],
        "timeframe": forecast["timeframe"],
        "model": forecast["model_id"],
        "as_of": forecast["as_of"],
        "stale": forecast["stale"],
        "last_close": sig(forecast["last_close"]),
        "horizon": forecast["horizon"],
        "interval": forecast["interval"],
        "final": {k: (round(v, 3) if k == "return_pct" else sig(v)) for k, v in forecast["final"].items()},
        "path": [[p["step"], sig(p["price"]), sig(p["lower"]), sig(p["upper"])] for p in thinned],
        "path_columns": ["step", "price", "lower", "upper"],
        "skill": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in skill.items()},
        "beats_random_walk": forecast["beats_random_walk"],
        "verdict": forecast["verdict"],
        "status": forecast.get("status"),
        "interval_calibration": {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in (forecast.get("interval_calibration") or {}).items()
        },
        "data": forecast.get("data"),
    }
    if "chart" in forecast:
        out["chart"] = forecast["chart"]
    return out


class ForecastArgs(StrictModel):
    symbol: str = Field(min_length=3, max_length=30, description="Market symbol, e.g. BTC/USDT")
    timeframe: str = Field(default="1h", description=f"Candle timeframe, one of {', '.join(TIMEFRAMES)}")
    horizon: int = Field(default=24, ge=1, le=500, description="Steps (candles) ahead; at most the model's horizon")
    chart: bool = Field(default=False, description="Also write a PNG chart of history, forecast and interval")

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        return norm_symbol(v)

    @field_validator("timeframe")
    @classmethod
    def _tf(cls, v: str) -> str:
        return check_timeframe(v)


@tool(
    name="forecast_price",
    description="LSTM price forecast with an 80% interval for the next N candles, plus the model's measured "
    "walk-forward skill against a random walk. If beats_random_walk is false, say plainly that the forecast is no "
    "better than assuming the price stays where it is. The interval is conformal-calibrated and updated as candles "
    "close; skill.coverage is its walk-forward coverage and interval_calibration its recent coverage.",
    args=ForecastArgs,
)
def forecast_price(args: ForecastArgs) -> dict[str, Any]:
    from models.lstm.data import DataError
    from models.lstm.service import ForecastError

    chart_path = None
    if args.chart:
        from core.clock import utcnow
        from core.settings import get_settings

        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        chart_path = get_settings().data_dir / "charts" / f"forecast_{args.symbol.replace('/', '-')}_{stamp}.png"
    try:
        result = run_forecast(args.symbol, args.timeframe, args.horizon, chart_path=chart_path)
    except (DataError, ForecastError) as exc:
        raise ToolError(str(exc)) from exc
    return compact(result)
