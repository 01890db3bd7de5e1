"""Smart order routing: pick venue(s) by price after fees and available depth; split when cheaper.

Pure and allocation-light: one list of candidate levels across venues, one sort, one greedy pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from trading.types import OrderBook, Side

_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class VenueQuote:
    venue: str
    book: OrderBook
    taker_fee: float
    max_qty: float = math.inf  # what this venue's balance allows (base qty)


@dataclass(frozen=True, slots=True)
class Allocation:
    venue: str
    qty: float
    avg_price: float
    cost: float  # buys: quote paid incl. fees; sells: quote received after fees


@dataclass(slots=True)
class RoutePlan:
    side: Side
    qty: float
    allocations: list[Allocation] = field(default_factory=list)
    filled_qty: float = 0.0
    total: float = 0.0  # buys: cost incl. fees; sells: proceeds after fees
    split: bool = False
    best_single_venue: str | None = None
    single_venue_total: float | None = None
    savings_bps: float = 0.0

    @property
    def avg_effective_price(self) -> float | None:
        return self.total / self.filled_qty if self.filled_qty > 0 else None

    def to_dict(self) -> dict[str, object]:
        return {
            "side": self.side.value,
            "qty": self.qty,
            "filled_qty": self.filled_qty,
            "total": self.total,
            "split": self.split,
            "best_single_venue": self.best_single_venue,
            "single_venue_total": self.single_venue_total,
            "savings_bps": round(self.savings_bps, 3),
            "allocations": [
                {"venue": a.venue, "qty": a.qty, "avg_price": a.avg_price, "cost": a.cost} for a in self.allocations
            ],
        }


def _single(q: VenueQuote, is_buy: bool, qty: float, limit_price: float | None) -> tuple[float, float, float]:
    """(filled, notional before fees, total after fees) for filling `qty` on one venue alone."""
    left = min(qty, q.max_qty)
    notional = 0.0
    filled = 0.0
    for lvl in q.book.asks if is_buy else q.book.bids:
        if left <= _EPS:
            break
        if limit_price is not None and (lvl.price > limit_price if is_buy else lvl.price < limit_price):
            break
        take = lvl.amount if lvl.amount < left else left
        notional += take * lvl.price
        filled += take
        left -= take
    total = notional * (1 + q.taker_fee) if is_buy else notional * (1 - q.taker_fee)
    return filled, notional, total


def route(
    side: Side,
    qty: float,
    quotes: Sequence[VenueQuote],
    *,
    limit_price: float | None = None,
    min_split_savings_bps: float = 1.0,
) -> RoutePlan:
    """Allocate `qty` across venues.

    The split plan takes levels across all venues best-first by fee-adjusted price (respecting each venue's
    `max_qty`). It is used only when it fills more than the best single venue, or saves at least
    `min_split_savings_bps` against it; otherwise everything goes to the best single venue.
    """
    is_buy = side is Side.BUY
    plan = RoutePlan(side, qty)
    if qty <= 0 or not quotes:
        return plan

    # best single venue: most filled, then cheapest (buys) / richest (sells)
    best: tuple[float, float, int] | None = None  # (filled, total, index)
    singles: list[tuple[float, float, float]] = []
    for i, q in enumerate(quotes):
        one = _single(q, is_buy, qty, limit_price)
        singles.append(one)
        filled, total = one[0], one[2]
        if filled <= _EPS:
            continue
        if (
            best is None
            or filled > best[0] + _EPS
            or (abs(filled - best[0]) <= _EPS and (total < best[1] if is_buy else total > best[1]))
        ):
            best = (filled, total, i)

    # merged book across venues by effective (fee-adjusted) price
    cands: list[tuple[float, float, float, int]] = []  # (key, price, amount, venue index)
    for i, q in enumerate(quotes):
        fee_mult = 1.0 + q.taker_fee if is_buy else 1.0 - q.taker_fee
        acc = 0.0
        for lvl in q.book.asks if is_buy else q.book.bids:
            if limit_price is not None and (lvl.price > limit_price if is_buy else lvl.price < limit_price):
                break
            eff = lvl.price * fee_mult
            cands.append((eff if is_buy else -eff, lvl.price, lvl.amount, i))
            acc += lvl.amount
            if acc >= qty or acc >= q.max_qty:
                break
    cands.sort()
    left = qty
    used = [0.0] * len(quotes)
    notional = [0.0] * len(quotes)
    for _key, price, amount, i in cands:
        if left <= _EPS:
            break
        room = quotes[i].max_qty - used[i]
        take = min(amount, left, room)
        if take <= _EPS:
            continue
        used[i] += take
        notional[i] += take * price
        left -= take
    split_filled = qty - left
    split_total = 0.0
    for i, q in enumerate(quotes):
        if used[i] > 0:
            split_total += notional[i] * (1 + q.taker_fee if is_buy else 1 - q.taker_fee)

    if best is not None:
        plan.best_single_venue = quotes[best[2]].venue
        plan.single_venue_total = best[1]
    use_split = False
    if sum(1 for u in used if u > 0) > 1:
        if best is None or split_filled > best[0] + _EPS:
            use_split = True
        elif best[1] > 0:
            # compare per unit (filled quantities are equal here)
            saving = (best[1] - split_total) / best[1] if is_buy else (split_total - best[1]) / best[1]
            plan.savings_bps = saving * 10_000.0
            use_split = plan.savings_bps >= min_split_savings_bps
    if use_split:
        plan.split = True
        plan.filled_qty = split_filled
        plan.total = split_total
        for i, q in enumerate(quotes):
            if used[i] > 0:
                cost = notional[i] * (1 + q.taker_fee if is_buy else 1 - q.taker_fee)
                plan.allocations.append(Allocation(q.venue, used[i], notional[i] / used[i], cost))
    elif best is not None:
        filled, n_notional, total = singles[best[2]]
        plan.filled_qty = filled
        plan.total = total
        plan.allocations.append(Allocation(quotes[best[2]].venue, filled, n_notional / filled, total))
        plan.savings_bps = 0.0
    return plan


def affordable_qty(book: OrderBook, cash: float, taker_fee: float, *, limit_price: float | None = None) -> float:
    """Base quantity a buy can pay for with `cash` (fees included): walking the asks for a market order, at the
    limit price for a limit order."""
    if cash <= 0:
        return 0.0
    if limit_price is not None:
        return cash / (limit_price * (1.0 + taker_fee)) if limit_price > 0 else 0.0
    left = cash
    qty = 0.0
    for lvl in book.asks:
        unit = lvl.price * (1.0 + taker_fee)
        if lvl.amount * unit >= left:
            return qty + left / unit
        left -= lvl.amount * unit
        qty += lvl.amount
    return qty
