"""`crypto-agent strategy run`: the backtested strategy code trading on paper, only through proposals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.cli import main


def _events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture()
def sim(isolated_settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATED_EXCHANGE", "true")
    from core.settings import reset_settings

    reset_settings()


def test_paper_run_proposes_and_waits_for_approval(sim: None, capsys: Any) -> None:
    assert (
        main(
            [
                "strategy",
                "run",
                "trend",
                "--symbol",
                "BTC/USDT",
                "--once",
                "--param",
                "fast=5",
                "--param",
                "slow=20",
                "--warmup",
                "100",
            ]
        )
        == 0
    )
    events = _events(capsys.readouterr().out)
    assert events[0]["event"] == "started" and events[0]["mode"] == "paper" and events[0]["simulated"] is True
    bar = events[-1]
    for entry in bar["proposals"]:
        assert entry["proposal"]["status"] in ("pending_approval", "rejected")
        assert "auto_approval" not in entry
    from core import storage

    db = storage.get_db()
    assert db["fills"].count_documents({}) == 0
    states = {d["state"] for d in db["orders"].find({})}
    assert states <= {"pending_approval", "rejected"}


# Two complementary signals on the same simulated candles: a 2/5-bar moving-average crossover (long after a rise) and
# a 2-bar RSI below 49 (long after a fall): whatever the last bars did, one of them wants a long position from flat.
COMPLEMENTARY = [
    ("ma_crossover", ["trend", "--param", "fast=2", "--param", "slow=5"]),
    ("rsi", ["rsi", "--param", "period=2", "--param", "lower=49", "--param", "exit_level=50"]),
]


def test_auto_approval_is_an_operator_switch_and_still_gated(sim: None, capsys: Any) -> None:
    for name, _ in COMPLEMENTARY:
        assert main(["strategy", "auto-approve", f"{name}:BTC/USDT", "on", "--operator", "alice"]) == 0
    capsys.readouterr()
    approved: list[dict[str, Any]] = []
    for _, argv in COMPLEMENTARY:
        assert main(["strategy", "run", *argv, "--symbol", "BTC/USDT", "--once", "--warmup", "100"]) == 0
        bar = _events(capsys.readouterr().out)[-1]
        approved += [e for e in bar["proposals"] if e["proposal"]["status"] == "pending_approval"]
    assert approved
    for entry in approved:
        assert entry["auto_approval"]["status"] in ("executed", "rejected", "failed")
    from core import storage

    audit = storage.get_db()["audit_log"].find_one({"action": "strategy_auto_approve"})
    assert audit is not None and audit["actor"] == "alice"


def test_bad_input_exits_2(sim: None, capsys: Any) -> None:
    assert main(["strategy", "run", "nope", "--symbol", "BTC/USDT", "--once"]) == 2
    assert "unknown strategy" in capsys.readouterr().err
    assert main(["strategy", "run", "trend", "--symbol", "BTC/USDT", "--mode", "live", "--once"]) == 2
    assert "LIVE_TRADING" in capsys.readouterr().err
    assert main(["strategy", "run", "trend", "--symbol", "BTC/USDT", "--param", "oops", "--once"]) == 2
