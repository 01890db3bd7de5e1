"""`crypto-agent data ...`: download, import, export and list stored candles."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli.args import int_in
from trading.exchanges import ExchangeError, background, open_exchange
from trading.exchanges.base import TIMEFRAME_MS


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    data = sub.add_parser("data", help="market history: download, import, export, list stored candles")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data.set_defaults(func=lambda args: (data.print_help(sys.stderr), 2)[1])

    dl = dsub.add_parser("download", help="download candles from an exchange into the database (resumes)")
    dl.add_argument("--exchange", default=None, help="ccxt exchange id (default: settings.exchange_id)")
    dl.add_argument("--symbol", required=True, help="e.g. BTC/USDT")
    dl.add_argument("--timeframe", default="1h", choices=list(TIMEFRAME_MS))
    dl.add_argument("--since", required=True, help="start: YYYY-MM-DD, ISO 8601 or epoch ms (UTC)")
    dl.add_argument("--until", default=None, help="end (default: now)")
    dl.add_argument("--page-limit", type=int_in(1, 1000), default=1000, help="candles per request (default 1000)")
    dl.add_argument("--simulated", action="store_true", help="download from the simulated venue")
    dl.add_argument("--json", action="store_true", help="print one JSON object")
    dl.set_defaults(func=cmd_download)

    im = dsub.add_parser("import", help="import a CSV (timestamp_ms,open,high,low,close,volume) or freqtrade JSON")
    im.add_argument("file", type=Path)
    im.add_argument("--exchange", default="import", help="venue name to store under (default: import)")
    im.add_argument("--symbol", default=None,
                    help="default: from the file name (binance_BTC_USDT-1h.csv, freqtrade's BTC_USDT-1h.json)")
    im.add_argument("--timeframe", default=None, choices=list(TIMEFRAME_MS),
                    help="checked against the candles' spacing and the file name (default: the spacing)")
    im.add_argument("--format", dest="fmt", default=None, choices=["csv", "freqtrade"])
    im.add_argument("--skip-bad", action="store_true", help="store the good lines and report the bad ones")
    im.add_argument("--json", action="store_true")
    im.set_defaults(func=cmd_import)

    ex = dsub.add_parser("export", help="write stored candles as CSV")
    ex.add_argument("--exchange", required=True)
    ex.add_argument("--symbol", required=True)
    ex.add_argument("--timeframe", default="1h", choices=list(TIMEFRAME_MS))
    ex.add_argument("--since", default=None)
    ex.add_argument("--until", default=None)
    ex.add_argument("--out", type=Path, default=None, help="file to write (default: stdout)")
    ex.add_argument("--json", action="store_true", help="with --out: print a JSON summary")
    ex.set_defaults(func=cmd_export)

    ls = dsub.add_parser("list", help="list stored candle series")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)


def _store() -> Any:
    from core.storage import get_db
    from trading.market_data.candles import CandleStore

    return CandleStore(get_db())


def _fail(args: argparse.Namespace, message: str, code: int = 1) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": message}))
    print(f"error: {message}", file=sys.stderr)
    return code


def cmd_download(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.settings import get_settings
    from trading.market_data.history import download_history, parse_time

    settings = get_settings()
    exchange = (args.exchange or settings.exchange_id).lower()
    try:
        since = parse_time(args.since)
        until = parse_time(args.until) if args.until else None
    except ValueError as exc:
        return _fail(args, str(exc), 2)
    try:
        adapter = open_exchange(
            exchange, simulated=args.simulated or settings.simulated_exchange,
            api_url=settings.exchange_api_url, timeout_ms=settings.exchange_timeout_ms)
    except ExchangeError as exc:
        return _fail(args, str(exc), 2)
    bar = tqdm(total=0, unit="candle", file=sys.stderr, disable=args.json, desc=f"{exchange} {args.symbol}")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    async def run() -> Any:
        try:
            return await download_history(adapter, _store(), args.symbol, args.timeframe, since, until_ms=until,
                                          page_limit=args.page_limit, progress=progress, exchange=exchange)
        finally:
            await adapter.close()

    try:
        result = background.run(run())
    except (ExchangeError, ValueError) as exc:
        bar.close()
        return _fail(args, f"{exc} (run the same command again to resume)")
    bar.close()
    summary = result.to_dict()
    summary["simulated"] = bool(adapter.simulated)
    if args.json:
        print(json.dumps({"ok": True, **summary}))
    else:
        resumed = f", resumed after {summary['resumed_after']}" if summary["resumed_after"] else ""
        print(f"{exchange} {args.symbol} {args.timeframe}: stored {result.stored} new candles "
              f"({result.fetched} fetched in {result.pages} pages{resumed}); "
              f"range {summary['first']} .. {summary['last']}")
        if result.gaps:
            print(f"gaps: {len(result.gaps)} (first: {summary['gaps'][0]['from']} .. {summary['gaps'][0]['to']})")
        if result.issues:
            print(f"bad candles skipped: {len(result.issues)} (first: {summary['issues'][0]['problem']})")
        if adapter.simulated:
            print("note: simulated data")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from trading.market_data.history import ImportFileError, import_file

    if not args.file.is_file():
        return _fail(args, f"{args.file}: no such file", 2)
    try:
        summary = import_file(_store(), args.file, exchange=args.exchange, symbol=args.symbol,
                              timeframe=args.timeframe, fmt=args.fmt, skip_bad=args.skip_bad)
    except ImportFileError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc),
                              "problems": [{"line": n, "problem": m} for n, m in exc.problems[:50]]}))
        print(f"error: {exc}", file=sys.stderr)
        print("nothing imported; fix the lines above or pass --skip-bad", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        return _fail(args, f"{args.file} is not a UTF-8 text file (CSV or freqtrade JSON)", 2)
    except ValueError as exc:  # no symbol, or a symbol/timeframe that the name or the spacing contradicts
        return _fail(args, str(exc), 2)
    for note in summary.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps({"ok": True, **summary}))
    else:
        print(f"{summary['file']}: {summary['stored']} new candles of {summary['rows']} rows for "
              f"{summary['exchange']} {summary['symbol']} {summary['timeframe']}")
        for problem in summary["problems"]:
            print(f"skipped {problem}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from trading.market_data.history import export_csv, iter_chunks, parse_time

    try:
        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until) if args.until else None
    except ValueError as exc:
        return _fail(args, str(exc), 2)
    store = _store()
    if store.count(args.exchange, args.symbol, args.timeframe) == 0:
        series = ", ".join(f"{s['exchange']} {s['symbol']} {s['timeframe']}" for s in store.series()[:10])
        return _fail(args, f"no stored candles for {args.exchange} {args.symbol} {args.timeframe}"
                           + (f"; stored: {series}" if series else "; run `crypto-agent data download` first"))
    rows = iter_chunks(store, args.exchange, args.symbol, args.timeframe, since, until)
    if args.out is None:
        export_csv(rows, sys.stdout)
        return 0
    with args.out.open("w", encoding="utf-8", newline="") as fh:
        n = export_csv(rows, fh)
    if args.json:
        print(json.dumps({"ok": True, "file": str(args.out), "rows": n}))
    else:
        print(f"wrote {n} candles to {args.out}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from trading.market_data.history import iso

    series = _store().series()
    if args.json:
        print(json.dumps({"ok": True, "series": [{**s, "first": iso(s["first"]), "last": iso(s["last"])}
                                                 for s in series]}))
        return 0
    if not series:
        print("no stored candles; try `crypto-agent data download --symbol BTC/USDT --since 2024-01-01`")
    for s in series:
        print(f"{s['exchange']:<12} {s['symbol']:<12} {s['timeframe']:<4} {s['count']:>8}  "
              f"{iso(s['first'])} .. {iso(s['last'])}")
    return 0
