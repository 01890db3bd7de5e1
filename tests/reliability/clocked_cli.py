"""Test launcher: `python -m tests.reliability.clocked_cli START_MS crypto-agent-args...` runs the CLI with the
process-wide clock starting at START_MS (ticking with real time), so a subprocess sees the same simulated market on
any date. Test-only: production code reads no clock from the environment."""

from __future__ import annotations

import sys

from core.clock import set_clock, ticking_from


def main() -> int:
    set_clock(ticking_from(int(sys.argv[1])))
    from agent.cli import main as cli_main

    sys.argv = ["crypto-agent", *sys.argv[2:]]
    return int(cli_main() or 0)


if __name__ == "__main__":
    raise SystemExit(main())
