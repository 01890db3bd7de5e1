"""The paper/live runner: target changes become proposals; auto-approval only when an operator switched it on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trading.strategies import MACrossover
from trading.strategies.runner import StrategyControls, StrategyRunner
from trading.types import Candle


@dataclass
class _Res:
    status: str
    order: dict[str, Any] | None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "order": self.order, "reasons": self.reasons}


class _Book:
    def __init__(self) -> None:
        self.cash = 10_000.0
        self.pos: dict[str, float] = {}

    def consolidated(self) -> dict[str, float]:
        return dict(self.pos)

    def equity(self, marks: dict[str, float]) -> float:
        return self.cash + sum(q * marks[s] for s, q in self.pos.items())


class _Service:
    """Records calls; `reject` makes the gate refuse proposals."""

    def __init__(self, reject: bool = False) -> None:
        self.portfolio = _Book()
        self.proposals: list[tuple[Any, str, str]] = []
        self.approvals: list[tuple[str, str]] = []
        self.reject = reject

    def propose(self, request: Any, requester: str, *, source: str = "user") -> _Res:
        self.proposals.append((request, requester, source))
        if self.reject:
            return _Res("rejected", {"id": "x"}, ["gate says no"])
        return _Res("pending_approval", {"id": f"o{len(self.proposals)}"})

    async def approve(self, order_id: str, approver: str, *, execute: bool = True) -> _Res:
        self.approvals.append((order_id, approver))
        return _Res("executed", {"id": order_id})


def _candles(closes: list[float]) -> list[Candle]:
    return [Candle(i * 3_600_000, c, c, c, c, 1e6) for i, c in enumerate(closes)]


async def _run(service: _Service, controls: StrategyControls, auto: bool) -> list[dict[str, Any]]:
    closes = list(np.concatenate([np.full(20, 100.0), 100.0 + np.arange(1.0, 11.0)]))
    runner = StrategyRunner(MACrossover(fast=2, slow=5), ["BTC/USDT"], service, controls)
    controls.set_auto_approve(runner.strategy_id, auto, operator="alice")
    cs = _candles(closes)
    runner.warm_up([cs[:10]])
    out: list[dict[str, Any]] = []
    for c in cs[10:]:
        out.extend(await runner.on_candles([c]))
    return out


async def test_target_change_becomes_a_proposal_that_waits_for_a_person(mongo_db: Any) -> None:
    service = _Service()
    out = await _run(service, StrategyControls(mongo_db), auto=False)
    assert len(out) == 1 and len(service.proposals) == 1
    request, requester, source = service.proposals[0]
    assert request.side.value == "buy" and request.qty == 10_000.0 / 101.0
    assert requester.startswith("strategy:ma_crossover") and source == "strategy"
    assert service.approvals == []


async def test_auto_approval_when_switched_on_and_never_past_the_gate(mongo_db: Any) -> None:
    service = _Service()
    out = await _run(service, StrategyControls(mongo_db), auto=True)
    assert len(service.approvals) == 1 and service.approvals[0][1].startswith("auto:")
    assert out[0]["auto_approval"]["status"] == "executed"
    refused = _Service(reject=True)
    await _run(refused, StrategyControls(mongo_db), auto=True)
    assert len(refused.proposals) == 1 and refused.approvals == []
