"""`crypto-agent strategy run|auto-approve`: run a strategy on paper (or live) through proposals.

The strategy is the same code the backtest runs; each closed candle goes to it, and every target change becomes a
proposal that the risk gate checks. Orders wait for a person unless an operator switched auto-approval on for the
strategy, and even then the approval passes the gate again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from agent.cli.args import int_in, positive_float
from core.clock import now_ms


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    strategy = sub.add_parser("strategy", help="run strategies on paper or live (orders only through proposals)")
    ssub = strategy.add_subparsers(dest="strategy_command", metavar="ACTION", required=True)
    run = ssub.add_parser("run", help="run a strategy on closed candles; target changes become proposals")
    run.add_argument("name", help="strategy: trend, donchian, momentum, zscore, rsi, pairs, ...")
    run.add_argument("--symbol", required=True, help="e.g. BTC/USDT")
    run.add_argument("--symbol2", default=None, help="second leg for pairs strategies")
    run.add_argument("--timeframe", default="1h")
    run.add_argument("--mode", choices=("paper", "live"), default="paper")
    run.add_argument("--param", action="append", default=[], metavar="K=V", help="strategy parameter (repeatable)")
    run.add_argument("--exchange", default=None, help="candle source venue (default: configured)")
    run.add_argument("--warmup", type=int_in(0, 100_000), default=500,
                     help="closed candles fed before trading (default 500)")
    run.add_argument("--once", action="store_true", help="act on the latest closed candle now, then exit")
    run.add_argument("--max-bars", type=int_in(0, 10_000_000), default=0,
                     help="stop after N new candles (0: run until Ctrl-C)")
    run.add_argument("--poll-s", type=positive_float(86_400), default=10.0,
                     help="how often to look for a new closed candle")
    run.set_defaults(func=cmd_run)
    auto = ssub.add_parser("auto-approve", help="operator switch: let a strategy's proposals approve themselves")
    auto.add_argument("strategy_id", help="as printed by `strategy run`, e.g. trend:BTC/USDT")
    auto.add_argument("state", choices=("on", "off"))
    auto.add_argument("--operator", required=True, help="who switches it (recorded)")
    auto.set_defaults(func=cmd_auto)


def _params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param takes KEY=VALUE, got {item!r}")
        value: Any = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        out[key] = value
    return out


def _err(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _check_strategy_id(strategy_id: str) -> str | None:
    """`strategy run` prints ids as NAME:SYMBOL[,SYMBOL] with the strategy's canonical name; anything else would
    switch on a strategy that never runs (and silently leave the real one waiting for people)."""
    from trading.strategies import resolve

    name, sep, symbols = strategy_id.partition(":")
    if not sep or not name or not symbols:
        return f"{strategy_id!r} is not a strategy id; use the id `strategy run` prints, e.g. ma_crossover:BTC/USDT"
    try:
        canonical = resolve(name).name
    except ValueError as exc:
        return str(exc)
    if canonical != name:
        return f"strategy ids use the strategy's own name: {canonical}:{symbols}"
    bad = [s for s in symbols.split(",") if s.count("/") != 1 or s != s.strip().upper() or not all(s.split("/"))]
    if bad:
        return f"{', '.join(repr(b) for b in bad)} in {strategy_id!r} is not a BASE/QUOTE symbol such as BTC/USDT"
    return None


def cmd_auto(args: argparse.Namespace) -> int:
    from core import storage
    from core.audit import AuditLog
    from trading.strategies.runner import StrategyControls

    problem = _check_strategy_id(args.strategy_id)
    if problem:
        return _err(problem)
    if not args.operator.strip():
        return _err("--operator must name who switches auto-approval (it is recorded)")
    db = storage.get_db()
    StrategyControls(db).set_auto_approve(args.strategy_id, args.state == "on", args.operator)
    AuditLog(db).record(
        "strategy_auto_approve", args.operator, source="cli", strategy=args.strategy_id, enabled=args.state == "on"
    )
    print(f"auto-approval {args.state} for {args.strategy_id} (the risk gate still checks every order)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from core import storage
    from core.settings import get_settings
    from trading.exchanges import ExchangeError, get_market_source
    from trading.exchanges.base import timeframe_ms
    from trading.oms.factory import get_trading_service, live_enabled, run
    from trading.strategies import make_strategy
    from trading.strategies.runner import StrategyControls, StrategyRunner

    settings = get_settings()
    if args.mode == "live" and not live_enabled(settings):
        return _err("live mode needs LIVE_TRADING=true and exchange keys; run with --mode paper")
    if args.mode == "paper" and live_enabled(settings):
        return _err("this desk is configured for live trading (LIVE_TRADING=true); unset it to run on paper")
    try:
        tf_ms = timeframe_ms(args.timeframe)
        strategy = make_strategy(args.name, _params(args.param), periods_per_year=365 * 86_400_000 / tf_ms)
    except (ValueError, TypeError, KeyError) as exc:
        return _err(str(exc))
    symbols = [args.symbol.upper()] + ([args.symbol2.upper()] if args.symbol2 else [])
    db = storage.get_db(settings)
    service = get_trading_service(settings, db)
    try:
        runner = StrategyRunner(strategy, symbols, service, StrategyControls(db))
        source = get_market_source(settings, args.exchange)
    except (ValueError, ExchangeError) as exc:
        return _err(str(exc))

    def closed(symbol: str, limit: int) -> list[Any]:
        now = now_ms()
        rows = source.fetch_ohlcv(symbol, args.timeframe, None, limit + 1)
        return [c for c in rows if c.timestamp_ms + tf_ms <= now][-limit:]

    try:
        history = [closed(s, max(args.warmup, strategy.warmup() + 2)) for s in symbols]
    except ExchangeError as exc:
        return _err(f"cannot load candles: {exc}")
    n = min(len(h) for h in history)
    if n < strategy.warmup() + 2:
        return _err(f"{strategy.name} needs {strategy.warmup() + 2} closed candles; the venue gave {n}")
    history = [h[-n:] for h in history]
    note = " (simulated market data)" if source.simulated else ""
    print(
        json.dumps(
            {
                "event": "started",
                "strategy_id": runner.strategy_id,
                "mode": args.mode,
                "venue": source.exchange_id,
                "simulated": source.simulated,
            }
        ),
        flush=True,
    )
    print(
        f"running {runner.strategy_id} on {args.mode}{note}; proposals need approval unless auto-approval is on",
        file=sys.stderr,
    )
    runner.warm_up([h[:-1] for h in history])
    runner.forget_target()  # start from the book as it is: trade toward the current target
    last_ts = history[0][-1].timestamp_ms
    pending = [[h[-1] for h in history]]
    seen = 0
    try:
        while True:
            for row in pending:
                run(service.refresh_market(symbols))  # the gate prices against a fresh book
                proposals = run(runner.on_candles(row))
                print(
                    json.dumps({"event": "bar", "time_ms": row[0].timestamp_ms, "proposals": proposals}, default=str),
                    flush=True,
                )
                seen += 1
            pending = []
            if args.once or (args.max_bars and seen >= args.max_bars):
                return 0
            time.sleep(args.poll_s)
            latest = [closed(s, 3) for s in symbols]
            if all(rows and rows[-1].timestamp_ms > last_ts for rows in latest):
                last_ts = latest[0][-1].timestamp_ms
                pending = [[rows[-1] for rows in latest]]
    except KeyboardInterrupt:
        return 0
