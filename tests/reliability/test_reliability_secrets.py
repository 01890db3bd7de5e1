"""Secrets never reach the logs, the database, or responses, even when upstreams echo them back in errors."""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any

import pytest

from tests.agent.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.reliability.conftest import LogCapture, auth, slack_headers

LLM_KEY = "sk-test-key-0123456789abcdef"  # what make_settings(llm=...) configures
EXCHANGE_KEY = "exKEYxq8h3k2mz0v9c7b"
EXCHANGE_SECRET = "exSECRETp0o9i8u7y6t5r4e3w2q1"


@pytest.mark.fault
def test_no_secret_in_logs_database_or_responses(
    make_client: Any, fake_exchange: Any, fake_slack: Any, log_capture: LogCapture
) -> None:
    """Fault: the app is exercised through every door (API with good, bad and revoked keys, keys sent as data, LLM
    tool loop, an LLM error, Slack commands signed and forged, readiness and metrics) with all logging at DEBUG.
    Must hold: no API key secret, LLM key, Slack bot token, Slack signing secret or exchange credential appears in
    any log line (formatted as in production), in any MongoDB document, or in any HTTP response body."""
    fake_exchange.set_price("BTC/USDT", 64_000.0)
    with FakeOpenAI() as llm:
        llm.script(
            Reply(tool_calls=[ToolCall("get_ticker", {"symbol": "BTC/USDT"})], reasoning="price"),
            Reply(content="BTC/USDT trades near 64000."),
            Reply(status=401, error="invalid api key"),
        )
        client, key = make_client(
            scopes="read", llm=llm, slack=fake_slack, EXCHANGE_API_KEY=EXCHANGE_KEY, EXCHANGE_SECRET=EXCHANGE_SECRET
        )
        store = client.app.state.api_keys
        admin_key, admin = store.create("admin", "admin")
        bodies: list[str] = []
        bodies.append(client.post("/v1/ask", json={"question": "BTC/USDT?", "session_id": "sec"},
                                  headers=auth(key)).text)
        bodies.append(client.post("/v1/ask", json={"question": "BTC/USDT again?", "session_id": "sec"},
                                  headers=auth(admin_key)).text)
        # The key itself sent as data, in a question and as a session id (user data: it may come back to the user
        # who sent it, so those two responses are not checked, but the logs are).
        client.post("/v1/ask", json={"question": f"my key is {admin_key}"}, headers=auth(key))
        client.get(f"/v1/conversations/{admin_key}", headers=auth(key))
        bodies.append(client.get("/v1/conversations/sec", headers=auth(admin_key[:-1] + "x")).text)
        store.revoke(admin.key_id)
        bodies.append(client.get("/v1/conversations/sec", headers=auth(admin_key)).text)
        form = urllib.parse.urlencode({"command": "/analyze", "text": "BTC/USDT", "user_id": "U1", "channel_id": "C1",
                                       "team_id": "T1", "response_url": f"{fake_slack.api_url}response"})
        bodies.append(client.post("/slack/events", content=form, headers=slack_headers(form)).text)
        bodies.append(client.post("/slack/events", content=form, headers=slack_headers(form, secret="x")).text)
        fake_slack.wait_for("chat.update")  # the analysis, edited into the progress message
        bodies.append(client.get("/ready").text)
        bodies.append(client.get("/metrics").text)
        logging.getLogger("reliability.probe").info("probe %s", key)  # the redactor itself must catch a key
        db = client.app.state.db
        dumped = {name: json.dumps(list(db[name].find({}, {"_id": 0})), default=str)
                  for name in db.list_collection_names()}
    secrets = {
        "api key (read)": key.split("_", 2)[2],
        "api key (admin)": admin_key.split("_", 2)[2],
        "llm key": LLM_KEY,
        "slack bot token": BOT_TOKEN,
        "slack signing secret": SIGNING_SECRET,
        "exchange key": EXCHANGE_KEY,
        "exchange secret": EXCHANGE_SECRET,
    }
    logs = log_capture.text
    assert len(log_capture.lines) > 20, "too few log lines: the capture is not seeing the app"
    assert "probe ***" in logs
    assert any("llm request failed" in line for line in log_capture.lines), "the echoing LLM error was not logged"
    for name, secret in secrets.items():
        assert secret not in logs, f"{name} found in logs: " + next(
            line for line in log_capture.lines if secret in line)[:300]
        for collection, text in dumped.items():
            if name == "api key (admin)" and collection == "conversations":
                continue  # the user typed the key into a question; storing user text is expected (see below)
            assert secret not in text, f"{name} stored in MongoDB collection {collection}"
        for body in bodies:
            assert secret not in body, f"{name} echoed in a response: {body[:200]}"


@pytest.mark.fault
def test_llm_key_echoed_by_upstream_is_masked(make_client: Any, log_capture: LogCapture) -> None:
    """Fault: the LLM endpoint rejects the key and echoes it in the error body (OpenAI-style project key with
    hyphens). Must hold: the key appears in no log line and in no audit record."""
    project_key = "sk-proj-Ab3_dEf-9XyZ0123456789QwErTy"
    with FakeOpenAI(loop_forever=Reply(status=401, error=f"Incorrect API key provided: {project_key}")) as llm:
        client, key = make_client(llm=llm, LLM_API_KEY=project_key)
        assert client.post("/v1/ask", json={"question": "BTC/USDT?"}, headers=auth(key)).status_code == 200
        audit = json.dumps(list(client.app.state.db["audit_log"].find({}, {"_id": 0})), default=str)
    assert any("llm request failed" in line for line in log_capture.lines)
    assert project_key not in log_capture.text
    assert project_key not in audit
