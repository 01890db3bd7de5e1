"""Desk-level fault injection: the LLM and the exchange misbehave; the desk must still answer and say what it did.

(ccxt-level retry behaviour is tested by the market area in tests/market/; here the guarantee is end to end.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.reliability.conftest import auth

ASK = {"question": "How is BTC/USDT doing?"}
DEGRADED = "The language model did not answer"


def _ask(client: Any, key: str, **extra: Any) -> dict[str, Any]:
    resp = client.post("/v1/ask", json={**ASK, **extra}, headers=auth(key))
    assert resp.status_code == 200, resp.text[:300]
    body: dict[str, Any] = resp.json()
    return body


def _assert_degraded(body: dict[str, Any], price: float) -> None:
    assert body["mode"] == "deterministic" and body["narrative"] is False
    assert any(DEGRADED in note for note in body["notes"]), body["notes"]
    assert DEGRADED in body["answer"]
    ticker = next(u for u in body["tools_used"] if u["tool"] == "get_ticker")
    assert ticker["ok"] and ticker["result"]["last"] == price  # the deterministic numbers are real, not invented


@pytest.mark.fault
@pytest.mark.parametrize(
    "failure",
    [
        Reply(status=500, error="upstream exploded"),
        Reply(status=429, error="rate limited"),
        Reply(status=200, raw_body="{this is not json"),
        Reply(status=200, raw_body='{"id": "x", "object": "chat.completion", "choices": "nope"}'),
        Reply(status=200, raw_body="<html>502 Bad Gateway</html>"),
    ],
    ids=["http500", "http429", "truncated-json", "wrong-shape", "html"],
)
def test_llm_errors_and_garbage_degrade_to_deterministic(make_client: Any, fake_exchange: Any, failure: Reply) -> None:
    """Fault: the LLM endpoint answers an error status or a body that is not a chat completion. Must hold: /v1/ask
    answers 200 with the deterministic analysis, marked as such (mode, notes and text say the model did not
    answer), the numbers come from the tools, and the failure is in the audit log."""
    fake_exchange.set_price("BTC/USDT", 60_001.0)
    with FakeOpenAI(loop_forever=failure) as llm:
        client, key = make_client(llm=llm)
        body = _ask(client, key)
        assert llm.requests, "the LLM was never called: the fault was not exercised"
    _assert_degraded(body, 60_001.0)
    audit = list(client.app.state.db["audit_log"].find({"action": "agent_llm_error"}))
    assert audit and audit[-1]["outcome"] == "error"


@pytest.mark.fault
def test_llm_timeout_degrades_and_recovers(make_client: Any, fake_exchange: Any) -> None:
    """Fault: the LLM hangs past LLM_TIMEOUT_S, then comes back. Must hold: the hung request degrades to the
    deterministic answer (not a 5xx, not a hang), and the next request uses the LLM again (no sticky failure)."""
    fake_exchange.set_price("BTC/USDT", 61_000.0)
    with FakeOpenAI() as llm:
        llm.script(Reply(content="late", delay_s=3.0), Reply(content="BTC/USDT is calm today (LLM)."))
        client, key = make_client(llm=llm, LLM_TIMEOUT_S="0.5")
        first = _ask(client, key)
        second = _ask(client, key)
    _assert_degraded(first, 61_000.0)
    assert second["mode"] == "llm" and "calm today" in second["answer"]


@pytest.mark.fault
def test_llm_failure_mid_tool_loop(make_client: Any, fake_exchange: Any) -> None:
    """Fault: the LLM asks for a tool, then fails on the follow-up call. Must hold: the request still answers 200
    in deterministic mode, and the tool call that did run is audited (nothing silently lost)."""
    fake_exchange.set_price("BTC/USDT", 62_000.0)
    with FakeOpenAI() as llm:
        llm.script(Reply(tool_calls=[ToolCall("get_ticker", {"symbol": "BTC/USDT"})], reasoning="price first"),
                   Reply(status=500, error="boom"))
        client, key = make_client(llm=llm)
        body = _ask(client, key)
        assert len(llm.requests) == 2
    _assert_degraded(body, 62_000.0)
    ran = list(client.app.state.db["audit_log"].find({"action": "agent_tool_call", "details.tool": "get_ticker"}))
    assert len(ran) == 1 and ran[0]["outcome"] == "ok", ran
    assert client.app.state.db["audit_log"].find_one({"action": "agent_llm_error"}) is not None


@pytest.mark.fault
def test_llm_failure_in_streaming_mode(make_client: Any, fake_exchange: Any) -> None:
    """Fault: the LLM fails while the answer is streamed (SSE). Must hold: the stream carries an `error` event with
    a readable message and still ends with `done` (the client is never left hanging)."""
    with FakeOpenAI(loop_forever=Reply(status=500, error="boom")) as llm:
        client, key = make_client(llm=llm)
        resp = client.post("/v1/ask", json={**ASK, "stream": True}, headers=auth(key))
    assert resp.status_code == 200
    frames = [b for b in resp.text.split("\n\n") if b.strip()]
    kinds = [f.split("\n")[0].removeprefix("event: ") for f in frames]
    assert kinds[-1] == "done" and "error" in kinds, kinds
    error = json.loads(next(f for f in frames if f.startswith("event: error")).split("\n")[1][6:])
    assert "language model" in error["error"]


@pytest.mark.fault
def test_exchange_down_from_start_answers_with_simulated_data(make_client: Any, fake_exchange: Any) -> None:
    """Fault: every exchange request answers 503 from the first call (venue outage). Must hold: /v1/ask and
    /v1/analyze answer 200, and the answer says the data is simulated (never presented as live)."""
    fake_exchange.fail("*", 503, times=10_000)
    client, key = make_client()
    body = _ask(client, key)
    ticker = next(u for u in body["tools_used"] if u["tool"] == "get_ticker")
    assert ticker["ok"] and ticker["result"]["simulated"] is True
    assert "simulated" in body["answer"].lower()
    resp = client.post("/v1/analyze", json={"symbol": "ETH/USDT"}, headers=auth(key))
    assert resp.status_code == 200 and "simulated" in resp.json()["answer"].lower()


@pytest.mark.fault
def test_exchange_transient_429_and_5xx_are_absorbed(make_client: Any, fake_exchange: Any) -> None:
    """Fault: after the venue is up, the ticker endpoint answers 429 (Retry-After 0) then 502 once each. Must hold:
    the desk answers with the live price (retried), not simulated and not an error."""
    fake_exchange.set_price("BTC/USDT", 63_500.0)
    client, key = make_client()
    _ask(client, key)  # venue established
    fake_exchange.fail("/api/v3/ticker/24hr", 429, retry_after=0)
    fake_exchange.fail("/api/v3/ticker/24hr", 502)
    before = fake_exchange.count("GET", "/api/v3/ticker/24hr")
    body = _ask(client, key)
    ticker = next(u for u in body["tools_used"] if u["tool"] == "get_ticker")
    assert fake_exchange.count("GET", "/api/v3/ticker/24hr") - before >= 3  # two faults, then the answer
    assert ticker["ok"] and ticker["result"]["last"] == 63_500.0 and ticker["result"]["simulated"] is False


@pytest.mark.fault
def test_exchange_persistent_errors_and_timeouts_leave_a_note(make_client: Any, fake_exchange: Any) -> None:
    """Fault: after the venue is up, the ticker endpoint keeps timing out (beyond EXCHANGE_TIMEOUT_MS) or answering
    500. Must hold: /v1/ask still answers 200; the price section says it is unavailable and why; no price is
    invented."""
    client, key = make_client(EXCHANGE_TIMEOUT_MS="300")
    _ask(client, key)
    fake_exchange.delay("/api/v3/ticker/24hr", 1.5, times=2)
    fake_exchange.fail("/api/v3/ticker/24hr", 500, times=50)
    body = _ask(client, key)
    ticker = next(u for u in body["tools_used"] if u["tool"] == "get_ticker")
    assert ticker["ok"] is False
    assert "Price unavailable" in body["answer"]
    section = body["report"]["sections"]["ticker"]
    assert section["ok"] is False and section["note"], section
    fake_exchange.clear_faults()
    recovered = _ask(client, key)
    assert next(u for u in recovered["tools_used"] if u["tool"] == "get_ticker")["ok"] is True
