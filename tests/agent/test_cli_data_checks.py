"""Timeframe and symbol checked against the data (spacing, file name) and clean settings errors, at every door."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.cli import main
from core.timeframes import SeriesMismatch, check_spacing, median_step_ms, parse_series_name, resolve_series

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
START_MS = 1_704_067_200_000  # 2024-01-01T00:00Z, fixed: nothing here reads the clock


def write_candles(path: Path, n: int, step_ms: int, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(0.02 * rng.standard_normal(n)))
    lines = ["timestamp_ms,open,high,low,close,volume"]
    for i in range(n):
        c = close[i]
        lines.append(f"{START_MS + i * step_ms},{c:.6f},{c * 1.01:.6f},{c * 0.99:.6f},{c:.6f},{50 + i % 7}")
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------------------------ pure rules
def test_spacing_is_the_median_step_despite_gaps_and_order() -> None:
    ts = [START_MS + i * HOUR_MS for i in range(100) if i % 10 != 3]  # gaps
    assert median_step_ms(list(reversed(ts))) == HOUR_MS
    assert median_step_ms([START_MS]) is None
    check_spacing(ts, "1h")
    with pytest.raises(SeriesMismatch, match=r"1h apart .* timeframe is 1d; use timeframe 1h"):
        check_spacing(ts, "1d")
    with pytest.raises(SeriesMismatch, match=r"1\.5 hours apart"):
        check_spacing([START_MS + i * 5_400_000 for i in range(10)], "1h")


@pytest.mark.parametrize(
    ("name", "exchange", "symbol", "timeframe"),
    [
        ("binance_BTC_USDT-1h.csv", "binance", "BTC/USDT", "1h"),
        ("BTC_USDT-1d.json", None, "BTC/USDT", "1d"),
        ("ETH_USDT_USDT-4h-futures.json", None, "ETH/USDT", "4h"),
        ("kraken_SOL_USD-15m.csv", "kraken", "SOL/USD", "15m"),
        ("candles.csv", None, None, None),
        ("BTC_USDT-1M.json", None, None, None),  # months are no fixed spacing: the name says nothing usable
    ],
)
def test_file_names_say_venue_symbol_timeframe(name: str, exchange: str | None, symbol: str | None,
                                                timeframe: str | None) -> None:
    got = parse_series_name(Path("/some/dir") / name)
    assert (got.exchange, got.symbol, got.timeframe) == (exchange, symbol, timeframe)


def test_resolve_fills_what_is_missing_and_refuses_conflicts() -> None:
    daily = [START_MS + i * DAY_MS for i in range(30)]
    got = resolve_series(daily, timeframe=None, symbol=None, path="binance_BTC_USDT-1d.csv")
    assert (got.timeframe, got.symbol, got.exchange) == ("1d", "BTC/USDT", "binance")
    assert any("spacing" in n for n in got.notes) and any("file name" in n for n in got.notes)
    with pytest.raises(SeriesMismatch, match=r"file name binance_BTC_USDT-1d\.csv says BTC/USDT"):
        resolve_series(daily, timeframe=None, symbol="ETH/USDT", path="binance_BTC_USDT-1d.csv")
    with pytest.raises(SeriesMismatch, match=r"file name binance_BTC_USDT-1d\.csv says 1d"):
        resolve_series(daily, timeframe="1h", symbol=None, path="binance_BTC_USDT-1d.csv")
    with pytest.raises(SeriesMismatch, match="1d apart"):  # a file named 1h that holds daily candles
        resolve_series(daily, timeframe=None, symbol=None, path="binance_BTC_USDT-1h.csv")
    with pytest.raises(SeriesMismatch, match=r"1d apart .* timeframe is 1h"):
        resolve_series(daily, timeframe="1h", symbol="BTC/USDT")


# ------------------------------------------------------------------------------------------------ settings
@pytest.fixture()
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    from core.settings import reset_settings

    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    reset_settings()
    yield monkeypatch
    reset_settings()


@pytest.mark.parametrize(
    ("env", "argv", "says"),
    [
        ({"APPROVAL_TTL_S": "5"}, ["serve"], "APPROVAL_TTL_S='5' is not allowed: it must be a number at least 10"),
        ({"RISK_MAX_ORDER_NOTIONAL": "abc"}, ["doctor"], "RISK_MAX_ORDER_NOTIONAL='abc' is not allowed"),
        ({"PORT": "70000"}, ["doctor", "--json"], "PORT='70000' is not allowed: it must be a number at least 1 and "
                                                  "at most 65535"),
        ({"EMBED_BACKEND": "gpu"}, ["news", "events"], "EMBED_BACKEND='gpu' is not allowed: it must be one of"),
    ],
)
def test_bad_settings_exit_2_with_one_sentence_per_variable(
    clean_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str], argv: list[str],
    says: str,
) -> None:
    for k, v in env.items():
        clean_settings.setenv(k, v)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and "pydantic" not in err, err


def test_two_bad_settings_and_a_secret_never_shown(
    clean_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pydantic import ValidationError

    from core.settings import Settings, describe_settings_error

    with pytest.raises(ValidationError) as info:
        Settings(slack_bot_token=12345)  # type: ignore[arg-type]
    (sentence,) = describe_settings_error(info.value)
    assert sentence.startswith("SLACK_BOT_TOKEN=(hidden) is not allowed") and "12345" not in sentence

    clean_settings.setenv("LLM_TIMEOUT_S", "-1")
    clean_settings.setenv("LOG_JSON", "maybe")
    assert main(["doctor"]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 2 and any("LLM_TIMEOUT_S='-1'" in ln for ln in lines)
    assert any("LOG_JSON='maybe'" in ln and "valid boolean" in ln for ln in lines)


# ------------------------------------------------------------------------------------------------ backtest
def test_backtest_daily_candles_never_run_as_hourly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    daily = write_candles(tmp_path / "daily.csv", 300, DAY_MS)
    assert main(["backtest", "--strategy", "trend", "--symbol", "BTC/USDT", "--timeframe", "1h",
                 "--data", str(daily), "--json"]) == 2
    captured = capsys.readouterr()
    assert "1d apart" in captured.err and "timeframe is 1h" in captured.err
    # no --timeframe: the spacing says 1d, and the output says so
    assert main(["backtest", "--strategy", "trend", "--symbol", "BTC/USDT", "--data", str(daily), "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["timeframe"] == "1d" and "timeframe 1d read from the candle spacing" in out["data"][0]
    # the file name gives the symbol and timeframe; a conflicting --symbol is refused
    named = write_candles(tmp_path / "binance_ETH_USDT-1d.csv", 300, DAY_MS)
    assert main(["backtest", "--strategy", "trend", "--data", str(named), "--json"]) == 0
    assert "ETH/USDT" in json.loads(capsys.readouterr().out)["data"][0]
    assert main(["backtest", "--strategy", "trend", "--symbol", "BTC/USDT", "--data", str(named)]) == 2
    assert "says ETH/USDT" in capsys.readouterr().err
    assert main(["backtest", "--strategy", "trend", "--data", str(daily)]) == 2
    assert "give --symbol" in capsys.readouterr().err


def test_backtest_service_refuses_a_timeframe_the_bars_do_not_have() -> None:
    from trading.backtest.service import backtest, optimize
    from trading.strategies.base import Bars

    n = 200
    t = START_MS + np.arange(n, dtype=np.int64) * DAY_MS
    c = np.linspace(100, 150, n)
    bars = Bars(t, c, c * 1.01, c * 0.99, c, np.full(n, 10.0), "BTC/USDT")
    with pytest.raises(SeriesMismatch, match="BTC/USDT candles are 1d apart"):
        backtest("trend", [bars], "1h")
    with pytest.raises(SeriesMismatch):
        optimize("trend", [bars], "4h")
    _, out = backtest("trend", [bars], "1d")
    assert out["timeframe"] == "1d"


# ------------------------------------------------------------------------------------------------ train / forecast
def test_train_refuses_daily_candles_as_1h_and_registers_nothing(
    isolated_settings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daily = write_candles(tmp_path / "daily.csv", 400, DAY_MS)
    assert main(["train", "--symbol", "BTC/USDT", "--timeframe", "1h", "--data", str(daily), "--json"]) == 2
    captured = capsys.readouterr()
    assert "1d apart" in captured.err and "timeframe is 1h" in captured.err
    named = write_candles(tmp_path / "binance_BTC_USDT-1h.csv", 400, DAY_MS)  # a name that lies about the data
    assert main(["train", "--data", str(named)]) == 2
    assert "1d apart" in capsys.readouterr().err
    assert main(["train", "--data", str(daily)]) == 2
    assert "give --symbol" in capsys.readouterr().err
    from core.storage import get_db

    assert get_db()["lstm_models"].count_documents({}) == 0


def test_train_service_checks_spacing_for_every_door(tmp_path: Path, mongo_db: Any) -> None:
    """The scheduler, HTTP and CLI all register through train_and_register: it refuses mismatched candles."""
    import pandas as pd

    from models.lstm.data import DataError
    from models.lstm.registry import ModelRegistry
    from models.lstm.service import train_and_register

    n = 300
    frame = pd.DataFrame({"timestamp_ms": START_MS + np.arange(n) * DAY_MS, "open": 1.0, "high": 1.0, "low": 1.0,
                          "close": np.linspace(100, 120, n), "volume": 1.0})
    with pytest.raises(DataError, match=r"1d apart .* timeframe is 1h"):
        train_and_register(frame, symbol="BTC/USDT", timeframe="1h", registry=ModelRegistry(mongo_db, tmp_path))
    assert ModelRegistry(mongo_db, tmp_path).latest("BTC/USDT", "1h") is None


# ------------------------------------------------------------------------------------------------ data import
def test_data_import_checks_the_file_against_its_name_and_arguments(
    isolated_settings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    named = write_candles(tmp_path / "binance_BTC_USDT-1d.csv", 40, DAY_MS)
    assert main(["data", "import", str(named), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["symbol"], out["timeframe"], out["stored"]) == ("BTC/USDT", "1d", 40)
    plain = write_candles(tmp_path / "candles.csv", 40, DAY_MS)
    assert main(["data", "import", str(plain)]) == 2  # no symbol anywhere
    assert "give --symbol" in capsys.readouterr().err
    assert main(["data", "import", str(plain), "--symbol", "ETH/USDT", "--timeframe", "1h"]) == 2
    assert "1d apart" in capsys.readouterr().err
    assert main(["data", "import", str(plain), "--symbol", "ETH/USDT", "--json"]) == 0  # timeframe from spacing
    captured = capsys.readouterr()
    assert json.loads(captured.out)["timeframe"] == "1d" and "read from the candle spacing" in captured.err
    lying = write_candles(tmp_path / "binance_SOL_USDT-1h.csv", 40, DAY_MS)
    assert main(["data", "import", str(lying)]) == 2
    assert main(["data", "import", str(named), "--symbol", "ETH/USDT"]) == 2
    assert "says BTC/USDT" in capsys.readouterr().err
    broken = tmp_path / "broken.csv"
    broken.write_text("timestamp_ms,open,high,low,close,volume\n1704067200000,1,2,x,1,1\nnot,a,csv\n")
    assert main(["data", "import", str(broken), "--symbol", "BTC/USDT", "--timeframe", "1h"]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "Traceback" not in err
    from core.storage import get_db
    from trading.market_data.candles import CandleStore

    store = CandleStore(get_db())
    assert store.count("import", "SOL/USDT", "1h") == 0 and store.count("import", "ETH/USDT", "1h") == 0


# ------------------------------------------------------------------------------------------------ HTTP
def test_http_backtest_checks_and_infers_the_timeframe(mongo_db: Any) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from agent.api.auth import ApiKeyStore
    from agent.api.backtest import router

    app = FastAPI()
    app.include_router(router)
    app.state.api_keys = ApiKeyStore(mongo_db)
    key, _ = app.state.api_keys.create("reader", "read")
    auth = {"Authorization": f"Bearer {key}"}
    n = 300
    close = 100 * np.exp(np.cumsum(0.02 * np.random.default_rng(5).standard_normal(n)))
    daily = [[START_MS + i * DAY_MS, c, c * 1.01, c * 0.99, c, 10.0] for i, c in enumerate(close.tolist())]
    body = {"strategy": "trend", "symbols": ["BTC/USDT"], "candles": [daily]}
    with TestClient(app) as client:
        r = client.post("/v1/backtests", json={**body, "timeframe": "1h"}, headers=auth)
        assert r.status_code == 422 and "1d apart" in r.json()["detail"], r.text
        r = client.post("/v1/backtests", json=body, headers=auth)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["timeframe"] == "1d" and "read from the candle spacing" in out["data"][0]


def test_pair_candles_must_share_the_timeframe_and_agree_with_their_name(
    isolated_settings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hourly = write_candles(tmp_path / "binance_BTC_USDT-1h.csv", 300, HOUR_MS)
    daily_pair = write_candles(tmp_path / "eth.csv", 300, DAY_MS, seed=4)
    assert main(["train", "--data", str(hourly), "--pair-symbol", "ETH/USDT", "--pair-data", str(daily_pair)]) == 2
    assert "eth.csv are 1d apart" in capsys.readouterr().err
    named_pair = write_candles(tmp_path / "binance_SOL_USDT-1h.csv", 300, HOUR_MS, seed=4)
    assert main(["train", "--data", str(hourly), "--pair-symbol", "ETH/USDT", "--pair-data", str(named_pair)]) == 2
    assert "says SOL/USDT" in capsys.readouterr().err
    assert main(["forecast", "--data", str(hourly), "--pair-data", str(daily_pair)]) == 2
    assert "1d apart" in capsys.readouterr().err
