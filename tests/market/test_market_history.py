"""History: paginated download into Mongo with validation and resume; file import with line-numbered errors;
export; the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database

from tests.fakes.binance_server import FakeBinance
from trading.exchanges import ExchangeUnavailable, RetryPolicy, background, open_exchange
from trading.market_data.candles import CandleStore, validate_candles
from trading.market_data.history import (
    ImportFileError,
    download_history,
    export_csv,
    import_file,
    parse_time,
)
from trading.types import Candle

NOW = parse_time("2024-03-01T00:30:00Z")
H = 3_600_000


@pytest.fixture()
def frozen_fake() -> Any:
    with FakeBinance(now_ms=NOW) as fake:
        yield fake


def _download(fake: FakeBinance, store: CandleStore, since: str, until: str | None = None,
              page_limit: int = 500, attempts: int = 2) -> Any:
    async def run() -> Any:
        ex = open_exchange("binance", api_url=fake.url, timeout_ms=2000,
                           retry=RetryPolicy(attempts=attempts, base_delay_s=0.01))
        try:
            return await download_history(ex, store, "BTC/USDT", "1h", parse_time(since),
                                          until_ms=parse_time(until) if until else None,
                                          page_limit=page_limit, now_ms=NOW)
        finally:
            await ex.close()

    return background.run(run())


def test_download_paginates_validates_and_resumes(frozen_fake: FakeBinance,
                                                  mongo_db: Database[dict[str, Any]]) -> None:
    store = CandleStore(mongo_db)
    gap_start = parse_time("2024-02-10T05:00:00Z")
    frozen_fake.markets["BTC/USDT"].kline_gaps.update({gap_start, gap_start + H})
    first = _download(frozen_fake, store, "2024-02-01", until="2024-02-15")
    assert first.resumed_from is None
    assert first.first_ms == parse_time("2024-02-01") and first.last_ms == parse_time("2024-02-15")
    assert first.pages >= 1 and first.stored == 14 * 24 + 1 - 2
    assert first.gaps == [(gap_start, gap_start + H)]
    progress: list[tuple[int, int]] = []

    async def resume() -> Any:
        ex = open_exchange("binance", api_url=frozen_fake.url, timeout_ms=2000)
        try:
            return await download_history(ex, store, "BTC/USDT", "1h", parse_time("2024-02-01"), page_limit=200,
                                          now_ms=NOW, progress=lambda d, t: progress.append((d, t)))
        finally:
            await ex.close()

    second = background.run(resume())
    assert second.resumed_from == parse_time("2024-02-15")
    assert second.pages == 2 and second.stored == 14 * 24 + 23  # the rest of February in pages of 200
    assert second.last_ms == parse_time("2024-02-29T23:00:00Z")  # the candle open at 00:00 is still running
    assert progress[-1][0] == progress[-1][1] == second.stored
    total = store.count("binance", "BTC/USDT", "1h")
    assert total == first.stored + second.stored
    candles = store.load("binance", "BTC/USDT", "1h")
    times = [c.timestamp_ms for c in candles]
    assert times == sorted(set(times)), "unique and ordered"
    again = _download(frozen_fake, store, "2024-02-01")
    assert again.stored == 0 and store.count("binance", "BTC/USDT", "1h") == total


@pytest.mark.fault
def test_interrupted_download_resumes_without_duplicates(frozen_fake: FakeBinance,
                                                          mongo_db: Database[dict[str, Any]]) -> None:
    store = CandleStore(mongo_db)
    calls = {"n": 0}
    original = frozen_fake.klines

    def flaky(*a: Any, **k: Any) -> Any:  # three good pages, then the venue goes down
        calls["n"] += 1
        if calls["n"] == 3:
            frozen_fake.fail("/api/v3/klines", 503, times=10)
        return original(*a, **k)

    frozen_fake.klines = flaky  # type: ignore[method-assign]
    with pytest.raises(ExchangeUnavailable):
        _download(frozen_fake, store, "2024-02-01", page_limit=100)
    partial = store.count("binance", "BTC/USDT", "1h")
    assert partial == 300
    frozen_fake.clear_faults()
    done = _download(frozen_fake, store, "2024-02-01", page_limit=100)
    assert done.resumed_from == parse_time("2024-02-01") + 299 * H
    assert store.count("binance", "BTC/USDT", "1h") == 29 * 24
    assert done.gaps == []


def test_validation_reports_each_problem() -> None:
    good = [Candle(i * H, 10, 11, 9, 10.5, 1) for i in range(5)]
    bad_ohlc = Candle(5 * H, 10, 9.5, 9, 10, 1)  # high below open
    misaligned = Candle(6 * H + 5, 10, 11, 9, 10, 1)
    dup = Candle(4 * H, 10, 11, 9, 10.5, 1)
    after_gap = Candle(9 * H, 10, 11, 9, 10, 1)
    backwards = Candle(8 * H, 10, 11, 9, 10, 1)
    kept, report = validate_candles([*good, bad_ohlc, misaligned, dup, after_gap, backwards], "1h")
    assert [c.timestamp_ms for c in kept] == [0, H, 2 * H, 3 * H, 4 * H, 9 * H]
    assert report.duplicates == 1
    assert report.gaps == [(5 * H, 8 * H)] and report.missing_candles("1h") == 4
    problems = [i.problem for i in report.issues]
    assert problems[0].startswith("high 9.5 below open/close")
    assert "not aligned" in problems[1]
    assert "backwards" in problems[2]


def test_import_csv_and_freqtrade(tmp_path: Path, mongo_db: Database[dict[str, Any]]) -> None:
    store = CandleStore(mongo_db)
    csv_file = tmp_path / "btc.csv"
    csv_file.write_text("timestamp_ms,open,high,low,close,volume\n"
                        + "".join(f"{1704067200000 + i * H},{100 + i},{102 + i},{99 + i},{101 + i},{5 + i}\n"
                                  for i in range(24)))
    out = import_file(store, csv_file, exchange="binance", symbol="BTC/USDT", timeframe="1h")
    assert out["stored"] == 24 and out["problems"] == []
    ft = tmp_path / "ETH_USDT-1d.json"
    ft.write_text(json.dumps([[1704067200000 + i * 86_400_000, 2000, 2100, 1900, 2050, 10] for i in range(3)]))
    out = import_file(store, ft, exchange="binance")
    assert (out["symbol"], out["timeframe"], out["stored"]) == ("ETH/USDT", "1d", 3)
    assert store.count("binance", "ETH/USDT", "1d") == 3


def test_import_bad_file_names_the_lines(tmp_path: Path, mongo_db: Database[dict[str, Any]]) -> None:
    store = CandleStore(mongo_db)
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp_ms,open,high,low,close,volume\n"
                   "1704067200000,100,102,99,101,5\n"
                   "1704070800000,100,abc,99,101,5\n"
                   "1704074400000,100,98,99,101,5\n"
                   "1704078000000,100,102,99\n"
                   "1704067200000,100,102,99,101,5\n")
    with pytest.raises(ImportFileError) as info:
        import_file(store, bad, exchange="x", symbol="BTC/USDT", timeframe="1h")
    lines = dict(info.value.problems)
    assert "not a number" in lines[3]
    assert lines[4].startswith("high 98.0 below low 99.0")
    assert "expected 6 fields" in lines[5]
    assert lines[6] == "duplicate time 2024-01-01T00:00:00Z (first on line 2)"
    assert "line 3:" in str(info.value)
    assert store.count("x", "BTC/USDT", "1h") == 0, "nothing imported from a bad file"
    out = import_file(store, bad, exchange="x", symbol="BTC/USDT", timeframe="1h", skip_bad=True)
    assert out["stored"] == 1 and out["skipped"] == 4
    broken = tmp_path / "SOL_USDT-1h.json"
    broken.write_text('[[1704067200000, 1, 2, 0.5, 1.5, 3],\n [1704070800000, 1, 2,')
    with pytest.raises(ImportFileError, match="line 2: invalid JSON"):
        import_file(store, broken, exchange="x")


def test_export_roundtrip(tmp_path: Path, mongo_db: Database[dict[str, Any]]) -> None:
    store = CandleStore(mongo_db)
    candles = [Candle(1704067200000 + i * H, 1.5 + i, 2.25 + i, 1.0 + i, 2.0 + i, 0.1 * i) for i in range(10)]
    store.upsert("binance", "BTC/USDT", "1h", candles)
    path = tmp_path / "out.csv"
    with path.open("w") as fh:
        assert export_csv(store.load("binance", "BTC/USDT", "1h"), fh) == 10
    other = CandleStore(mongo_db.client[mongo_db.name + "_b"])
    out = import_file(other, path, exchange="binance", symbol="BTC/USDT", timeframe="1h")
    assert out["stored"] == 10
    assert other.load("binance", "BTC/USDT", "1h") == candles
    mongo_db.client.drop_database(mongo_db.name + "_b")


def test_cli_download_list_export(frozen_fake: FakeBinance, isolated_settings: Path,
                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                  tmp_path: Path) -> None:
    from agent.cli import main
    from core.settings import reset_settings

    monkeypatch.setenv("EXCHANGE_API_URL", frozen_fake.url)
    reset_settings()
    code = main(["data", "download", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1d",
                 "--since", "2024-01-01", "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0, out
    summary = json.loads(out[-1])
    assert summary["ok"] and summary["stored"] == 60 and summary["simulated"] is False
    assert summary["first"] == "2024-01-01T00:00:00Z" and summary["last"] == "2024-02-29T00:00:00Z"
    assert main(["data", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["series"][0]["count"] == 60
    target = tmp_path / "x.csv"
    assert main(["data", "export", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1d",
                 "--out", str(target), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 60
    assert target.read_text().splitlines()[0] == "timestamp_ms,open,high,low,close,volume"
    code = main(["data", "download", "--exchange", "binance", "--symbol", "BTC/USDX", "--since", "2024-01-01",
                 "--json"])
    err = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1 and "BTC/USDT" in err["error"]


def test_symbol_first_store_for_backtests(mongo_db: Database[dict[str, Any]]) -> None:
    from trading.market_data.store import CandleStore as SymbolStore

    store = CandleStore(mongo_db)
    store.upsert("kraken", "BTC/USDT", "1h", [Candle(i * H, 1, 2, 0.5, 1.5, 1) for i in range(3)])
    store.upsert("binance", "BTC/USDT", "1h", [Candle(i * H, 1, 2, 0.5, 1.5, 1) for i in range(10)])
    view = SymbolStore(mongo_db)
    assert view.exchanges_for("BTC/USDT", "1h") == ["binance", "kraken"]
    assert [c.timestamp_ms for c in view.load("BTC/USDT", "1h", limit=3)] == [7 * H, 8 * H, 9 * H]
    assert len(view.load("BTC/USDT", "1h", exchange="kraken")) == 3
    assert view.load("ETH/USDT", "1h") == []
