"""Order states and the allowed transitions (docs/money-path.md, "States")."""

from __future__ import annotations

from enum import StrEnum


class OrderState(StrEnum):
    PROPOSED = "proposed"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"
    UNRESOLVED = "unresolved"  # sent, outcome unknown: only the exchange can resolve it


S = OrderState

TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.PROPOSED: frozenset({S.PENDING_APPROVAL, S.REJECTED, S.APPROVED}),
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    S.APPROVED: frozenset({S.SUBMITTED, S.REJECTED, S.CANCELLED, S.FAILED, S.UNRESOLVED}),
    S.SUBMITTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.FAILED, S.UNRESOLVED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.UNRESOLVED}),
    S.UNRESOLVED: frozenset({S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.FAILED}),
    S.FILLED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}

TERMINAL: frozenset[OrderState] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# states in which an order (or child order) may still change the book
LIVE: frozenset[OrderState] = frozenset({S.APPROVED, S.SUBMITTED, S.PARTIALLY_FILLED, S.UNRESOLVED})
# child orders that are (or may be) at the venue
AT_VENUE: frozenset[OrderState] = frozenset({S.SUBMITTED, S.PARTIALLY_FILLED, S.UNRESOLVED})


class TransitionError(ValueError):
    pass


def check_transition(frm: OrderState, to: OrderState) -> None:
    if to not in TRANSITIONS[frm]:
        raise TransitionError(f"illegal order transition {frm.value} -> {to.value}")


def exchange_status_to_state(status: str, filled: float, amount: float) -> OrderState:
    """Map a venue's order status onto our states."""
    s = status.lower()
    if s == "open":
        return S.PARTIALLY_FILLED if filled > 0 else S.SUBMITTED
    if s == "closed":
        return S.FILLED if filled >= amount * (1 - 1e-9) else S.CANCELLED
    if s in ("canceled", "cancelled", "expired"):
        return S.CANCELLED
    if s == "rejected":
        return S.FAILED
    return S.UNRESOLVED
