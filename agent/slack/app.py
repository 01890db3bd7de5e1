"""The slack-bolt app, mounted at `/slack/events` inside the FastAPI app (HTTP mode) or driven by Socket Mode.

Handlers acknowledge at once (Slack wants an answer within 3 s) and do the work in the background. Bolt verifies
the signing secret on every HTTP request; an unsigned or stale request gets 401 before any handler runs. Repeated
deliveries (Slack retries, double submits) are dropped by the delivery log before any handler runs.
"""

from __future__ import annotations

import logging
import secrets
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from agent.desk import Desk
from agent.slack.approvals import Approvals
from agent.slack.briefings import Briefings
from agent.slack.commands import Commands
from agent.slack.deliveries import DeliveryLog, dedupe_middleware
from agent.slack.events import Conversations
from agent.slack.runtime import SlackRuntime
from core.settings import Settings

log = logging.getLogger(__name__)

ANALYZE_USAGE = "Usage: `/analyze SYMBOL`, for example `/analyze BTC/USDT`."


@dataclass
class SlackBundle:
    runtime: SlackRuntime
    commands: Commands
    approvals: Approvals
    briefings: Briefings
    conversations: Conversations


_BUNDLES: weakref.WeakKeyDictionary[AsyncApp, SlackBundle] = weakref.WeakKeyDictionary()


def bundle_of(app: AsyncApp | None) -> SlackBundle | None:
    return None if app is None else _BUNDLES.get(app)


def _authorizer(client: AsyncWebClient) -> Callable[..., Awaitable[AuthorizeResult]]:
    """Single-workspace authorisation: `auth.test` once for the bot's ids, remembered; if Slack's API does not answer,
    the bot token alone authorises, so commands are still acknowledged during an outage (and `auth.test` is tried
    again on the next request)."""
    known: dict[str, AuthorizeResult] = {}

    async def authorize(**_: Any) -> AuthorizeResult:
        if "result" in known:
            return known["result"]
        token = client.token or ""
        try:
            info = await client.auth_test()
        except Exception as exc:  # outage or bad token: acknowledge anyway, ids unknown for now
            log.warning("slack auth.test failed (%s); answering with the bot token only", exc)
            return AuthorizeResult(enterprise_id=None, team_id=None, bot_token=token)
        known["result"] = AuthorizeResult(
            enterprise_id=info.get("enterprise_id"), team_id=info.get("team_id"), bot_id=info.get("bot_id"),
            bot_user_id=info.get("user_id"), bot_token=token,
        )
        return known["result"]

    return authorize


def build_slack_app(settings: Settings, desk: Desk) -> AsyncApp | None:
    """The bolt app, or None when Slack is not configured (no bot token; or neither signing secret nor app token)."""
    if settings.slack_bot_token is None:
        return None
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        return None
    # Socket Mode alone needs no signing secret; a random one keeps /slack/events closed (every request fails 401).
    secret = (
        settings.slack_signing_secret.get_secret_value()
        if settings.slack_signing_secret is not None
        else secrets.token_hex(32)
    )
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)
    app = AsyncApp(
        signing_secret=secret, client=client, process_before_response=False, authorize=_authorizer(client)
    )
    runtime = SlackRuntime(settings, desk, client)
    app.middleware(dedupe_middleware(DeliveryLog(desk.db)))
    approvals = Approvals(runtime)
    bundle = SlackBundle(
        runtime, Commands(runtime, approvals), approvals, Briefings(runtime), Conversations(runtime, approvals)
    )
    bundle.commands.register(app)
    bundle.approvals.register(app)
    bundle.briefings.register(app)
    bundle.conversations.register(app)
    _BUNDLES[app] = bundle
    return app
