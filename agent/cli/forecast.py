"""`crypto-agent train` and `crypto-agent forecast`: the LSTM price engine from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli.args import int_in
from tools.forecast import TIMEFRAMES, check_timeframe, norm_symbol


def _symbol(value: str) -> str:
    try:
        return norm_symbol(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _timeframe(value: str) -> str:
    try:
        return check_timeframe(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    train = sub.add_parser(
        "train",
        help="train the LSTM price model, evaluate it walk-forward against naive baselines, register it",
        description="Trains on candles from --data (CSV: timestamp_ms,open,high,low,close,volume) or the market "
        "source, runs a rolling-origin evaluation against random walk, drift and EMA, then fits the final model on "
        "all candles and registers it with its measured skill.",
    )
    train.add_argument("--symbol", type=_symbol, default=None,
                       help="e.g. BTC/USDT (default: from a --data file name such as binance_BTC_USDT-1h.csv)")
    train.add_argument("--timeframe", type=_timeframe, default=None,
                       help=f"one of {', '.join(TIMEFRAMES)}; checked against the --data candles' spacing "
                       "(default: that spacing, or 1h for the market source)")
    train.add_argument("--data", default=None, help="CSV of candles; default: the market source")
    train.add_argument("--limit", type=int_in(100, 1_000_000), default=5_000,
                       help="candles to fetch when --data is absent")
    train.add_argument("--pair-symbol", type=_symbol, default=None, help="second symbol whose returns are a feature")
    train.add_argument("--pair-data", default=None, help="CSV of the second symbol's candles")
    g = train.add_argument_group("model (defaults: 4 LSTM layers x 50 units, dropout 0.2, 60-step windows)")
    g.add_argument("--window", type=int, default=None)
    g.add_argument("--horizon", type=int, default=None, help="steps ahead the model forecasts (default 24)")
    g.add_argument("--layers", type=int, default=None)
    g.add_argument("--units", type=int, default=None)
    g.add_argument("--dropout", type=float, default=None)
    g.add_argument("--epochs", type=int, default=None)
    g.add_argument("--patience", type=int, default=None)
    g.add_argument("--batch-size", type=int, default=None)
    g.add_argument("--learning-rate", type=float, default=None)
    g.add_argument("--features", default=None, help="comma-separated extras: volume,range,pair")
    g.add_argument("--uncertainty", choices=["quantile", "mc_dropout"], default=None)
    g.add_argument("--folds", type=int, default=None, help="walk-forward folds (default 3)")
    g.add_argument("--test-size", type=int, default=None, help="forecast origins per fold (default 500)")
    g.add_argument("--seed", type=int, default=None)
    train.add_argument("--json", action="store_true", help="print one JSON object")
    train.set_defaults(func=cmd_train)

    fc = sub.add_parser(
        "forecast",
        help="forecast a price path with an interval, using the newest good model, and show its measured skill",
    )
    fc.add_argument("--symbol", type=_symbol, default=None, help="e.g. BTC/USDT (default: from a --data file name)")
    fc.add_argument("--timeframe", type=_timeframe, default=None,
                    help="checked against the --data candles' spacing (default: that spacing, or 1h)")
    fc.add_argument("--horizon", type=int_in(1, 500), default=24, help="steps ahead (at most the model's horizon)")
    fc.add_argument("--data", default=None, help="CSV of recent candles; default: the market source")
    fc.add_argument("--pair-data", default=None, help="CSV of the second symbol's candles (models using 'pair')")
    fc.add_argument("--chart", type=Path, default=None, help="write a PNG chart here")
    fc.add_argument("--json", action="store_true", help="print one JSON object")
    fc.set_defaults(func=cmd_forecast)


def _config(args: argparse.Namespace) -> Any:
    from models.lstm.config import LSTMConfig

    changes: dict[str, Any] = {}
    for name in (
        "window", "horizon", "layers", "units", "dropout", "epochs", "patience", "batch_size", "learning_rate",
        "uncertainty", "folds", "test_size", "seed",
    ):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.features:
        changes["features"] = tuple(f.strip() for f in args.features.split(",") if f.strip())
    if args.json or not sys.stderr.isatty():
        changes["progress"] = bool(sys.stderr.isatty())
    return LSTMConfig(**changes)


def _fmt(x: Any, spec: str = ".3f") -> str:
    return format(x, spec) if isinstance(x, int | float) else "n/a"


def _err(args: argparse.Namespace, message: str, code: int = 2) -> int:
    """Exit 2 for bad input (arguments, a data file that does not fit them); 1 when the command itself failed
    (no trained model, no candle source answered). The message goes to stderr (and stdout as JSON with --json)."""
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": message}))
    print(f"error: {message}", file=sys.stderr)
    return code


def _series(args: argparse.Namespace) -> str | None:
    """Settle --symbol/--timeframe against a --data file (its spacing and name); without a file the symbol is
    required and the timeframe defaults to 1h. Returns an error message, or None with `args` completed."""
    from core.timeframes import resolve_series
    from models.lstm.data import load_csv

    if not args.data:
        if args.symbol is None:
            return "give --symbol (or --data with a file name such as binance_BTC_USDT-1h.csv)"
        args.timeframe = args.timeframe or "1h"
        return None
    candles = load_csv(args.data)
    found = resolve_series(candles["timestamp_ms"].to_numpy(), timeframe=args.timeframe, symbol=args.symbol,
                           path=args.data)
    if found.symbol is None:
        return f"give --symbol (the file name {args.data} does not say which symbol it holds)"
    if found.timeframe not in TIMEFRAMES:
        return f"the candles are {found.timeframe}; the price engine takes {', '.join(TIMEFRAMES)}"
    args.symbol, args.timeframe = found.symbol, found.timeframe
    for note in found.notes:
        print(f"note: {note}", file=sys.stderr)
    if getattr(args, "pair_data", None):  # the second symbol's candles: same timeframe, and the name must agree
        pair = load_csv(args.pair_data)
        given = getattr(args, "pair_symbol", None)
        found_pair = resolve_series(pair["timestamp_ms"].to_numpy(), timeframe=args.timeframe, symbol=given,
                                    path=args.pair_data)
        if hasattr(args, "pair_symbol") and given is None and found_pair.symbol:
            args.pair_symbol = found_pair.symbol
    return None


def cmd_train(args: argparse.Namespace) -> int:
    from models.lstm.data import DataError
    from models.lstm.sources import CandleSourceUnavailable
    from tools.forecast import run_train

    try:
        config = _config(args)
    except ValueError as exc:
        return _err(args, str(exc))
    try:
        problem = _series(args)
    except ValueError as exc:  # DataError (unreadable file) or SeriesMismatch (spacing / file name)
        return _err(args, str(exc))
    if problem:
        return _err(args, problem)
    try:
        out = run_train(
            args.symbol,
            args.timeframe,
            config=config,
            data_path=args.data,
            pair_symbol=args.pair_symbol,
            pair_path=args.pair_data,
            limit=args.limit,
        )
    except CandleSourceUnavailable as exc:
        return _err(args, str(exc), 1)
    except (DataError, ValueError) as exc:
        return _err(args, str(exc))
    if args.json:
        print(json.dumps({"ok": True, **out}, default=str))
        return 0
    model = out["model"]
    print(f"model {model['model_id']} ({model['status']}) saved at {model['path']}")
    rng = model.get("data_range") or {}
    sim = "  SIMULATED" if out["data"].get("simulated") else ""
    print(
        f"data: {out['data'].get('source')}{sim}  {rng.get('from')} .. {rng.get('to')}"
        f"  ({rng.get('n_candles')} candles)"
    )
    wf = out.get("walk_forward")
    if wf:
        print(f"walk-forward: {len(wf['folds'])} folds, {wf['steps'][0]['n']} test forecasts per step")
        header = f"{'h':>4} {'RMSE/RW':>8} {'/drift':>7} {'/EMA':>7} {'dir acc':>8} {'cover':>6} {'DM p':>7}  beats RW"
        print(header)
        steps = wf["steps"]
        shown = sorted({1, max(1, len(steps) // 4), max(1, len(steps) // 2), len(steps)})
        for h in shown:
            s = steps[h - 1]
            r_drift = s["rmse"] / s["rmse_drift"] if s["rmse_drift"] else None
            r_ema = s["rmse"] / s["rmse_ema"] if s["rmse_ema"] else None
            print(
                f"{h:>4} {_fmt(s['rmse_ratio_rw']):>8} {_fmt(r_drift):>7}"
                f" {_fmt(r_ema):>7} {_fmt(s['dir_acc'], '.1%'):>8}"
                f" {_fmt(s['coverage'], '.1%'):>6} {_fmt(s['dm_p']):>7}  {'yes' if s['beats_random_walk'] else 'NO'}"
            )
    print(out["verdict"])
    return 0


def cmd_forecast(args: argparse.Namespace) -> int:
    try:
        problem = _series(args)
    except ValueError as exc:
        return _err(args, str(exc))
    if problem:
        return _err(args, problem)
    from models.lstm.data import DataError
    from models.lstm.service import ForecastError, NoModelError  # imports TensorFlow: only once the input is good
    from models.lstm.sources import CandleSourceUnavailable
    from tools.forecast import run_forecast

    try:
        result = run_forecast(
            args.symbol,
            args.timeframe,
            args.horizon,
            data_path=args.data,
            chart_path=args.chart,
            pair_path=args.pair_data,
        )
    except (NoModelError, CandleSourceUnavailable) as exc:
        return _err(args, str(exc), 1)
    except (DataError, ForecastError) as exc:
        return _err(args, str(exc))
    if args.json:
        print(json.dumps({"ok": True, **result}, default=str))
        return 0
    f = result["final"]
    print(
        f"{result['symbol']} {result['timeframe']} as of {result['as_of']} (close {result['last_close']:.6g}), "
        f"model v{result['model_version']}"
    )
    if result["stale"]:
        print(f"warning: the latest candle is {result['data_age_hours']:.1f} hours old")
    level = round(100 * result["interval"])
    print(
        f"in {result['horizon']} steps ({f['timestamp']}): {f['price']:.6g} ({f['return_pct']:+.2f}% from that "
        f"close), "
        f"{level}% interval {f['lower']:.6g} .. {f['upper']:.6g}"
    )
    print(result["verdict"])
    if "chart" in result:
        print(f"chart: {result['chart']}")
    return 0
