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
    # why equity is unknown (a held symbol has no mark), else None. An unknown mark is never a loss: the daily-loss
    # and drawdown limits are not evaluated on it, and only orders that reduce a position pass until it is priced.
    equity_unknown: str | None = None


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


def _round_price(price: float, tick: float | None, side: Side) -> float:
    if not tick or tick <= 0:
        return price
    n = price / tick
    if not math.isfinite(n):  # a price too large to count in ticks: left as is (the price band refuses it)
        return price
    # buyers never pay more than they asked, sellers never receive less
    k = math.floor(n + 1e-9) if side is _BUY else math.ceil(n - 1e-9)
    return round(k * tick, 12)


def _headroom(used: float, limit: float) -> float:
    if limit <= 0:
        return 0.0 if used > 0 else 1.0
    return 1.0 - used / limit


# Hot-path bindings: in Python 3.11 an enum member read through its class costs ~0.2-0.3 us (EnumType
# attribute machinery); a module global costs ~0.02 us. Identity checks against these are unchanged.
_BUY = Side.BUY
_LIMIT = OrderType.LIMIT
_HALTED = DeskState.HALTED
_REDUCING = DeskState.REDUCING
_isfinite = math.isfinite
_floor = math.floor
# Build CheckResults with tuple.__new__ directly (what the NamedTuple constructor does, minus its extra
# Python-level call); the result is the same CheckResult.
_mk = tuple.__new__
_CR = CheckResult
# Yes/no outcomes carry no numbers, so one shared (immutable) instance each instead of an allocation per check.
_OK_DESK = CheckResult("desk_state", True, None)
_OK_ALLOW = CheckResult("allowlist", True, None)
_OK_EXCH = CheckResult("exchange_minimums", True, None)
_FAIL_REDUCE_ONLY = CheckResult("reduce_only", False, None, "does not reduce")
_FAIL_HALTED = CheckResult("desk_state", False, None, "halted")
_FAIL_REDUCING = CheckResult("desk_state", False, None, "reducing")
_FAIL_SYMBOL_HALT = CheckResult("symbol_halt", False, None, "symbol halted")
_FAIL_ALLOW = CheckResult("allowlist", False, None, "not allowed")
_FAIL_SPOT = CheckResult("spot_market", False, None, "not spot/active")


class RiskGate:
    """Stateless; `check` is safe to call from anywhere and never mutates its inputs."""

    @staticmethod
    def check(
        intent: OrderIntent, portfolio: PortfolioView, market: MarketView, limits: RiskLimits
    ) -> Decision:
        # Written for speed (it runs for every order and every child order): locals instead of repeated
        # attribute reads, headroom inlined, f-strings only on failing checks. The checks, their order, the
        # numbers and the reason texts are those of the straightforward version it replaced
        # (tests/money/test_money_gate_fingerprint.py pins them).
        sym = intent.symbol
        is_buy = intent.side is _BUY
        qty = intent.qty
        price = intent.limit_price
        transition: DeskState | None = None

        # --- market price ---
        mid = market.mid
        if mid is None or not mid > 0 or not _isfinite(mid):
            return Decision(
                False,
                0.0,
                price,
                [f"no usable market price for {sym}"],
                [CheckResult("market_price", False, None, "no mid price")],
            )
        if not (qty > 0 and _isfinite(qty)):
            return Decision(
                False,
                0.0,
                price,
                [f"quantity must be positive, got {qty}"],
                [CheckResult("quantity", False, None, "non-positive quantity")],
            )

        reasons: list[str] = []
        checks: list[CheckResult] = []
        add = checks.append
        pos = portfolio.positions.get(sym, 0.0)
        pend_sell = portfolio.pending_sell.get(sym, 0.0)
        # reducing: a sell no larger than what is held and not already promised to other sells
        reduces = (not is_buy) and pos > _EPS and qty + pend_sell <= pos * (1 + 1e-9)
        if intent.reduce_only and not reduces:
            reasons.append("reduce-only order would not reduce the position")
            add(_FAIL_REDUCE_ONLY)

        # --- desk state and symbol halts ---
        state = portfolio.desk_state
        if state is _HALTED:
            reasons.append("desk is HALTED: no orders pass until an admin resumes")
            add(_FAIL_HALTED)
        elif state is _REDUCING and not reduces:
            reasons.append("desk is REDUCING: only orders that reduce an existing position pass")
            add(_FAIL_REDUCING)
        else:
            add(_OK_DESK)
        halted = portfolio.halted_symbols
        if halted and sym in halted:
            reasons.append(f"{sym} is halted (reconciliation mismatch or admin action)")
            add(_FAIL_SYMBOL_HALT)

        # --- allowlist and market ---
        if sym not in limits.allowed_symbols:
            reasons.append(f"{sym} is not on the allowlist")
            add(_FAIL_ALLOW)
        else:
            add(_OK_ALLOW)
        mkt = market.market
        if mkt is not None and (not mkt.spot or not mkt.active):
            reasons.append(f"{sym} is not an active spot market")
            add(_FAIL_SPOT)

        # --- daily loss and drawdown (breaches move the desk) ---
        equity = portfolio.equity
        day0 = portfolio.day_start_equity
        unknown = portfolio.equity_unknown
        if unknown is not None:
            day0 = 0.0  # no loss is measured on an unknown equity (the drawdown below likewise)
            if not reduces:
                reasons.append(f"{unknown}: only orders that reduce a position pass until it is priced")
                add(CheckResult("equity_known", False, None, unknown))
        daily_loss = (day0 - equity) / day0 if day0 > 0 else 0.0
        lim = limits.max_daily_loss_pct
        if daily_loss >= lim:
            transition = _REDUCING
            if not reduces:
                reasons.append(
                    f"daily loss {100 * daily_loss:.2f}% reached the {100 * lim:.2f}% "
                    "limit: only reducing orders pass"
                )
                add(_mk(_CR, ("daily_loss", False, 0.0, "breached")))
            else:
                add(_mk(_CR, ("daily_loss", True, 0.0, "breached; reducing order allowed")))
        else:
            used = 0.0 if 0.0 > daily_loss else daily_loss  # max(daily_loss, 0.0), NaN included
            add(_mk(_CR, ("daily_loss", True, 1.0 - used / lim if lim > 0 else (0.0 if used > 0 else 1.0), None)))
        peak = portfolio.peak_equity if unknown is None else 0.0
        drawdown = (peak - equity) / peak if peak > 0 else 0.0
        lim = limits.max_drawdown_pct
        if drawdown >= lim:
            transition = _HALTED
            reasons.append(
                f"drawdown {100 * drawdown:.2f}% from peak reached the "
                f"{100 * lim:.2f}% limit: desk halts"
            )
            add(_mk(_CR, ("drawdown", False, 0.0, "breached")))
        else:
            used = 0.0 if 0.0 > drawdown else drawdown
            add(_mk(_CR, ("drawdown", True, 1.0 - used / lim if lim > 0 else (0.0 if used > 0 else 1.0), None)))

        # --- order rate ---
        rate_used = portfolio.orders_last_minute + 1
        max_rate = limits.max_orders_per_minute
        if rate_used > max_rate:
            reasons.append(
                f"order rate limit: {portfolio.orders_last_minute} orders in the last minute "
                f"(max {max_rate})"
            )
            add(_mk(_CR, ("orders_per_minute", False, 0.0, "rate limited")))
        else:
            lim = float(max_rate)
            add(
                _mk(
                    _CR,
                    (
                        "orders_per_minute",
                        True,
                        1.0 - rate_used / lim if lim > 0 else (0.0 if rate_used > 0 else 1.0),
                        None,
                    ),
                )
            )

        # --- price: tick size and fat-finger band ---
        if intent.type is _LIMIT:
            if price is None or not price > 0 or not _isfinite(price):
                reasons.append("limit order needs a positive limit price")
                add(CheckResult("price_band", False, None, "missing price"))
                return Decision(False, 0.0, price, reasons, checks, reduces, 0.0, transition)
            price = _round_price(price, mkt.price_precision if mkt else None, intent.side)
            if not price > 0:  # below one tick: rounds to zero, and nothing can be valued at it
                reasons.append(
                    f"limit price {intent.limit_price:g} is below the tick size "
                    f"{mkt.price_precision if mkt else 0.0:g}"
                )
                add(CheckResult("price_band", False, None, "below the tick size"))
                return Decision(False, 0.0, price, reasons, checks, reduces, 0.0, transition)
            dev = abs(price - mid) / mid
            lim = limits.price_band_pct
            if dev > lim:
                reasons.append(
                    f"limit price {price:g} is {100 * dev:.2f}% from mid {mid:g} "
                    f"(band {100 * lim:.2f}%)"
                )
                add(_mk(_CR, ("price_band", False, 0.0, "outside band")))
            else:
                add(_mk(_CR, ("price_band", True, 1.0 - dev / lim if lim > 0 else (0.0 if dev > 0 else 1.0), None)))
            ref = price
        else:
            top = market.ask if is_buy else market.bid
            base_px = top if top is not None and top > 0 else mid
            ref = base_px * (1.0 + limits.market_slippage_pct) if is_buy else base_px

        # --- sizing caps (exposure-increasing orders only) ---
        fee = mkt.taker_fee if mkt is not None else 0.001
        if is_buy:
            pend_buy = portfolio.pending_buy.get(sym, 0.0)
            qref = qty * ref
            lim_order = limits.max_order_notional
            cap_order = lim_order / ref
            held = (pos + pend_buy) * ref
            lim_pos = limits.max_position_notional
            cap_pos = (lim_pos - held) / ref
            used_pos = held + qref
            gross = portfolio.gross_notional + portfolio.pending_buy_notional
            lim_gross = limits.max_gross_exposure
            cap_gross = (lim_gross - gross) / ref
            used_gross = gross + qref
            net = portfolio.net_notional + portfolio.pending_buy_notional
            lim_net = limits.max_net_exposure
            cap_net = (lim_net - net) / ref
            used_net = net + qref
            lev_limit = limits.max_leverage * (0.0 if 0.0 > equity else equity)  # max(equity, 0.0)
            cap_lev = (lev_limit - gross) / ref
            cash = portfolio.cash_free
            per_unit = ref * (1.0 + fee)
            cap_cash = cash / per_unit if per_unit > 0 else 0.0
            max_qty = min(cap_order, cap_pos, cap_gross, cap_net, cap_lev, cap_cash)
            if qty > max_qty * (1 + 1e-12):
                # (name, max qty, used, limit), in the order the checks are reported
                caps = (
                    ("max_order_notional", cap_order, qref, lim_order),
                    ("max_position", cap_pos, used_pos, lim_pos),
                    ("gross_exposure", cap_gross, used_gross, lim_gross),
                    ("net_exposure", cap_net, used_net, lim_net),
                    ("leverage", cap_lev, used_gross, lev_limit),
                    ("cash", cap_cash, qty * ref * (1.0 + fee), cash),
                )
                if intent.allow_resize and max_qty > 0:
                    binding = [c[0] for c in caps if qty > c[1] * (1 + 1e-12)]
                    qty = max_qty
                    add(CheckResult("resize", True, None, f"resized to fit {', '.join(binding)}"))
                else:
                    for name, cap, used, lim in caps:
                        if qty > cap * (1 + 1e-12):
                            reasons.append(f"{name}: order would use {used:,.2f} of {lim:,.2f}")
                            add(_mk(_CR, (name, False, 1.0 - used / lim if lim > 0 else 0.0, "exceeded")))
            # passed caps, with the usage of the (possibly resized) order
            shrink = (intent.qty - qty) * ref
            if qty <= cap_order * (1 + 1e-12):
                used = qref - shrink
                hr = 1.0 - used / lim_order if lim_order > 0 else (0.0 if used > 0 else 1.0)
                add(_mk(_CR, ("max_order_notional", True, hr, None)))
            if qty <= cap_pos * (1 + 1e-12):
                used = used_pos - shrink
                hr = 1.0 - used / lim_pos if lim_pos > 0 else (0.0 if used > 0 else 1.0)
                add(_mk(_CR, ("max_position", True, hr, None)))
            if qty <= cap_gross * (1 + 1e-12):
                used = used_gross - shrink
                hr = 1.0 - used / lim_gross if lim_gross > 0 else (0.0 if used > 0 else 1.0)
                add(_mk(_CR, ("gross_exposure", True, hr, None)))
            if qty <= cap_net * (1 + 1e-12):
                used = used_net - shrink
                hr = 1.0 - used / lim_net if lim_net > 0 else (0.0 if used > 0 else 1.0)
                add(_mk(_CR, ("net_exposure", True, hr, None)))
            if qty <= cap_lev * (1 + 1e-12):
                used = used_gross - shrink
                hr = 1.0 - used / lev_limit if lev_limit > 0 else (0.0 if used > 0 else 1.0)
                add(_mk(_CR, ("leverage", True, hr, None)))
            if qty <= cap_cash * (1 + 1e-12):
                used = qty * ref * (1.0 + fee)
                add(_mk(_CR, ("cash", True, 1.0 - used / cash if cash > 0 else (0.0 if used > 0 else 1.0), None)))
        else:
            # spot: no shorting, a sell needs the base asset held and not promised to other sells
            available = pos - pend_sell
            if qty > available * (1 + 1e-9):
                if intent.allow_resize and available > 0:
                    qty = available
                    add(CheckResult("resize", True, None, "resized to the available position"))
                else:
                    reasons.append(
                        f"spot sell of {qty:g} exceeds the available {max(available, 0.0):g} {sym} "
                        "(no shorting on spot)"
                    )
                    add(_mk(_CR, ("no_short", False, 0.0, "insufficient position")))
            if qty <= available * (1 + 1e-9):
                add(_mk(_CR, ("no_short", True, 1.0 - qty / available if available > 0 else 0.0, None)))
            lim_order = limits.max_order_notional
            notional_sell = qty * ref
            if notional_sell > lim_order * (1 + 1e-12):
                if intent.allow_resize:
                    qty = lim_order / ref
                    add(CheckResult("resize", True, None, "resized to fit max_order_notional"))
                else:
                    reasons.append(
                        f"max_order_notional: order would use {notional_sell:,.2f} of "
                        f"{lim_order:,.2f}"
                    )
                    add(_mk(_CR, ("max_order_notional", False, 0.0, "exceeded")))
            if qty * ref <= lim_order * (1 + 1e-12):
                add(_mk(_CR, ("max_order_notional", True, _headroom(qty * ref, lim_order), None)))

        # --- exchange precision and minimums ---
        if mkt is not None:
            step = mkt.amount_precision
            if step and not step <= 0:  # floor to the exchange step (a NaN step raises, as it always did)
                steps = qty / step + 1e-9
                if _isfinite(steps):  # a quantity too large to count in steps stays as is (the maximum refuses it)
                    qty = round(_floor(steps) * step, 12)
            min_amount = mkt.min_amount
            max_amount = mkt.max_amount
            min_cost = mkt.min_cost
            if (
                qty <= 0
                or (min_amount is not None and qty < min_amount * (1 - 1e-9))
                or (max_amount is not None and qty > max_amount * (1 + 1e-9))
                or (min_cost is not None and qty * ref < min_cost * (1 - 1e-9))
            ):
                problems: list[str] = []
                if qty <= 0:
                    problems.append("quantity rounds to zero at the exchange step size")
                if min_amount is not None and qty < min_amount * (1 - 1e-9):
                    problems.append(f"quantity {qty:g} below the exchange minimum {min_amount:g}")
                if max_amount is not None and qty > max_amount * (1 + 1e-9):
                    problems.append(f"quantity {qty:g} above the exchange maximum {max_amount:g}")
                if min_cost is not None and qty * ref < min_cost * (1 - 1e-9):
                    problems.append(f"notional {qty * ref:.2f} below the exchange minimum {min_cost:g}")
                reasons.extend(problems)
                add(CheckResult("exchange_minimums", False, None, "; ".join(problems)))
            else:
                add(_OK_EXCH)
        elif qty <= 0:
            reasons.append("quantity is zero after adjustment")

        return Decision(not reasons, qty, price, reasons, checks, reduces, qty * ref, transition)
