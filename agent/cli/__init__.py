"""`crypto-agent` command line. Each area module registers its subcommands; handlers return exit codes.

Exit codes: 0 done; 1 the command ran and the outcome is a failure (no trained model, a source that cannot be
reached, an order the gate refused, doctor found a required check failing); 2 bad input (arguments, a data file
that does not fit them, a setting in the environment or .env); 3 not authorised; 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

COMMAND_MODULES: list[str] = [
    "agent.cli.service",
    "agent.cli.strategy",
    "agent.cli.forecast",
    "agent.cli.backtest",
    "agent.cli.data",
    "agent.cli.options",
    "agent.cli.desk",
    "agent.cli.news",
    "agent.cli.audit",
    "agent.cli.slack",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crypto-agent",
        description="Crypto Quant Agent: a chat-driven crypto trading desk (analysis, forecasts, options, news, "
        "risk-gated orders with human approval).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Offline by default: embeddings load from the installed package, never from a hub; TensorFlow stays quiet.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    from core.settings import SettingsError

    try:
        return int(func(args))
    except SettingsError as exc:  # a bad environment / .env value: say which, exit 2 like any bad input
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        print("fix the variable(s) above in the environment or .env (README: Configuration)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        factory = sys.modules.get("trading.oms.factory")
        if factory is not None:  # stop the trading service's timers before the process tears down its clients
            factory.stop_timers()


if __name__ == "__main__":
    sys.exit(main())
