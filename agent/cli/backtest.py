"""`crypto-agent backtest` (and `crypto-agent backtest optimize`-style walk-forward via --optimize)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent.cli.args import int_in
from tools.backtest import STRATEGY_NAMES, norm_symbol
from trading.backtest.metrics import TIMEFRAME_MS


def _symbol(value: str) -> str:
    try:
        return norm_symbol(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _param(value: str) -> tuple[str, Any]:
    key, sep, raw = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--param expects NAME=VALUE, got {value!r}")
    low = raw.strip().lower()
    parsed: Any
    if low in ("true", "false"):
        parsed = low == "true"
    else:
        try:
            parsed = int(raw)
        except ValueError:
            try:
                parsed = float(raw)
            except ValueError:
                parsed = raw
    return key.strip(), parsed


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "backtest",
        help="backtest a strategy over candles (risk gate, fees, slippage, one bar latency) vs buy and hold",
        description="Runs the strategy through the event-driven backtester (the desk's risk gate and the fill "
        "model) or the vectorised fast path. Candles come from --data (CSV: timestamp_ms,open,high,low,close,"
        "volume) or, without it, from the candle store / market source. --optimize runs a walk-forward parameter "
        "search and reports out-of-sample results.",
    )
    p.add_argument("--strategy", required=True, choices=STRATEGY_NAMES, metavar="NAME",
                   help=f"one of {', '.join(STRATEGY_NAMES)}")
    p.add_argument("--symbol", type=_symbol, default=None,
                   help="e.g. BTC/USDT (default: from a --data file name such as binance_BTC_USDT-1h.csv)")
    p.add_argument("--symbol2", type=_symbol, default=None, help="second leg for pairs (x in y - beta x)")
    p.add_argument("--timeframe", default=None, choices=list(TIMEFRAME_MS), metavar="TF",
                   help="candle timeframe; checked against the --data candles' spacing (default: that spacing, "
                   "or 1h for stored / market candles)")
    p.add_argument("--data", default=None, help="CSV of candles for --symbol")
    p.add_argument("--data2", default=None, help="CSV of candles for --symbol2")
    p.add_argument("--limit", type=int_in(50, 1_000_000), default=2000, help="candles to load when --data is absent")
    p.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                   help="strategy parameter (repeatable), e.g. --param fast=10 --param slow=50")
    p.add_argument("--mode", choices=["event", "vectorized"], default="event")
    p.add_argument("--cash", type=float, default=10_000.0)
    p.add_argument("--fee", type=float, default=0.001)
    p.add_argument("--slippage", type=float, default=0.0005)
    p.add_argument("--participation", type=float, default=0.1, help="max fraction of a bar's volume per fill")
    p.add_argument("--breakers", action="store_true", help="apply the desk's drawdown / daily-loss breakers")
    p.add_argument("--book", choices=["auto", "cash", "relative_value"], default="auto",
                   help="auto: pairs trade spot relative value around an inventory in both legs, others from cash")
    p.add_argument("--inventory", type=float, default=0.4,
                   help="relative_value: fraction of equity held in each leg at the start (0-0.5]")
    p.add_argument("--tilt", type=float, default=0.4, help="relative_value: scale of the spread weights (0-1]")
    p.add_argument("--chart", default=None, help="write an equity + drawdown PNG here")
    p.add_argument("--optimize", choices=["grid", "optuna"], default=None, help="walk-forward parameter search")
    p.add_argument("--folds", type=int_in(1, 50), default=4)
    p.add_argument("--trials", type=int_in(1, 10_000), default=30, help="optuna trials per fold")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_backtest)


def _fail(msg: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": msg}))
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _load(args: argparse.Namespace) -> tuple[list[Any], list[str]]:
    """Candles per leg. A --data file's spacing and name are checked against --symbol/--timeframe (a missing one
    is read from them and `args` updated); without a file the timeframe defaults to 1h."""
    import dataclasses

    from core.timeframes import resolve_series
    from trading.backtest.data import DataError, load_csv, load_market

    bars, notes = [], []
    legs = [("symbol", args.data)] + ([("symbol2", args.data2)] if args.symbol2 or args.data2 else [])
    for attr, path in legs:
        sym = getattr(args, attr)
        if path:
            b = load_csv(path, sym or "")
            found = resolve_series(b.timestamp_ms, timeframe=args.timeframe, symbol=sym, path=path)
            if found.symbol is None:
                raise DataError(f"give --{attr} (the file name {path} does not say which symbol it holds)")
            args.timeframe = found.timeframe
            setattr(args, attr, found.symbol)
            bars.append(dataclasses.replace(b, symbol=found.symbol))
            notes.append(f"{found.symbol}: {path}" + "".join(f"; {n}" for n in found.notes))
        else:
            if sym is None:
                raise DataError(f"give --{attr} (or --data with a file name such as binance_BTC_USDT-1h.csv)")
            args.timeframe = args.timeframe or "1h"
            b, note = load_market(sym, args.timeframe, args.limit)
            bars.append(b)
            notes.append(f"{sym}: {note}")
    return bars, notes


def cmd_backtest(args: argparse.Namespace) -> int:
    from trading.backtest.data import DataError
    from trading.backtest.service import backtest, optimize

    try:
        bars, notes = _load(args)
    except (DataError, ValueError) as exc:  # unreadable file, or a timeframe/symbol that does not fit it
        return _fail(str(exc), args.json)
    params = dict(args.param)
    try:
        if args.optimize:
            out = optimize(args.strategy, bars, args.timeframe, method=args.optimize, folds=args.folds,
                           n_trials=args.trials, fixed=params or None, fee=args.fee, slippage=args.slippage)
            out["data"] = notes
            if args.json:
                print(json.dumps(out, default=float))
            else:
                wf = out["walk_forward"]
                print(f"walk-forward {wf['method']} on {args.symbol} ({args.strategy}), objective {wf['objective']}")
                for f in wf["folds"]:
                    print(f"  train {f['train']} test {f['test']} params {f['params']} "
                          f"in-sample {f['in_sample'].get(wf['objective'])} "
                          f"out-of-sample {f['out_of_sample'].get(wf['objective'])}")
                print(f"out-of-sample (stitched): {wf['out_of_sample']}")
                print(out["warning"])
            return 0
        _, out = backtest(args.strategy, bars, args.timeframe, params, args.mode, args.cash, args.fee,
                          args.slippage, args.participation, args.breakers, args.chart, args.book,
                          args.inventory, args.tilt)
    except ValueError as exc:
        return _fail(str(exc), args.json)
    out["data"] = notes
    if args.json:
        out.pop("summary", None)
        print(json.dumps(out, default=float))
    else:
        print(out["summary"])
        if out.get("spread"):
            legs = ", ".join(f"{leg['symbol']} {leg['closed_trades']} trades {leg['closed_pnl']:,.2f}"
                             for leg in out["spread"]["legs"])
            print(f"spread PnL over the untouched inventory: {out['spread']['pnl']:,.2f} ({legs})")
        for n in notes:
            print(f"data: {n}")
        if out.get("chart"):
            print(f"chart: {out['chart']}")
    return 0
