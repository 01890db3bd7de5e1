"""Positions and balances per venue and consolidated, folded from fills.

The fills collection (append-only, one document per fill, unique id) is the source of truth; a `Portfolio` is a
fold over it that the trading service keeps in memory, rebuilds on start, and refolds whenever another process has
added a fill (see `TradingService.portfolio`).

Marks come from market data. A held symbol with no mark has an *unknown* value, never a value of zero: `valuation`
reports equity and exposures as unknown (None) and names the unmarked symbols, so a missing price is never mistaken
for a loss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trading.risk.limits import STABLE_QUOTES


@dataclass(slots=True)
class Position:
    venue: str
    symbol: str
    qty: float = 0.0
    avg_cost: float = 0.0
    realised_pnl: float = 0.0
    fees_quote: float = 0.0

    def to_dict(self, mark: float | None = None) -> dict[str, Any]:
        unknown = mark is None and bool(self.qty)
        unreal = (mark - self.avg_cost) * self.qty if mark is not None and self.qty else 0.0
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "qty": round(self.qty, 12),
            "avg_cost": round(self.avg_cost, 8),
            "mark": mark,
            "mark_state": "unknown" if unknown else "known",
            "value": None if mark is None else round(self.qty * mark, 8),
            "realised_pnl": round(self.realised_pnl, 8),
            "unrealised_pnl": None if unknown else round(unreal, 8),
            "fees_quote": round(self.fees_quote, 8),
        }


@dataclass(frozen=True, slots=True)
class Valuation:
    """The book at a set of marks. With any held symbol unmarked, equity and exposures are unknown (None)."""

    cash: float  # stable-quote cash over all venues
    equity: float | None
    gross: float | None
    net: float | None
    unmarked: tuple[str, ...]  # held symbols with no mark, sorted

    @property
    def known(self) -> bool:
        return not self.unmarked

    def unknown_reason(self) -> str | None:
        if not self.unmarked:
            return None
        return f"equity unknown: no mark for {', '.join(self.unmarked)}"


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    if not base or not quote:
        raise ValueError(f"symbol must look like BASE/QUOTE, got {symbol!r}")
    return base, quote.split(":")[0]


def _usable(mark: float | None) -> bool:
    return mark is not None and math.isfinite(mark) and mark > 0


class Portfolio:
    def __init__(
        self,
        initial_balances: Mapping[str, Mapping[str, float]] | None = None,
        cost_basis: Mapping[str, float] | None = None,
    ) -> None:
        """`initial_balances`: venue -> asset -> amount. `cost_basis`: asset -> price for initial base holdings."""
        self.cash: dict[str, dict[str, float]] = {}
        self.positions: dict[tuple[str, str], Position] = {}
        self.fill_count = 0
        basis = dict(cost_basis or {})
        for venue, assets in (initial_balances or {}).items():
            self.cash[venue] = {}
            for asset, amount in assets.items():
                self.cash[venue][asset] = float(amount)
                if asset not in STABLE_QUOTES and amount:
                    quote = "USDT"
                    pos = self._pos(venue, f"{asset}/{quote}")
                    pos.qty = float(amount)
                    pos.avg_cost = float(basis.get(asset, 0.0))

    def _pos(self, venue: str, symbol: str) -> Position:
        key = (venue, symbol)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Position(venue, symbol)
        return pos

    def apply_fill(
        self,
        venue: str,
        symbol: str,
        side: str,
        qty: float,
        price: float,
        fee_cost: float = 0.0,
        fee_currency: str | None = None,
    ) -> None:
        base, quote = split_symbol(symbol)
        cash = self.cash.setdefault(venue, {})
        pos = self._pos(venue, symbol)
        fee_quote = 0.0
        fee_base = 0.0
        if fee_cost:
            if fee_currency in (None, quote):
                fee_quote = fee_cost
            elif fee_currency == base:
                fee_base = fee_cost
            elif fee_currency is not None:
                cash[fee_currency] = cash.get(fee_currency, 0.0) - fee_cost
        notional = qty * price
        if side == "buy":
            cash[quote] = cash.get(quote, 0.0) - notional - fee_quote
            received = qty - fee_base
            new_qty = pos.qty + received
            # fees paid in quote are part of the cost basis; base fees shrink the quantity for the same cost
            cost_total = pos.avg_cost * max(pos.qty, 0.0) + notional + fee_quote
            pos.avg_cost = cost_total / new_qty if new_qty > 1e-15 else 0.0
            pos.qty = new_qty
            cash[base] = cash.get(base, 0.0) + received
        else:
            cash[quote] = cash.get(quote, 0.0) + notional - fee_quote
            cash[base] = cash.get(base, 0.0) - qty - fee_base
            pos.realised_pnl += (price - pos.avg_cost) * qty - fee_quote - fee_base * price
            pos.qty -= qty + fee_base
            if abs(pos.qty) < 1e-12:
                pos.qty = 0.0
        pos.fees_quote += fee_quote + fee_base * price
        self.fill_count += 1

    # --- views ---
    def consolidated(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for (_venue, symbol), pos in self.positions.items():
            if pos.qty:
                out[symbol] = out.get(symbol, 0.0) + pos.qty
        return out

    def venue_positions(self, venue: str) -> dict[str, float]:
        return {s: p.qty for (v, s), p in self.positions.items() if v == venue and p.qty}

    def quote_cash(self, venue: str | None = None) -> float:
        total = 0.0
        for v, assets in self.cash.items():
            if venue is not None and v != venue:
                continue
            for asset, amount in assets.items():
                if asset in STABLE_QUOTES:
                    total += amount
        return total

    def exposures(self, marks: Mapping[str, float]) -> tuple[float, float]:
        gross = net = 0.0
        for symbol, qty in self.consolidated().items():
            value = qty * marks.get(symbol, 0.0)
            gross += abs(value)
            net += value
        return gross, net

    def equity(self, marks: Mapping[str, float]) -> float:
        """Cash plus positions at `marks`; a caller that may lack a mark uses `valuation` instead."""
        return self.quote_cash() + self.exposures(marks)[1]

    def unmarked(self, marks: Mapping[str, float]) -> tuple[str, ...]:
        """Held symbols without a usable (positive, finite) mark."""
        return tuple(sorted(s for s in self.consolidated() if not _usable(marks.get(s))))

    def valuation(self, marks: Mapping[str, float]) -> Valuation:
        cash = self.quote_cash()
        missing = self.unmarked(marks)
        if missing:
            return Valuation(cash, None, None, None, missing)
        gross, net = self.exposures(marks)
        return Valuation(cash, cash + net, gross, net, ())

    def realised(self) -> float:
        return sum(p.realised_pnl for p in self.positions.values())

    def unrealised(self, marks: Mapping[str, float]) -> float:
        total = 0.0
        for (_v, symbol), pos in self.positions.items():
            mark = marks.get(symbol)
            if mark is not None and pos.qty:
                total += (mark - pos.avg_cost) * pos.qty
        return total

    def rows(self, marks: Mapping[str, float]) -> list[dict[str, Any]]:
        return [p.to_dict(marks.get(p.symbol)) for p in self.positions.values() if p.qty or p.realised_pnl]

    def consolidated_rows(self, marks: Mapping[str, float]) -> list[dict[str, Any]]:
        agg: dict[str, Position] = {}
        for p in self.positions.values():
            a = agg.setdefault(p.symbol, Position("all", p.symbol))
            cost = a.avg_cost * a.qty + p.avg_cost * p.qty
            a.qty += p.qty
            a.avg_cost = cost / a.qty if a.qty > 1e-15 else 0.0
            a.realised_pnl += p.realised_pnl
            a.fees_quote += p.fees_quote
        return [a.to_dict(marks.get(a.symbol)) for a in agg.values() if a.qty or a.realised_pnl]

    @classmethod
    def replay(
        cls,
        initial_balances: Mapping[str, Mapping[str, float]],
        fills: Iterable[Mapping[str, Any]],
        cost_basis: Mapping[str, float] | None = None,
    ) -> Portfolio:
        pf = cls(initial_balances, cost_basis)
        for f in fills:
            pf.apply_fill(
                f["venue"],
                f["symbol"],
                f["side"],
                float(f["qty"]),
                float(f["price"]),
                float(f.get("fee_cost", 0.0)),
                f.get("fee_currency"),
            )
        return pf
