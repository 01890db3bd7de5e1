"""Stop-loss orders held by the venue itself (exchange-native stops): the pure parts.

A stop-loss rule armed on a live venue that lists a stop order type is also placed there as a reduce-only sell stop,
so the position stays protected while the desk process is down. The desk keeps the rule (and its one-cancels-other
group) and learns of the venue stop's fate by polling it; these helpers decide how much to place where, and at which
limit price.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trading.types import STOP_LIMIT, STOP_MARKET

MAX_LIMIT_OFFSET = 0.2  # a stop-limit's limit more than 20% below its trigger is a market order in disguise
# the trail a venue can hold: Binance takes trailingDelta from 10 to 2,000 basis points
MIN_TRAIL, MAX_TRAIL = 0.001, 0.2


@dataclass(frozen=True, slots=True)
class NativeStop:
    """What the venue is asked to hold: sell when the market trades at `trigger`, at market or down to `limit`."""

    rule_id: str
    kind: str  # STOP_MARKET | STOP_LIMIT
    trigger: float  # for a trailing stop: where it starts (the desk's trigger at placement)
    limit: float | None
    trail_pct: float | None = None


def filled_by_venue(children: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Base bought per venue by an order's children: where each part of the position sits (and can be sold)."""
    out: dict[str, float] = {}
    for child in children:
        qty = float(child.get("filled") or 0.0)
        if qty > 0 and child.get("side") == "buy":
            out[child["venue"]] = out.get(child["venue"], 0.0) + qty
    return out


def stop_limit_price(trigger: float, offset: float, tick: float | None) -> float:
    """The limit of a sell stop-limit: `offset` below the trigger, rounded down to the tick (a sell limit rounded
    up could sit above the market it is meant to hit)."""
    if not 0 < offset <= MAX_LIMIT_OFFSET:
        raise ValueError(f"native stop limit offset must be in (0, {MAX_LIMIT_OFFSET}], got {offset}")
    raw = trigger * (1 - offset)
    if not tick or tick <= 0:
        return raw
    steps = math.floor(raw / tick + 1e-9)
    decimals = max(0, -math.floor(math.log10(tick))) if tick < 1 else 0
    return round(steps * tick, decimals)


def native_spec(
    rule_id: str, kind: str, trigger: float, offset: float, tick: float | None, trail_pct: float | None = None
) -> NativeStop:
    """What to ask the venue for. A trailing stop-limit keeps the limit it was placed with while its trigger
    trails up, so the limit only bounds how far below the starting trigger it may sell."""
    if trail_pct is not None and not MIN_TRAIL <= trail_pct <= MAX_TRAIL:
        raise ValueError(f"a venue trails between {MIN_TRAIL:.1%} and {MAX_TRAIL:.0%}, not {trail_pct:.2%}")
    if kind == STOP_MARKET:
        return NativeStop(rule_id, kind, trigger, None, trail_pct)
    if kind == STOP_LIMIT:
        return NativeStop(rule_id, kind, trigger, stop_limit_price(trigger, offset, tick), trail_pct)
    raise ValueError(f"unknown native stop kind {kind!r}")


def venue_trails(trail_pct: float | None) -> bool:
    return trail_pct is not None and MIN_TRAIL <= trail_pct <= MAX_TRAIL


def stranded(spec_limits: Iterable[float | None], price: float) -> bool:
    """A stop-limit whose market fell through its limit rests unfilled while the loss grows: the desk takes over
    (cancel it, sell at market through the gate). A stop-market never strands."""
    limits = [lim for lim in spec_limits if lim is not None]
    return bool(limits) and price < min(limits)
