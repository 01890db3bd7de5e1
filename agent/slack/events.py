"""App mentions and direct messages reach the agent, with memory per Slack thread.

Session ids: a mention in a channel answers in the thread under it and uses `slack:<channel>:<thread root ts>`,
so later mentions in that thread continue the same conversation; a DM uses `slack:<dm channel>` (or the thread's
root when the user replies in a thread). Messages from bots (including this one) and edits are ignored.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from agent.slack.rendering import context, escape, section
from agent.slack.runtime import Progress, SlackRuntime

if TYPE_CHECKING:
    from agent.slack.approvals import Approvals

log = logging.getLogger(__name__)
Doc = dict[str, Any]
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")


def clean_text(text: str) -> str:
    return _MENTION.sub("", text or "").strip()


def session_for(event: Doc) -> tuple[str, str | None]:
    """(session id, thread_ts to answer in)."""
    channel = str(event.get("channel"))
    thread = event.get("thread_ts")
    if event.get("channel_type") == "im" and event.get("type") == "message":
        return (f"slack:{channel}:{thread}" if thread else f"slack:{channel}"), thread
    root = thread or event.get("ts")
    return f"slack:{channel}:{root}", root


class Conversations:
    def __init__(self, runtime: SlackRuntime, approvals: Approvals | None = None) -> None:
        self.rt = runtime
        self.approvals = approvals

    async def answer(self, event: Doc) -> None:
        text = clean_text(str(event.get("text", "")))
        channel = str(event.get("channel"))
        user = str(event.get("user", "unknown"))
        session, thread_ts = session_for(event)
        if not text:
            await self.rt.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts,
                text="Hi! Ask me about a market, e.g. _how is BTC/USDT doing?_, or try `/analyze BTC/USDT`.",
            )
            return
        progress = await Progress.start(self.rt, channel, ":thinking_face: thinking…", thread_ts=thread_ts)
        try:
            answer = await self.rt.run_blocking(
                self.rt.desk.ask, text, session_id=session, user=f"slack:{user}", source="slack"
            )
        except Exception as exc:  # tell the person; the desk already degrades LLM failures to analysis
            log.exception("conversation failed")
            await progress.update(f":warning: Sorry, I could not answer: {exc}")
            return
        links = [f"<{c['url']}|{escape(str(c.get('title') or c['url']))}>" for c in answer.citations if c.get("url")]
        blocks = [section(answer.answer)]
        if links:
            blocks.append(context("Sources: " + " · ".join(links[:8])))
        await progress.update(answer.answer, blocks=blocks)
        if answer.proposals and self.approvals is not None:  # the agent proposed: approvers act on a card
            await self.approvals.post_proposals(answer.proposals, channel, thread_ts)

    def register(self, app: AsyncApp) -> None:
        @app.event("app_mention")
        async def on_mention(event: Doc) -> None:
            if event.get("bot_id") or event.get("subtype"):
                return
            self.rt.spawn(self.answer(event), name="mention")

        @app.event("message")
        async def on_message(event: Doc) -> None:
            if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
                return  # channel chatter, edits, bot posts: not for the agent (mentions arrive as app_mention)
            self.rt.spawn(self.answer(event), name="dm")
