"""Socket Mode: the same Slack app over a websocket Slack opens to us, for desks without a public URL.

The whole service starts as under `serve` (desk, trading service, scheduler, approval sweep) through the FastAPI
app's lifespan, but no HTTP port is opened; Slack delivers commands, events and clicks over the socket. Needs
SLACK_APP_TOKEN (xapp-…, scope connections:write) and SLACK_BOT_TOKEN; SLACK_SIGNING_SECRET is not used.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from core.settings import Settings

log = logging.getLogger(__name__)
MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack-manifest.yml"
PLACEHOLDER = "https://desk.example.com"


class SocketModeUnavailable(RuntimeError):
    pass


def check(settings: Settings) -> None:
    missing = [name for name, value in (("SLACK_APP_TOKEN", settings.slack_app_token),
                                        ("SLACK_BOT_TOKEN", settings.slack_bot_token)) if value is None]
    if missing:
        raise SocketModeUnavailable(
            f"Socket Mode needs {' and '.join(missing)}: create an app-level token with connections:write "
            "(Basic Information -> App-Level Tokens) and install the app to get the bot token."
        )


async def run_socket_mode(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or forever)."""
    check(settings)
    assert settings.slack_app_token is not None
    from agent.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        bolt = app.state.slack
        if bolt is None:
            raise SocketModeUnavailable("Slack is not configured (SLACK_BOT_TOKEN missing)")
        handler = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
        await handler.connect_async()
        log.info("Slack Socket Mode connected")
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await handler.close_async()


def manifest(url: str | None = None, socket: bool = False) -> str:
    """The app manifest with the request URLs filled in (HTTP mode) or removed (Socket Mode)."""
    doc: Any = yaml.safe_load(MANIFEST.read_text())
    settings = doc["settings"]
    commands = doc["features"]["slash_commands"]
    if socket:
        settings["socket_mode_enabled"] = True
        settings["event_subscriptions"].pop("request_url", None)
        settings["interactivity"].pop("request_url", None)
        for command in commands:
            command.pop("url", None)
    elif url:
        base = url.rstrip("/")
        settings["event_subscriptions"]["request_url"] = f"{base}/slack/events"
        settings["interactivity"]["request_url"] = f"{base}/slack/events"
        for command in commands:
            command["url"] = f"{base}/slack/events"
    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
