"""The slack-bolt app, mounted at `/slack/events` inside the FastAPI app (HTTP mode) or driven by Socket Mode.

Handlers acknowledge at once (Slack wants an answer within 3 s) and do the work in the background. Bolt verifies
the signing secret on every HTTP request; an unsigned or stale request gets 401 before any handler runs. Repeated
deliveries (Slack retries, double submits) are dropped by the delivery log before any handler runs.
"""

from __future__ import annotations

import secrets
import weakref
from dataclasses import dataclass

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from agent.desk import Desk
from agent.slack.approvals import Approvals
from agent.slack.briefings import Briefings
from agent.slack.commands import Commands
from agent.slack.deliveries import DeliveryLog, dedupe_middleware
from agent.slack.events import Conversations
from agent.slack.runtime import SlackRuntime
from core.settings import Settings

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
    app = AsyncApp(signing_secret=secret, client=client, process_before_response=False)
    runtime = SlackRuntime(settings, desk, client)
    app.middleware(dedupe_middleware(DeliveryLog(desk.db)))
    bundle = SlackBundle(runtime, Commands(runtime), Approvals(runtime), Briefings(runtime), Conversations(runtime))
    bundle.commands.register(app)
    bundle.approvals.register(app)
    bundle.briefings.register(app)
    bundle.conversations.register(app)
    _BUNDLES[app] = bundle
    return app
