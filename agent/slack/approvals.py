"""`/trade` and the approve-trade workflow over the trading service (trading.oms.service.TradingService).

Nothing here decides anything about risk or order states: the service runs the gate at proposal and again at
approval, guards every transition, and executes. Slack adds who may click (approver allowlist, four-eyes), the
card, and the audit of every click (allowed or refused).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from agent.slack.cards import APPROVE, REJECT, CardStore, render_card, requester_user
from agent.slack.parsing import USAGE, ParseError, TradeRequest, parse_trade
from agent.slack.rendering import pick_sentiment, unavailable
from agent.slack.runtime import SlackRuntime

if TYPE_CHECKING:
    from trading.oms.service import ActionResult

log = logging.getLogger(__name__)
Doc = dict[str, Any]
CONTEXT_TIMEOUT_S = 20.0
def not_available(reason: str) -> str:
    return f"Trading is unavailable right now ({reason}). Analysis commands still work."


def actor(user: str) -> str:
    """The identity the trading service sees: the Slack user id (its approver/admin lists are Slack ids)."""
    return user


class Approvals:
    def __init__(self, runtime: SlackRuntime) -> None:
        self.rt = runtime
        self.cards = CardStore(runtime.db)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, order_id: str) -> asyncio.Lock:
        lock = self._locks.get(order_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[order_id] = lock  # kept alive only while someone holds or awaits it
        return lock

    # ------------------------------------------------------------------ who may act
    def is_approver(self, user: str) -> bool:
        return user in self.rt.settings.slack_approvers

    def refusal(self, user: str, order: Doc | None) -> str | None:
        if not self.is_approver(user):
            return (
                "Sorry, only desk approvers can approve or reject trades. Ask an approver "
                "(the list is SLACK_APPROVERS)."
            )
        # the requester is `U123` (/trade) or `slack:U123` (the agent, asked in a Slack conversation)
        if self.rt.settings.four_eyes and order is not None and requester_user(order) == user:
            return "Four-eyes rule: you requested this trade, so someone else must approve or reject it."
        return None

    # ------------------------------------------------------------------ proposing
    async def _context(self, symbol: str) -> Doc:
        """Forecast and sentiment behind the trade (shown on the card); failures become notes, never errors."""

        async def timed(name: str, args: Doc) -> Doc:
            try:
                return await asyncio.wait_for(self.rt.tool(name, args), CONTEXT_TIMEOUT_S)
            except TimeoutError:
                return {"ok": False, "error": f"{name} took longer than {CONTEXT_TIMEOUT_S:.0f} s"}

        forecast, sentiment = await asyncio.gather(
            timed("forecast_price", {"symbol": symbol, "horizon": 24}),
            timed("news_sentiment", {"symbols": [symbol.split("/")[0]]}),
        )
        extra: Doc = {}
        if forecast.get("ok"):
            extra["forecast"] = forecast["result"]
            final = (forecast["result"] or {}).get("final") or {}
            if final.get("return_pct") is not None:
                extra["expected_return_pct"] = final["return_pct"]
        else:
            extra["forecast_note"] = unavailable("The forecast", str(forecast.get("error")))
        picked = pick_sentiment(sentiment.get("result"), symbol) if sentiment.get("ok") else None
        if picked is not None:
            extra["sentiment"] = picked
        else:
            extra["sentiment_note"] = unavailable("Sentiment", str(sentiment.get("error")))
        return extra

    async def propose(self, req: TradeRequest, user: str, channel: str, respond: AsyncRespond | None) -> None:
        svc = await self.rt.trading()
        if svc is None:
            await self.rt.ephemeral(channel, user, not_available(self.rt.trading_error))
            return
        if req.venue is not None and req.venue not in svc.venues:
            await self.rt.ephemeral(
                channel, user, f"Unknown venue `{req.venue}`. Venues on this desk: {', '.join(svc.venues)}."
            )
            return
        from pydantic import ValidationError

        from tools.trading import ProposeOrderArgs
        from trading.oms.service import TradingError
        from trading.types import OrderType, Side

        try:  # the same model (bounds, exit levels) as the HTTP body and the agent's tool
            request = ProposeOrderArgs(
                symbol=req.symbol,
                side=Side(req.side),
                qty=req.qty,
                type=OrderType.LIMIT if req.limit_price else OrderType.MARKET,
                limit_price=req.limit_price,
                venue=req.venue,
                stop_loss=req.stop_loss,
                take_profit=req.take_profit,
                note=f"slack /trade by {user}",
            ).to_request()
        except ValidationError as exc:
            problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()[:3])
            await self.rt.ephemeral(channel, user, f"Not proposed: {problems}. Usage: {USAGE['/trade']}")
            return
        try:
            progress = await self.rt.client.chat_postMessage(
                channel=channel,
                text=f":gear: <@{user}> proposes to {req.describe()}: checking risk, forecast and news…",
            )
        except SlackApiError as exc:  # e.g. a private channel the bot is not in: nothing was proposed
            text = (f"I cannot post the approval card here ({exc.response.get('error')}); invite me with "
                    "`/invite @desk` and try again. Nothing was proposed.")
            if respond is not None:
                await respond(response_type="ephemeral", text=text)
            return
        ts = str(progress["ts"])
        channel = str(progress.get("channel") or channel)
        extra_task = asyncio.create_task(self._context(req.symbol))
        try:
            result = await self.rt.on_trading_loop(svc.propose_async(request, actor(user), source="slack"))
        except Exception as exc:  # the card never stays on "checking risk": it ends in a decision or this error
            extra_task.cancel()
            if not isinstance(exc, TradingError):
                log.exception("slack /trade proposal failed")
            text = f":x: Could not propose {req.describe()}: {exc}"
            await self.rt.client.chat_update(channel=channel, ts=ts, text=text)
            self.rt.audit.record("slack.trade.propose", f"slack:{user}", source="slack", outcome="error",
                                 error=str(exc)[:300])
            return
        try:
            extra = await extra_task
        except Exception as exc:  # context (forecast, news) is optional on the card
            log.warning("trade card context failed: %s", exc)
            extra = {}
        order = result.order
        if order is None:
            await self.rt.client.chat_update(channel=channel, ts=ts, text=f":x: Could not propose: {result.reasons}")
            return
        order_id = str(order["_id"])
        self.cards.save(order_id, channel, ts, "new", extra)
        self.rt.audit.record(
            "slack.trade.propose",
            f"slack:{user}",
            source="slack",
            outcome=result.status,
            order_id=order_id,
            request=request.to_doc(),
            reasons=result.reasons,
        )
        await self.refresh(order_id)

    async def post_proposals(self, proposals: list[Doc], channel: str, thread_ts: str | None) -> int:
        """Approval cards for proposals the agent made in a Slack conversation (its `propose_order` results), in
        the conversation's thread. Only pending proposals get a card; one already on a card is left alone. The
        approvers' rules are the same as for `/trade`: the card is only a view over the service's order."""
        posted = 0
        svc = await self.rt.trading()
        if svc is None:
            return 0
        for proposal in proposals:
            order_id = str(((proposal.get("order") or {}).get("id")) or "")
            if proposal.get("status") != "pending_approval" or not order_id:
                continue
            order = await self.rt.run_blocking(svc.store.get_order, order_id)
            if order is None or await self.rt.run_blocking(self.cards.get, order_id) is not None:
                continue
            symbol = str(order["request"]["symbol"])
            try:
                msg = await self.rt.client.chat_postMessage(
                    channel=channel, thread_ts=thread_ts, text=f":gear: Proposal for {symbol}: loading the card…"
                )
            except SlackApiError as exc:
                log.warning("agent proposal %s: no card (%s)", order_id, exc.response.get("error"))
                continue
            extra = await self._context(symbol)
            await self.rt.run_blocking(
                self.cards.save, order_id, str(msg.get("channel") or channel), str(msg["ts"]), "new", extra
            )
            self.rt.audit.record("slack.trade.card", str(order.get("requester")), source="slack",
                                 outcome="posted", order_id=order_id)
            await self.refresh(order_id)
            posted += 1
        return posted

    # ------------------------------------------------------------------ cards
    async def refresh(self, order_id: str, *, working: str | None = None, force: bool = False) -> str | None:
        """Re-render the card from the order as it is now. Returns the state shown."""
        svc = await self.rt.trading()
        if svc is None:
            return None
        async with self._lock(order_id):
            card = await self.rt.run_blocking(self.cards.get, order_id)
            order = await self.rt.run_blocking(svc.store.get_order, order_id)
            if card is None or order is None:
                return None
            state = str(order["state"])
            if not force and working is None and card.get("rendered_state") == state:
                return state
            extra = dict(card.get("extra") or {})
            if float(order.get("filled_qty") or 0.0) > 0:
                extra["fills"] = await self.rt.run_blocking(
                    lambda: list(svc.store.fills.find({"order_id": order_id}, {"_id": 0}).sort("seq", 1))
                )
            text, blocks = render_card(order, extra, working=working)
            try:
                await self.rt.client.chat_update(channel=card["channel"], ts=card["ts"], text=text, blocks=blocks)
            except SlackApiError as exc:
                log.warning("card %s update failed: %s", order_id, exc.response.get("error"))
                return None
            if working is None:
                await self.rt.run_blocking(self.cards.mark, order_id, state)
            return state

    async def sweep(self) -> int:
        """Expire due proposals (expiry means reject) and re-render every card whose order moved on."""
        cards = await self.rt.run_blocking(self.cards.open_cards)
        if not cards:  # nothing on screen to keep in step (the service expires its own proposals too)
            return 0
        svc = await self.rt.trading()
        if svc is None:
            return 0
        expired = await self.rt.run_blocking(svc.expire_due)
        changed = 0
        for card in cards:
            order = await self.rt.run_blocking(svc.store.get_order, card["_id"])
            if order is None or order["state"] == card.get("rendered_state"):
                continue
            if order["state"] == "expired" and card.get("rendered_state") != "expired":
                self.rt.audit.record("slack.trade.expired", "system", source="slack", order_id=card["_id"])
            if await self.refresh(str(card["_id"])) is not None:
                changed += 1
        if expired:
            log.info("expired %d proposals; %d cards updated", expired, changed)
        return changed

    async def sweep_forever(self, interval_s: float) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # the sweep must keep running
                log.exception("approval sweep failed")
            await asyncio.sleep(interval_s)

    # ------------------------------------------------------------------ clicks
    async def decide(self, decision: str, order_id: str, user: str, channel: str, thread_ts: str | None) -> None:
        svc = await self.rt.trading()
        if svc is None:
            await self.rt.ephemeral(channel, user, not_available(self.rt.trading_error))
            return
        order = await self.rt.run_blocking(svc.store.get_order, order_id)
        refused = self.refusal(user, order)
        if refused is not None:
            self.rt.audit.record(
                f"slack.trade.{decision}", f"slack:{user}", source="slack", outcome="refused", order_id=order_id,
                reason=refused,
            )
            await self.rt.ephemeral(channel, user, refused)
            return
        if order is None:
            await self.rt.ephemeral(channel, user, f"I cannot find order `{order_id}`.")
            return
        result: ActionResult
        if decision == "approve":
            if order.get("state") == "pending_approval":
                await self.refresh(order_id, working=f"approved by {user}: re-checking risk and sending…")
            result = await self.rt.on_trading_loop(svc.approve(order_id, actor(user)))
        else:
            result = await self.rt.run_blocking(svc.reject, order_id, actor(user), f"rejected in Slack by {user}")
        self.rt.audit.record(
            f"slack.trade.{decision}",
            f"slack:{user}",
            source="slack",
            outcome=result.status,
            order_id=order_id,
            reasons=result.reasons,
        )
        await self.refresh(order_id, force=True)
        if result.status == "already_decided":
            state = str((result.order or {}).get("state", "decided")).replace("_", " ")
            await self.rt.ephemeral(channel, user, f"This trade is already {state}; nothing changed.")
        elif result.status in ("forbidden", "not_found"):
            await self.rt.ephemeral(channel, user, "Not done: " + "; ".join(result.reasons))
        elif result.status == "rejected" and decision == "approve":
            await self.rt.ephemeral(
                channel, user, "The risk gate refused the order at approval: " + "; ".join(result.reasons)
            )

    # ------------------------------------------------------------------ registration
    def register(self, app: AsyncApp) -> None:
        @app.command("/trade")
        async def trade_command(ack: AsyncAck, command: Doc, respond: AsyncRespond) -> None:
            try:
                req = parse_trade(command.get("text") or "")
            except ParseError as exc:
                await ack(response_type="ephemeral", text=exc.friendly())
                return
            await ack()
            self.rt.spawn(
                self.propose(req, command["user_id"], command["channel_id"], respond), name="trade-propose"
            )

        async def on_click(ack: AsyncAck, body: Doc, action: Doc) -> None:
            await ack()
            user = (body.get("user") or {}).get("id", "")
            channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
            decision = "approve" if action.get("action_id") == APPROVE else "reject"
            thread = (body.get("container") or {}).get("message_ts")
            self.rt.spawn(
                self.decide(decision, str(action.get("value")), user, channel, thread), name=f"trade-{decision}"
            )

        app.action(APPROVE)(on_click)
        app.action(REJECT)(on_click)
