"""The slack-bolt app in HTTP mode, mounted at `/slack/events` inside the FastAPI app.

Handlers acknowledge at once (Slack wants an answer within 3 s) and do the work in the background, then post the
result with `chat.postMessage`. Bolt verifies the signing secret on every request; an unsigned or stale request
gets 401 before any handler runs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from agent.analysis import extract_symbol
from agent.desk import Desk
from core.settings import Settings

log = logging.getLogger(__name__)

ANALYZE_USAGE = "Usage: `/analyze SYMBOL`, for example `/analyze BTC/USDT`."


def build_slack_app(settings: Settings, desk: Desk) -> AsyncApp | None:
    if settings.slack_signing_secret is None or settings.slack_bot_token is None:
        return None
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)
    app = AsyncApp(
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        client=client,
        process_before_response=False,
    )
    register_analyze(app, desk)
    return app


def register_analyze(app: AsyncApp, desk: Desk) -> None:
    @app.command("/analyze")
    async def analyze_command(
        ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        text = (command.get("text") or "").strip()
        symbol = extract_symbol(text) if text else None
        if symbol is None:
            await ack(response_type="ephemeral", text=f"I need a trading pair. {ANALYZE_USAGE}")
            return
        await ack(response_type="ephemeral", text=f"Analysing {symbol}…")
        user = command.get("user_id", "unknown")
        session = f"slack:{command.get('channel_id')}:{user}"
        try:
            answer = await asyncio.to_thread(
                desk.analyze, symbol, session_id=session, user=f"slack:{user}", source="slack"
            )
        except Exception as exc:
            log.exception("analyze failed")
            await respond(response_type="ephemeral", text=f"Sorry, the analysis of {symbol} failed: {exc}")
            return
        await client.chat_postMessage(channel=command["channel_id"], text=answer.answer, mrkdwn=True)
