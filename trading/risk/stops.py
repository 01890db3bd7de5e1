"""Stop-loss, trailing-stop and take-profit rules kept by the desk (spot longs: exits are sells).

Pure evaluation here; the trading service persists rules (collection `stops`) and turns a trigger into a
reduce-only sell that still passes the risk gate.
"""

from __future__ import annotations

import math
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


def exit_level_problems(
    side: str,
    *,
    stop_loss: float | None,
    take_profit: float | None,
    bid: float | None,
    ask: float | None,
    limit_price: float | None = None,
    tick: float | None = None,
) -> list[str]:
    """Why the exit levels asked with an order cannot work (empty: they can). Pure; never raises on numbers.

    Exits protect a spot long, so they belong to buys. A stop-loss fires when the bid falls to it: it must lie below
    the entry (the limit price, or the bid for a market buy), or it would sell the moment the buy fills. A
    take-profit fires when the bid rises to it: above the entry (the limit price, or the ask). Both at least one
    tick, and the stop below the take-profit.
    """
    if stop_loss is None and take_profit is None:
        return []
    out: list[str] = []
    if side != "buy":
        return ["stop_loss and take_profit protect a buy (a spot long); a sell has no position for them to exit"]
    for name, level in (("stop_loss", stop_loss), ("take_profit", take_profit)):
        if level is not None and not (level > 0 and math.isfinite(level)):
            out.append(f"{name} must be a finite positive price, got {level}")
        elif level is not None and tick and tick > 0 and level < tick:
            out.append(f"{name} {level:g} is below the tick size {tick:g}")
    if out:
        return out
    sl_ref = limit_price if limit_price is not None else bid
    tp_ref = limit_price if limit_price is not None else ask
    what_sl = "the limit price" if limit_price is not None else "the market (best bid)"
    what_tp = "the limit price" if limit_price is not None else "the market (best ask)"
    if stop_loss is not None and sl_ref is not None and sl_ref > 0 and not stop_loss < sl_ref:
        out.append(f"stop_loss {stop_loss:g} is not below {what_sl} {sl_ref:g}: it would sell as soon as the buy fills")
    if take_profit is not None and tp_ref is not None and tp_ref > 0 and not take_profit > tp_ref:
        out.append(f"take_profit {take_profit:g} is not above {what_tp} {tp_ref:g}")
    if stop_loss is not None and take_profit is not None and not stop_loss < take_profit:
        out.append(f"stop_loss {stop_loss:g} must be below take_profit {take_profit:g}")
    return out
