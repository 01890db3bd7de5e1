"""The trade proposal card (Block Kit) and where each card lives (`slack_cards`: order id -> channel, ts).

The card is always rendered from the order document, so rendering is idempotent: any number of edits for the
same state give the same card. `rendered_state` records what the card shows; the sweep re-renders cards whose
order moved on (expiry, a decision through another door, execution finishing).
"""

from __future__ import annotations

import re
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

from agent.slack.rendering import context, escape, fmt_num, fmt_pct, forecast_line, header, section, sentiment_line
from agent.slack.rendering import slack_date as date
from core.clock import now_ms

Doc = dict[str, Any]
APPROVE = "trade_approve"
REJECT = "trade_reject"
FINAL_STATES = ("filled", "rejected", "expired", "cancelled", "failed")

_STATUS = {
    "pending_approval": ":hourglass_flowing_sand: *Pending approval*",
    "approved": ":white_check_mark: *Approved*: sending to the venue…",
    "submitted": ":arrows_counterclockwise: *Approved*: submitted, waiting for fills…",
    "partially_filled": ":arrows_counterclockwise: *Approved*: partially filled…",
    "filled": ":white_check_mark: *Executed*",
    "rejected": ":x: *Rejected*",
    "expired": ":hourglass: *Expired*: nobody decided in time; the proposal is void",
    "cancelled": ":no_entry_sign: *Cancelled*",
    "failed": ":warning: *Failed*",
    "unresolved": ":warning: *Outcome unknown*: the venue has not confirmed; reconciliation will settle it",
}


_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def _user(actor: str | None) -> str | None:
    """The Slack user id behind an actor (`U123`, or `slack:U123`), if it is one."""
    if not actor:
        return None
    bare = actor.split(":", 1)[1] if actor.startswith("slack:") else actor
    return bare if _SLACK_ID.match(bare) else None


def _who(actor: str | None) -> str:
    if not actor:
        return "n/a"
    user = _user(actor)
    return f"<@{user}>" if user else escape(actor)


def render_card(order: Doc, extra: Doc | None = None, *, working: str | None = None) -> tuple[str, list[Doc]]:
    """(fallback text, blocks) for a proposal in any state. `extra`: forecast/sentiment captured at proposal."""
    extra = extra or {}
    req = order.get("request") or {}
    state = str(order.get("state"))
    side = str(req.get("side", "?")).upper()
    symbol = str(req.get("symbol", "?"))
    qty = order.get("approved_qty") or order.get("proposed_qty") or req.get("qty")
    decision = order.get("approval_decision") or order.get("decision") or {}
    price = order.get("limit_price") or req.get("limit_price") or decision.get("price")
    order_type = str(req.get("type", "market"))
    notional = decision.get("notional")
    sized_at = float(notional) / float(qty) if price is None and notional and qty else None
    venue = req.get("venue") or "smart router (best venue, may split)"
    title = f"Trade proposal: {side} {fmt_num(qty, 8)} {symbol}"
    text = f"{title} ({state.replace('_', ' ')})"

    blocks: list[Doc] = [header(title)]
    if order_type == "limit":
        price_txt = f"limit {fmt_num(price)}"
    elif sized_at is not None:  # no price of its own: the worst price the gate sized it at (top of book + slippage)
        price_txt = f"market (sized at {fmt_num(sized_at)})"
    else:
        price_txt = f"market (ref {fmt_num(price)})"
    fields = [
        f"*Instrument*\n{symbol}",
        f"*Side*\n{side}",
        f"*Size*\n{fmt_num(qty, 8)}" + (f" (≈ {fmt_num(notional)} notional)" if notional else ""),
        f"*Price*\n{price_txt}",
        f"*Venue*\n{escape(str(venue))}",
        f"*Requested by*\n{_who(order.get('requester'))}",
    ]
    blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]})

    checks = decision.get("checks") or []
    if checks:
        lines = []
        for c in checks[:12]:
            mark = ":white_check_mark:" if c.get("passed") else ":x:"
            margin = c.get("margin")
            margin_txt = f" — {float(margin) * 100:.1f}% headroom" if isinstance(margin, int | float) else ""
            why = f" ({escape(str(c['detail']))})" if c.get("detail") else ""
            lines.append(f"{mark} {escape(str(c.get('name')))}{margin_txt}{why}")
        head = escape(str(order.get("headroom") or ("passed" if decision.get("approved") else "")))
        blocks.append(section(f"*Risk checks* {head}\n" + "\n".join(lines)))

    forecast = extra.get("forecast")
    if isinstance(forecast, dict):
        blocks.append(section(f"*Forecast*: {forecast_line(forecast)}"))
    elif extra.get("forecast_note"):
        blocks.append(section(f"*Forecast*: _{escape(str(extra['forecast_note']))}_"))
    sentiment = extra.get("sentiment")
    if isinstance(sentiment, dict):
        blocks.append(section(f"*Sentiment*: {escape(sentiment_line(sentiment))}"))
    elif extra.get("sentiment_note"):
        blocks.append(section(f"*Sentiment*: _{escape(str(extra['sentiment_note']))}_"))

    status = _STATUS.get(state, f"*{state}*")
    detail: list[str] = []
    if state == "pending_approval" and order.get("expires_ms"):
        detail.append(f"expires {date(int(order['expires_ms']))}")
    if order.get("approved_by"):
        detail.append(f"approved by {_who(order['approved_by'])}")
    if order.get("rejected_by"):
        detail.append(f"rejected by {_who(order['rejected_by'])}")
    reasons = order.get("reasons") or []
    if state in ("rejected", "failed", "cancelled") and reasons:
        detail.append("reasons: " + "; ".join(escape(str(r)) for r in reasons[:5]))
    if order.get("stop_reason") and state not in ("filled",):
        detail.append(escape(str(order["stop_reason"])))
    filled = float(order.get("filled_qty") or 0.0)
    if filled > 0:
        fee = order.get("fee_quote")
        detail.append(
            f"filled {fmt_num(filled, 8)} @ avg {fmt_num(order.get('avg_price'))}"
            + (f", fees {fmt_num(fee, 4)}" if fee else "")
        )
    fills = extra.get("fills") or []
    if fills:
        fill_lines = [
            f"• {fmt_num(f.get('qty'), 8)} @ {fmt_num(f.get('price'))} on {escape(str(f.get('venue')))}"
            for f in fills[:10]
        ]
        detail.append("fills:\n" + "\n".join(fill_lines))
    blocks.append(section(status + ("\n" + "\n".join(detail) if detail else "")))
    if working:
        blocks.append(context(f":gear: {escape(working)}"))
    if state == "pending_approval" and not working:
        oid = str(order.get("_id", order.get("id")))
        blocks.append(
            {
                "type": "actions",
                "block_id": f"trade:{oid}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": APPROVE,
                        "style": "primary",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "value": oid,
                        "confirm": {
                            "title": {"type": "plain_text", "text": "Send this order?"},
                            "text": {"type": "mrkdwn", "text": f"{side} {fmt_num(qty, 8)} {symbol} ({price_txt})"},
                            "confirm": {"type": "plain_text", "text": "Approve"},
                            "deny": {"type": "plain_text", "text": "Back"},
                        },
                    },
                    {
                        "type": "button",
                        "action_id": REJECT,
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Reject"},
                        "value": oid,
                    },
                ],
            }
        )
    ret = extra.get("expected_return_pct")
    foot = f"order `{order.get('_id', order.get('id'))}` · paper/live per desk mode"
    if ret is not None:
        foot += f" · forecast move {fmt_pct(ret)} from the last close"
    blocks.append(context(foot))
    return text, blocks


def requester_user(order: Doc) -> str | None:
    return _user(order.get("requester"))


class CardStore:
    def __init__(self, db: Database[Doc]) -> None:
        self.col = db["slack_cards"]
        self.col.create_index([("rendered_state", ASCENDING)])

    def save(self, order_id: str, channel: str, ts: str, rendered_state: str, extra: Doc) -> None:
        self.col.update_one(
            {"_id": order_id},
            {
                "$set": {"channel": channel, "ts": ts, "rendered_state": rendered_state, "updated_ms": now_ms()},
                "$setOnInsert": {"extra": extra, "created_ms": now_ms()},
            },
            upsert=True,
        )

    def get(self, order_id: str) -> Doc | None:
        return self.col.find_one({"_id": order_id})

    def mark(self, order_id: str, rendered_state: str) -> None:
        self.col.update_one({"_id": order_id}, {"$set": {"rendered_state": rendered_state, "updated_ms": now_ms()}})

    def open_cards(self, limit: int = 500) -> list[Doc]:
        return list(self.col.find({"rendered_state": {"$nin": list(FINAL_STATES)}}).limit(limit))
