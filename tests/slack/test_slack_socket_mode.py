"""Socket Mode end to end: Slack opens a websocket (apps.connections.open), sends a slash command envelope; the
app acknowledges it over the socket and does the work through the Web API. Plus the CLI and the manifest."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from websockets.asyncio.server import ServerConnection, serve

from agent.slack.socket_mode import manifest, run_socket_mode
from tests.fakes.asgi_server import free_port
from tests.fakes.slack_server import FakeSlack

APP_TOKEN = "xapp-1-test"


class SocketSlack(FakeSlack):
    """The fake Web API plus `apps.connections.open` (app token) and a websocket that delivers one command."""

    def __init__(self) -> None:
        super().__init__()
        self.ws_port = free_port()
        self.acks: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _api(self, request: Request) -> Response:
        if request.path_params["method"] == "apps.connections.open":
            ok = request.headers.get("authorization") == f"Bearer {APP_TOKEN}"
            return JSONResponse({"ok": True, "url": f"ws://127.0.0.1:{self.ws_port}/link"} if ok
                                else {"ok": False, "error": "invalid_auth"})
        return await super()._api(request)

    async def _session(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "hello", "num_connections": 1}))
        await ws.send(json.dumps({
            "envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": True,
            "payload": {"command": "/briefing", "text": "list", "user_id": "U1", "channel_id": "C1",
                        "team_id": "T1", "trigger_id": "trig-s1", "response_url": f"{self.api_url}response"},
        }))
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("envelope_id"):
                self.acks.append(msg)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._session, "127.0.0.1", self.ws_port):
            await self._stop.wait()

    def start(self) -> str:
        url = super().start()
        self._thread.start()
        return url

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)
        super().stop()


def test_socket_mode_receives_and_acknowledges_a_command(make_settings: Any) -> None:
    with SocketSlack() as slack:
        settings = make_settings(slack_bot_token="xoxb-test-token", slack_api_url=slack.api_url,
                                 slack_app_token=APP_TOKEN)
        assert settings.slack_signing_secret is None  # Socket Mode needs none
        done: dict[str, Any] = {}
        ready = threading.Event()

        def runner() -> None:
            async def main() -> None:
                done["stop"] = asyncio.Event()
                done["loop"] = asyncio.get_running_loop()
                ready.set()
                await run_socket_mode(settings, done["stop"])

            try:
                asyncio.run(main())
            except Exception as exc:  # surfaced by the assertions below
                done["error"] = exc

        thread = threading.Thread(target=runner, daemon=True)
        thread.start()
        assert ready.wait(10)
        deadline = time.monotonic() + 20
        while not slack.acks and time.monotonic() < deadline and "error" not in done:
            time.sleep(0.05)
        done["loop"].call_soon_threadsafe(done["stop"].set)
        thread.join(timeout=15)
        assert "error" not in done, done.get("error")
        [ack] = slack.acks
        assert ack["envelope_id"] == "env-1"
        assert ack["payload"]["response_type"] == "ephemeral" and "No scheduled briefings" in ack["payload"]["text"]


def test_manifest_http_and_socket_variants() -> None:
    http = yaml.safe_load(manifest("https://desk.acme.io/"))
    commands = {c["command"]: c for c in http["features"]["slash_commands"]}
    assert set(commands) == {"/analyze", "/ask", "/forecast", "/option", "/news", "/trade", "/positions", "/risk",
                             "/briefing", "/desk"}
    assert all(c["url"] == "https://desk.acme.io/slack/events" for c in commands.values())
    assert http["settings"]["interactivity"]["request_url"] == "https://desk.acme.io/slack/events"
    assert {"commands", "chat:write", "files:write", "app_mentions:read", "im:history"} <= set(
        http["oauth_config"]["scopes"]["bot"])
    assert set(http["settings"]["event_subscriptions"]["bot_events"]) == {"app_mention", "message.im"}
    sock = yaml.safe_load(manifest(socket=True))
    assert sock["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in sock["settings"]["interactivity"]
    assert all("url" not in c for c in sock["features"]["slash_commands"])


def test_cli_socket_without_tokens_explains(isolated_settings: Any, monkeypatch: Any, capsys: Any) -> None:
    from agent.cli import main

    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    assert main(["slack", "socket"]) == 2
    assert "SLACK_APP_TOKEN" in capsys.readouterr().err
