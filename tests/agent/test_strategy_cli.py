"""`crypto-agent strategy run`: the backtested strategy code trading on paper, only through proposals."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from agent.cli import main
from trading.strategies import STRATEGIES, Bars, ParamSpec, Strategy
from trading.strategies.base import FloatArray


def _events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture()
def sim(isolated_settings: Any, fixed_clock: int, monkeypatch: pytest.MonkeyPatch) -> None:
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
    assert len(list(db["fills"].find({}, {"_id": 1}))) == 0
    states = {d["state"] for d in db["orders"].find({})}
    assert states <= {"pending_approval", "rejected"}


class AlwaysLong(Strategy):
    """Wants a full long position on every bar: the auto-approval tests are about the money path, not about when a
    real signal fires (that depends on the market, hence on the date the simulated market is read at)."""

    name: ClassVar[str] = "always_long"
    family: ClassVar[str] = "test"
    description: ClassVar[str] = "long on every bar"
    PARAMS: ClassVar[tuple[ParamSpec, ...]] = ()

    def warmup(self) -> int:
        return 2

    def _targets(self, data: Sequence[Bars]) -> FloatArray:
        return np.ones(len(data[0].close))


def _run_both(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Switch auto-approval on for a strategy that wants to be long and run it once from a flat paper book."""
    monkeypatch.setitem(STRATEGIES, AlwaysLong.name, AlwaysLong)
    assert main(["strategy", "auto-approve", "always_long:BTC/USDT", "on", "--operator", "alice"]) == 0
    capsys.readouterr()
    assert main(["strategy", "run", "always_long", "--symbol", "BTC/USDT", "--once", "--warmup", "100"]) == 0
    made: list[dict[str, Any]] = _events(capsys.readouterr().out)[-1]["proposals"]
    # from the flat fresh paper book a strategy that wants to be long proposes one buy
    assert len(made) == 1
    assert made[0]["target"] > 0 and made[0]["proposal"]["order"]["request"]["side"] == "buy"
    return made


def test_auto_approval_executes_an_order_the_gate_passes(
    sim: None, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh 100,000 USDT paper book, a long target on an allowed symbol, default limits: the gate must pass at
    proposal and again at approval, and the switched-on auto-approval executes it."""
    from core import storage

    made = _run_both(capsys, monkeypatch)
    db = storage.get_db()
    for entry in made:
        assert entry["proposal"]["status"] == "pending_approval"
        auto = entry["auto_approval"]
        assert auto["status"] == "executed", auto
        assert auto["order"]["state"] == "filled"
    assert len(list(db["fills"].find({}, {"_id": 1}))) >= len(made)
    assert {d["state"] for d in db["orders"].find({})} == {"filled"}
    audit = db["audit_log"].find_one({"action": "strategy_auto_approve"})
    assert audit is not None and audit["actor"] == "alice"


def test_auto_approval_never_passes_a_gate_that_refuses(
    sim: None, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same strategies with auto-approval on, but the desk is HALTED: the gate refuses every proposal, nothing
    is approved, nothing is sent, nothing fills."""
    from core import storage

    assert main(["desk", "halt", "--reason", "test", "--as", "admin"]) == 0
    made = _run_both(capsys, monkeypatch)
    for entry in made:
        assert entry["proposal"]["status"] == "rejected"
        assert any("HALTED" in r for r in entry["proposal"]["reasons"]), entry["proposal"]["reasons"]
        assert "auto_approval" not in entry  # a refused proposal is never put to the auto-approver
    db = storage.get_db()
    assert len(list(db["fills"].find({}, {"_id": 1}))) == 0
    assert {d["state"] for d in db["orders"].find({})} == {"rejected"}


def test_bad_input_exits_2(sim: None, capsys: Any) -> None:
    assert main(["strategy", "run", "nope", "--symbol", "BTC/USDT", "--once"]) == 2
    assert "unknown strategy" in capsys.readouterr().err
    assert main(["strategy", "run", "trend", "--symbol", "BTC/USDT", "--mode", "live", "--once"]) == 2
    assert "LIVE_TRADING" in capsys.readouterr().err
    assert main(["strategy", "run", "trend", "--symbol", "BTC/USDT", "--param", "oops", "--once"]) == 2
