"""The risk gate: a pure function from (intent, portfolio view, market view, limits) to a decision.

The hot path is plain Python over precomputed numbers (no pydantic, no I/O, no allocation beyond the result).
Every order passes here at proposal, at approval and again for every child order right before it is sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from trading.risk.limits import RiskLimits
from trading.types import Market, OrderType, Side

_EPS = 1e-12


class DeskState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"  # only exposure-reducing orders pass
    HALTED = "halted"  # nothing passes


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What someone (agent, person, strategy, stop) wants to trade. Quantities are in the base asset."""

    symbol: str
    side: Side
    qty: float
    type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    reduce_only: bool = False
    allow_resize: bool = False  # let the gate shrink the quantity to fit the limits instead of rejecting


@dataclass(slots=True)
class PortfolioView:
    """The book as the gate needs it, with aggregates precomputed by whoever builds the view."""

    equity: float
    cash_free: float  # spendable quote currency in the scope being checked (a venue, or all venues)
    positions: dict[str, float]  # symbol -> base quantity held (consolidated)
    gross_notional: float  # sum of |position value| at marks
    net_notional: float  # sum of signed position value at marks
    peak_equity: float
    day_start_equity: float
    pending_buy: dict[str, float] = field(default_factory=dict)  # symbol -> base qty in open/unsent buys
    pending_sell: dict[str, float] = field(default_factory=dict)
    pending_buy_notional: float = 0.0  # value of all open/unsent buys (counts toward gross/net exposure)
    orders_last_minute: int = 0
    desk_state: DeskState = DeskState.ACTIVE
    halted_symbols: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class MarketView:
    symbol: str
    bid: float | None
    ask: float | None
    mid: float | None
    market: Market | None = None


class CheckResult(NamedTuple):
    """One check's outcome (a NamedTuple: cheap to build on the hot path)."""

    name: str
    passed: bool
    margin: float | None  # headroom left after this order as a fraction of the limit (None: yes/no check)
    detail: str | None = None


@dataclass(slots=True)
class Decision:
    approved: bool
    qty: float  # possibly adjusted (precision, resize)
    price: float | None  # possibly adjusted (tick size)
    reasons: list[str]
    checks: list[CheckResult]
    reduces_exposure: bool = False
    notional: float = 0.0
    desk_transition: DeskState | None = None  # a breach the desk must apply (REDUCING/HALTED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "approved": self.approved,
            "qty": self.qty,
            "price": self.price,
            "notional": round(self.notional, 8),
            "reduces_exposure": self.reduces_exposure,
            "reasons": list(self.reasons),
            "desk_transition": self.desk_transition.value if self.desk_transition else None,
            "checks": [
                {
                    "name": c.name,
                    "passed": c.passed,
                    "margin": None if c.margin is None else round(c.margin, 6),
                    "detail": c.detail,
                }
                for c in self.checks
            ],
        }

    def headroom_text(self) -> str:
        """One line for a card: the tightest passed check and its headroom."""
        margins = [c for c in self.checks if c.passed and c.margin is not None]
        if not margins:
            return "passed" if self.approved else "; ".join(self.reasons)
        tight = min(margins, key=lambda c: c.margin or 0.0)
        prefix = "passed" if self.approved else "rejected"
        return f"{prefix}; tightest check {tight.name} with {100 * (tight.margin or 0.0):.1f}% headroom"


def _floor_step(value: float, step: float | None) -> float:
    if not step or step <= 0:
        return value
    n = math.floor(value / step + 1e-9)
    return round(n * step, 12)


def _round_price(price: float, tick: float | None, side: Side) -> float:
    if not tick or tick <= 0:
        return price
    n = price / tick
    # buyers never pay more than they asked, sellers never receive less
    k = math.floor(n + 1e-9) if side is Side.BUY else math.ceil(n - 1e-9)
    return round(k * tick, 12)


def _headroom(used: float, limit: float) -> float:
    if limit <= 0:
        return 0.0 if used > 0 else 1.0
    return 1.0 - used / limit


class RiskGate:
    """Stateless; `check` is safe to call from anywhere and never mutates its inputs."""

    @staticmethod
    def check(
        intent: OrderIntent, portfolio: PortfolioView, market: MarketView, limits: RiskLimits
    ) -> Decision:
        checks: list[CheckResult] = []
        reasons: list[str] = []
        sym = intent.symbol
        side = intent.side
        is_buy = side is Side.BUY
        qty = intent.qty
        price = intent.limit_price
        transition: DeskState | None = None

        # --- market price ---
        mid = market.mid
        if mid is None or not mid > 0 or not math.isfinite(mid):
            return Decision(
                False,
                0.0,
                price,
                [f"no usable market price for {sym}"],
                [CheckResult("market_price", False, None, "no mid price")],
            )
        if not (qty > 0 and math.isfinite(qty)):
            return Decision(
                False,
                0.0,
                price,
                [f"quantity must be positive, got {qty}"],
                [CheckResult("quantity", False, None, "non-positive quantity")],
            )

        pos = portfolio.positions.get(sym, 0.0)
        pend_sell = portfolio.pending_sell.get(sym, 0.0)
        pend_buy = portfolio.pending_buy.get(sym, 0.0)
        # reducing: a sell no larger than what is held and not already promised to other sells
        reduces = (not is_buy) and pos > _EPS and qty + pend_sell <= pos * (1 + 1e-9)
        if intent.reduce_only and not reduces:
            reasons.append("reduce-only order would not reduce the position")
            checks.append(CheckResult("reduce_only", False, None, "does not reduce"))

        # --- desk state and symbol halts ---
        state = portfolio.desk_state
        if state is DeskState.HALTED:
            reasons.append("desk is HALTED: no orders pass until an admin resumes")
            checks.append(CheckResult("desk_state", False, None, "halted"))
        elif state is DeskState.REDUCING and not reduces:
            reasons.append("desk is REDUCING: only orders that reduce an existing position pass")
            checks.append(CheckResult("desk_state", False, None, "reducing"))
        else:
            checks.append(CheckResult("desk_state", True, None))
        if sym in portfolio.halted_symbols:
            reasons.append(f"{sym} is halted (reconciliation mismatch or admin action)")
            checks.append(CheckResult("symbol_halt", False, None, "symbol halted"))

        # --- allowlist and market ---
        if sym not in limits.allowed_symbols:
            reasons.append(f"{sym} is not on the allowlist")
            checks.append(CheckResult("allowlist", False, None, "not allowed"))
        else:
            checks.append(CheckResult("allowlist", True, None))
        mkt = market.market
        if mkt is not None and (not mkt.spot or not mkt.active):
            reasons.append(f"{sym} is not an active spot market")
            checks.append(CheckResult("spot_market", False, None, "not spot/active"))

        # --- daily loss and drawdown (breaches move the desk) ---
        equity = portfolio.equity
        day0 = portfolio.day_start_equity
        daily_loss = (day0 - equity) / day0 if day0 > 0 else 0.0
        if daily_loss >= limits.max_daily_loss_pct:
            transition = DeskState.REDUCING
            if not reduces:
                reasons.append(
                    f"daily loss {100 * daily_loss:.2f}% reached the {100 * limits.max_daily_loss_pct:.2f}% "
                    "limit: only reducing orders pass"
                )
                checks.append(CheckResult("daily_loss", False, 0.0, "breached"))
            else:
                checks.append(CheckResult("daily_loss", True, 0.0, "breached; reducing order allowed"))
        else:
            checks.append(
                CheckResult("daily_loss", True, _headroom(max(daily_loss, 0.0), limits.max_daily_loss_pct))
            )
        peak = portfolio.peak_equity
        drawdown = (peak - equity) / peak if peak > 0 else 0.0
        if drawdown >= limits.max_drawdown_pct:
            transition = DeskState.HALTED
            reasons.append(
                f"drawdown {100 * drawdown:.2f}% from peak reached the "
                f"{100 * limits.max_drawdown_pct:.2f}% limit: desk halts"
            )
            checks.append(CheckResult("drawdown", False, 0.0, "breached"))
        else:
            checks.append(
                CheckResult("drawdown", True, _headroom(max(drawdown, 0.0), limits.max_drawdown_pct))
            )

        # --- order rate ---
        rate_used = portfolio.orders_last_minute + 1
        if rate_used > limits.max_orders_per_minute:
            reasons.append(
                f"order rate limit: {portfolio.orders_last_minute} orders in the last minute "
                f"(max {limits.max_orders_per_minute})"
            )
            checks.append(CheckResult("orders_per_minute", False, 0.0, "rate limited"))
        else:
            checks.append(
                CheckResult(
                    "orders_per_minute", True, _headroom(rate_used, float(limits.max_orders_per_minute))
                )
            )

        # --- price: tick size and fat-finger band ---
        if intent.type is OrderType.LIMIT:
            if price is None or not price > 0 or not math.isfinite(price):
                reasons.append("limit order needs a positive limit price")
                checks.append(CheckResult("price_band", False, None, "missing price"))
                return Decision(False, 0.0, price, reasons, checks, reduces, 0.0, transition)
            price = _round_price(price, mkt.price_precision if mkt else None, side)
            dev = abs(price - mid) / mid
            if dev > limits.price_band_pct:
                reasons.append(
                    f"limit price {price:g} is {100 * dev:.2f}% from mid {mid:g} "
                    f"(band {100 * limits.price_band_pct:.2f}%)"
                )
                checks.append(CheckResult("price_band", False, 0.0, "outside band"))
            else:
                checks.append(CheckResult("price_band", True, _headroom(dev, limits.price_band_pct)))
            ref = price
        else:
            top = market.ask if is_buy else market.bid
            base_px = top if top is not None and top > 0 else mid
            ref = base_px * (1.0 + limits.market_slippage_pct) if is_buy else base_px

        # --- sizing caps (exposure-increasing orders only) ---
        fee = mkt.taker_fee if mkt is not None else 0.001
        if is_buy:
            caps: list[tuple[str, float, float, float]] = []  # (name, max qty, used, limit)
            caps.append(
                ("max_order_notional", limits.max_order_notional / ref, qty * ref, limits.max_order_notional)
            )
            held = (pos + pend_buy) * ref
            caps.append(
                (
                    "max_position",
                    (limits.max_position_notional - held) / ref,
                    held + qty * ref,
                    limits.max_position_notional,
                )
            )
            gross = portfolio.gross_notional + portfolio.pending_buy_notional
            caps.append(
                (
                    "gross_exposure",
                    (limits.max_gross_exposure - gross) / ref,
                    gross + qty * ref,
                    limits.max_gross_exposure,
                )
            )
            net = portfolio.net_notional + portfolio.pending_buy_notional
            caps.append(
                (
                    "net_exposure",
                    (limits.max_net_exposure - net) / ref,
                    net + qty * ref,
                    limits.max_net_exposure,
                )
            )
            lev_limit = limits.max_leverage * max(equity, 0.0)
            caps.append(("leverage", (lev_limit - gross) / ref, gross + qty * ref, lev_limit))
            cash = portfolio.cash_free
            caps.append(("cash", cash / (ref * (1.0 + fee)), qty * ref * (1.0 + fee), cash))
            max_qty = min(c[1] for c in caps)
            if qty > max_qty * (1 + 1e-12):
                binding = [c[0] for c in caps if qty > c[1] * (1 + 1e-12)]
                if intent.allow_resize and max_qty > 0:
                    qty = max_qty
                    checks.append(CheckResult("resize", True, None, f"resized to fit {', '.join(binding)}"))
                else:
                    for c in caps:
                        if qty > c[1] * (1 + 1e-12):
                            reasons.append(f"{c[0]}: order would use {c[2]:,.2f} of {c[3]:,.2f}")
                            checks.append(
                                CheckResult(
                                    c[0], False, _headroom(c[2], c[3]) if c[3] > 0 else 0.0, "exceeded"
                                )
                            )
            for name, _cap, _used, lim in caps:
                used = (_used - (intent.qty - qty) * ref) if name != "cash" else qty * ref * (1.0 + fee)
                if qty <= _cap * (1 + 1e-12):
                    checks.append(CheckResult(name, True, _headroom(used, lim)))
        else:
            # spot: no shorting, a sell needs the base asset held and not promised to other sells
            available = pos - pend_sell
            if qty > available * (1 + 1e-9):
                if intent.allow_resize and available > 0:
                    qty = available
                    checks.append(CheckResult("resize", True, None, "resized to the available position"))
                else:
                    reasons.append(
                        f"spot sell of {qty:g} exceeds the available {max(available, 0.0):g} {sym} "
                        "(no shorting on spot)"
                    )
                    checks.append(CheckResult("no_short", False, 0.0, "insufficient position"))
            if qty <= available * (1 + 1e-9):
                checks.append(
                    CheckResult("no_short", True, _headroom(qty, available) if available > 0 else 0.0)
                )
            notional_sell = qty * ref
            if notional_sell > limits.max_order_notional * (1 + 1e-12):
                if intent.allow_resize:
                    qty = limits.max_order_notional / ref
                    checks.append(CheckResult("resize", True, None, "resized to fit max_order_notional"))
                else:
                    reasons.append(
                        f"max_order_notional: order would use {notional_sell:,.2f} of "
                        f"{limits.max_order_notional:,.2f}"
                    )
                    checks.append(CheckResult("max_order_notional", False, 0.0, "exceeded"))
            if qty * ref <= limits.max_order_notional * (1 + 1e-12):
                checks.append(
                    CheckResult("max_order_notional", True, _headroom(qty * ref, limits.max_order_notional))
                )

        # --- exchange precision and minimums ---
        if mkt is not None:
            qty = _floor_step(qty, mkt.amount_precision)
            problems: list[str] = []
            if qty <= 0:
                problems.append("quantity rounds to zero at the exchange step size")
            if mkt.min_amount is not None and qty < mkt.min_amount * (1 - 1e-9):
                problems.append(f"quantity {qty:g} below the exchange minimum {mkt.min_amount:g}")
            if mkt.max_amount is not None and qty > mkt.max_amount * (1 + 1e-9):
                problems.append(f"quantity {qty:g} above the exchange maximum {mkt.max_amount:g}")
            if mkt.min_cost is not None and qty * ref < mkt.min_cost * (1 - 1e-9):
                problems.append(f"notional {qty * ref:.2f} below the exchange minimum {mkt.min_cost:g}")
            if problems:
                reasons.extend(problems)
                checks.append(CheckResult("exchange_minimums", False, None, "; ".join(problems)))
            else:
                checks.append(CheckResult("exchange_minimums", True, None))
        elif qty <= 0:
            reasons.append("quantity is zero after adjustment")

        approved = not reasons
        return Decision(approved, qty, price, reasons, checks, reduces, qty * ref, transition)
