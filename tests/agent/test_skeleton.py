"""The walking skeleton: one request through every layer (HTTP or Slack -> desk -> agent -> tool -> ccxt -> fake)."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

from tests.agent.conftest import slack_headers, tool_result
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall


def test_health_docs_metrics_ready(make_client: Any) -> None:
    client, _ = make_client()
    admin, _ = client.app.state.api_keys.create("ops", "admin")
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/docs").status_code == 200
    assert client.get("/redoc").status_code == 200
    assert "cqa_http_requests_total" in client.get("/metrics").text
    anonymous = client.get("/ready").json()
    assert anonymous["checks"]["mongo"] == {"ok": True, "required": True}  # states only: no addresses or paths
    ready = client.get("/ready", headers={"Authorization": f"Bearer {admin}"}).json()
    assert ready["checks"]["mongo"]["ok"] is True
    assert ready["checks"]["llm"]["ok"] is False and "LLM_API_KEY" in ready["checks"]["llm"]["detail"]
    assert ready["checks"]["exchange"]["ok"] is True
    assert set(ready["checks"]) >= {"mongo", "chroma", "exchange", "llm"}


def test_ask_requires_key_and_valid_body(make_client: Any) -> None:
    client, key = make_client()
    assert client.post("/v1/ask", json={"question": "How is BTC/USDT doing?"}).status_code == 401
    bad = client.post("/v1/ask", json={"question": "hi"}, headers={"Authorization": "Bearer cqa_000000000000_nope"})
    assert bad.status_code == 401
    resp = client.post("/v1/ask", json={"questio": 1}, headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 422
    assert "question" in resp.json()["detail"] and "Field required" in resp.json()["detail"]
    resp = client.post(
        "/v1/ask", content=b"{not json", headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    )
    assert resp.status_code == 422 and resp.json()["detail"].startswith("invalid request")


def test_scope_is_enforced(make_client: Any) -> None:
    client, key = make_client(scopes="approve")
    resp = client.post("/v1/ask", json={"question": "BTC?"}, headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 403 and "read" in resp.json()["detail"]


def test_ask_without_llm_returns_deterministic_analysis(make_client: Any, fake_exchange: Any) -> None:
    fake_exchange.set_price("BTC/USDT", 61_234.5)
    client, key = make_client()
    resp = client.post(
        "/v1/ask", json={"question": "How is BTC/USDT doing?"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["mode"] == "deterministic" and body["narrative"] is False
    assert "61,234.50" in body["answer"]
    assert "narrative is off" in body["answer"]
    ticker = next(u for u in body["tools_used"] if u["tool"] == "get_ticker")
    assert ticker["ok"] and ticker["result"]["last"] == 61_234.5 and ticker["result"]["simulated"] is False


def test_llm_tool_round_trip_through_chatopenai(make_client: Any, fake_exchange: Any, fake_llm: FakeOpenAI) -> None:
    fake_exchange.set_price("BTC/USDT", 64_321.0)

    def answer_with_price(body: dict[str, Any]) -> Reply:
        result = tool_result(body, "get_ticker")["result"]
        return Reply(
            content=f"BTC/USDT last traded at {result['last']} on {result['exchange']} (get_ticker).",
            reasoning="The tool gave the price; quote it.",
        )

    fake_llm.script(
        Reply(tool_calls=[ToolCall("get_ticker", {"symbol": "BTC/USDT"})], reasoning="I need the live price."),
        answer_with_price,
    )
    client, key = make_client(llm=fake_llm)
    resp = client.post(
        "/v1/ask",
        json={"question": "How is BTC/USDT doing?", "session_id": "s1"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["mode"] == "llm"
    assert "64321.0" in body["answer"]
    assert [u["tool"] for u in body["tools_used"]] == ["get_ticker"]
    assert body["usage"]["total_tokens"] == 140 and body["usage"]["llm_calls"] == 2
    assert body["citations"][0]["exchange"] == "binance"
    # Deepseek thinking mode: the second request replays the first turn's reasoning_content; no tool_choice sent.
    second = fake_llm.requests[1]
    assistant = next(m for m in second["messages"] if m["role"] == "assistant")
    assert assistant["reasoning_content"] == "I need the live price."
    assert all("tool_choice" not in r for r in fake_llm.requests)
    metrics = client.get("/metrics").text
    assert 'cqa_llm_tokens_total{kind="prompt"}' in metrics and "cqa_llm_cost_usd_total" in metrics
    # The conversation is stored in Mongo.
    turns = client.get("/v1/conversations/s1", headers={"Authorization": f"Bearer {key}"}).json()["turns"]
    assert turns[0]["question"] == "How is BTC/USDT doing?" and "64321.0" in turns[0]["answer"]


def test_slack_analyze_signed_and_unsigned(make_client: Any, fake_exchange: Any, fake_slack: Any) -> None:
    fake_exchange.set_price("ETH/USDT", 3_456.78)
    client, _ = make_client(slack=fake_slack)
    body = urllib.parse.urlencode(
        {
            "command": "/analyze",
            "text": "ETH/USDT",
            "user_id": "U1",
            "channel_id": "C1",
            "team_id": "T1",
            "response_url": f"{fake_slack.api_url}response",
            "trigger_id": "1.2",
        }
    )
    started = time.monotonic()
    resp = client.post("/slack/events", content=body, headers=slack_headers(body))
    assert resp.status_code == 200 and time.monotonic() - started < 3
    posted = fake_slack.wait_for("chat.update")  # the progress message, edited in place with the analysis
    assert posted[0]["channel"] == "C1" and "3,456.78" in posted[0]["text"]
    unsigned = client.post("/slack/events", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 401
    stale = client.post("/slack/events", content=body, headers=slack_headers(body, ts=int(time.time()) - 600))
    assert stale.status_code == 401
    forged = client.post("/slack/events", content=body, headers=slack_headers(body, secret="wrong"))
    assert forged.status_code == 401


def test_cli_apikey_bad_scope_exits_2(isolated_settings: Any, capsys: Any) -> None:
    from agent.cli import main

    assert main(["apikey", "create", "--scopes", "read,root"]) == 2
    assert "unknown scope" in capsys.readouterr().err
    assert main(["apikey", "create", "--scopes", "read"]) == 0
    assert capsys.readouterr().out.startswith("cqa_")


def test_request_too_large_is_413(make_client: Any) -> None:
    client, key = make_client()
    big = json.dumps({"question": "x" * 2_000_000})
    resp = client.post(
        "/v1/ask", content=big, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    )
    assert resp.status_code == 413 and "too large" in resp.json()["detail"]


def test_slack_acks_even_when_slack_api_is_down(make_client: Any, fake_slack: Any) -> None:
    """auth.test cannot be reached: commands are still acknowledged (bolt would otherwise answer 500)."""
    from tests.fakes.asgi_server import free_port

    client, _ = make_client(slack=fake_slack, slack_api_url=f"http://127.0.0.1:{free_port()}/api/")
    body = urllib.parse.urlencode(
        {
            "command": "/analyze",
            "text": "ETH/USDT",
            "user_id": "U1",
            "channel_id": "C1",
            "team_id": "T1",
            "response_url": "http://127.0.0.1:9/x",
            "trigger_id": "1.2",
        }
    )
    resp = client.post("/slack/events", content=body, headers=slack_headers(body))
    assert resp.status_code == 200
