"""Stop-loss, trailing-stop and take-profit rules kept by the desk (spot longs: exits are sells).

Pure evaluation here; the trading service persists rules (collection `stops`) and turns a trigger into a
reduce-only sell that still passes the risk gate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class StopKind(StrEnum):
    STOP_LOSS = "stop_loss"
    TRAILING_STOP = "trailing_stop"
    TAKE_PROFIT = "take_profit"


@dataclass(frozen=True, slots=True)
class StopRule:
    id: str
    symbol: str
    qty: float
    kind: StopKind
    trigger: float  # price that fires the rule (for trailing stops: derived from high_water)
    group: str  # rules of one group are one-cancels-other
    trail_pct: float | None = None
    high_water: float | None = None
    active: bool = True

    def to_doc(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "symbol": self.symbol,
            "qty": self.qty,
            "kind": self.kind.value,
            "trigger": self.trigger,
            "group": self.group,
            "trail_pct": self.trail_pct,
            "high_water": self.high_water,
            "active": self.active,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> StopRule:
        return cls(
            id=str(doc["_id"]),
            symbol=doc["symbol"],
            qty=float(doc["qty"]),
            kind=StopKind(doc["kind"]),
            trigger=float(doc["trigger"]),
            group=str(doc["group"]),
            trail_pct=doc.get("trail_pct"),
            high_water=doc.get("high_water"),
            active=bool(doc.get("active", True)),
        )


def trailing(rule_id: str, symbol: str, qty: float, price: float, trail_pct: float, group: str) -> StopRule:
    if not 0 < trail_pct < 1:
        raise ValueError("trail_pct must be in (0, 1)")
    return StopRule(
        rule_id, symbol, qty, StopKind.TRAILING_STOP, price * (1 - trail_pct), group, trail_pct, price
    )


def evaluate(rule: StopRule, price: float) -> tuple[bool, StopRule]:
    """(fired, rule with updated trailing state). A fired rule is returned inactive."""
    if not rule.active or price <= 0:
        return False, rule
    if rule.kind is StopKind.TRAILING_STOP and rule.trail_pct is not None:
        hw = max(rule.high_water or price, price)
        rule = replace(rule, high_water=hw, trigger=hw * (1 - rule.trail_pct))
    if rule.kind is StopKind.TAKE_PROFIT:
        fired = price >= rule.trigger
    else:
        fired = price <= rule.trigger
    return fired, (replace(rule, active=False) if fired else rule)
