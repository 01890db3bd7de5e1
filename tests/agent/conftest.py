"""Fixtures for the desk: a fake exchange, a scripted LLM server, a fake Slack API, and the app wired to them."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core import settings as settings_mod
from core.settings import Settings
from tests.fakes.binance_server import FakeBinance
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"


@pytest.fixture()
def fake_exchange() -> Iterator[FakeBinance]:
    with FakeBinance() as fake:
        yield fake


@pytest.fixture()
def fake_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(deepseek_strict=True) as fake:
        yield fake


@pytest.fixture()
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack(BOT_TOKEN) as fake:
        yield fake


@pytest.fixture()
def make_settings(
    isolated_settings: Path, monkeypatch: pytest.MonkeyPatch, fake_exchange: FakeBinance
) -> Callable[..., Settings]:
    """Settings for the app under test; pass llm=FakeOpenAI to switch the LLM on, slack=FakeSlack for Slack."""

    def build(llm: FakeOpenAI | None = None, slack: FakeSlack | None = None, **env: str) -> Settings:
        monkeypatch.setenv("EXCHANGE_API_URL", fake_exchange.url)
        monkeypatch.setenv("EXCHANGE_ID", "binance")
        if llm is not None:
            monkeypatch.setenv("LLM_API_KEY", "sk-test-key-0123456789abcdef")
            monkeypatch.setenv("LLM_BASE_URL", llm.base_url)
            monkeypatch.setenv("LLM_MAX_RETRIES", "0")
        if slack is not None:
            monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
            monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
            monkeypatch.setenv("SLACK_API_URL", slack.api_url)
        for key, value in env.items():
            monkeypatch.setenv(key.upper(), value)
        settings_mod.reset_settings()
        return settings_mod.get_settings()

    return build


@pytest.fixture()
def make_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., tuple[TestClient, str]]]:
    """Start the app (lifespan included) and return (client, api key with the given scopes)."""
    from agent.app import create_app

    clients: list[TestClient] = []

    def build(
        scopes: str = "read", llm: FakeOpenAI | None = None, slack: FakeSlack | None = None, **env: str
    ) -> tuple[TestClient, str]:
        app = create_app(make_settings(llm=llm, slack=slack, **env))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        key, _ = app.state.api_keys.create("test", scopes)
        return client, key

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def slack_headers(body: str, secret: str = SIGNING_SECRET, ts: int | None = None, **extra: str) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sig,
        "Content-Type": "application/x-www-form-urlencoded",
        **extra,
    }


def tool_result(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The parsed result of the most recent call of tool `name` in a chat request body."""
    import json

    ids = {
        tc["id"]
        for m in body["messages"]
        if m.get("role") == "assistant"
        for tc in (m.get("tool_calls") or [])
        if tc["function"]["name"] == name
    }
    for m in reversed(body["messages"]):
        if m.get("role") == "tool" and m.get("tool_call_id") in ids:
            return dict(json.loads(m["content"]))
    raise AssertionError(f"no result of {name} in the request")
