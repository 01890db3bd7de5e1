"""The chat model as the desk uses it: which model a request names, retries with backoff, and bounded waits."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_deep_flag_asks_the_deep_model(make_client: Any, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(*(Reply(content=f"answer {i}", reasoning="r") for i in range(4)))
    client, key = make_client(llm=fake_llm, llm_model="flash-test", llm_deep_model="pro-test")
    plain = client.post("/v1/ask", json={"question": "BTC?"}, headers=_auth(key))
    deep = client.post("/v1/ask", json={"question": "BTC in depth?", "deep": True}, headers=_auth(key))
    assert plain.status_code == 200 and deep.status_code == 200, (plain.text, deep.text)
    assert [r["model"] for r in fake_llm.requests] == ["flash-test", "pro-test"]
    assert plain.json()["answer"] == "answer 0" and deep.json()["answer"] == "answer 1"
    analyzed = client.post("/v1/analyze", json={"symbol": "BTC/USDT", "deep": True}, headers=_auth(key))
    assert analyzed.status_code == 200 and analyzed.json()["mode"] == "llm", analyzed.text
    assert fake_llm.requests[-1]["model"] == "pro-test"
    client.post("/v1/analyze", json={"symbol": "BTC/USDT"}, headers=_auth(key))
    assert fake_llm.requests[-1]["model"] == "flash-test"
    bad = client.post("/v1/ask", json={"question": "BTC?", "deep": "very"}, headers=_auth(key))
    assert bad.status_code == 422 and "deep" in bad.json()["detail"]


def test_retry_after_a_429_waits_as_told(make_client: Any, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(
        Reply(status=429, error="rate limited", headers={"Retry-After": "0.6"}),
        Reply(content="answer after the 429", reasoning="r"),
    )
    client, key = make_client(llm=fake_llm, llm_max_retries="2")
    body = client.post("/v1/ask", json={"question": "Anything?"}, headers=_auth(key)).json()
    assert body["mode"] == "llm" and body["answer"] == "answer after the 429", body
    assert len(fake_llm.requests) == 2
    assert fake_llm.request_times[1] - fake_llm.request_times[0] >= 0.6  # Retry-After honoured


def test_retries_after_5xx_back_off(make_client: Any, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(
        Reply(status=503, error="overloaded"),
        Reply(status=500, error="upstream"),
        Reply(content="answer after two 5xx", reasoning="r"),
    )
    client, key = make_client(llm=fake_llm, llm_max_retries="2")
    body = client.post("/v1/ask", json={"question": "Anything?"}, headers=_auth(key)).json()
    assert body["mode"] == "llm" and body["answer"] == "answer after two 5xx", body
    t = fake_llm.request_times
    assert len(t) == 3 and t[1] - t[0] >= 0.5 * 0.75 and t[2] - t[1] >= 1.0 * 0.75  # exponential, 25 % jitter


def test_without_retries_a_503_degrades(make_client: Any, fake_exchange: Any, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(Reply(status=503, error="overloaded"), Reply(content="never asked", reasoning="r"))
    client, key = make_client(llm=fake_llm, llm_max_retries="0")
    body = client.post("/v1/ask", json={"question": "How is BTC/USDT?"}, headers=_auth(key)).json()
    assert body["mode"] == "deterministic" and len(fake_llm.requests) == 1
    assert any("HTTP 503" in n for n in body["notes"]), body["notes"]


def test_streamed_call_is_retried_before_the_first_token(make_client: Any, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(Reply(status=503, error="overloaded"), Reply(content="streamed after a 503", reasoning="r"))
    client, key = make_client(llm=fake_llm, llm_max_retries="1")
    with client.stream("POST", "/v1/ask", json={"question": "BTC?", "stream": True}, headers=_auth(key)) as resp:
        events = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: ")]
    answer = next(e for e in events if e.get("type") == "answer")["answer"]
    assert answer["answer"] == "streamed after a 503" and len(fake_llm.requests) == 2
    assert all(r.get("stream") for r in fake_llm.requests)


def test_a_timed_out_call_is_retried_within_the_budget(make_client: Any, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(Reply(stall=True), Reply(content="second attempt", reasoning="r"))
    client, key = make_client(llm=fake_llm, llm_timeout_s="0.5", llm_max_seconds="20", llm_max_retries="1")
    started = time.monotonic()
    body = client.post("/v1/ask", json={"question": "Anything?"}, headers=_auth(key)).json()
    assert body["answer"] == "second attempt" and time.monotonic() - started < 10
    assert len(fake_llm.requests) == 2 and fake_llm.abandoned == 1  # the client gave up on the stalled call


def test_a_stalled_model_is_cut_off_by_the_wall_budget(
    make_client: Any, fake_exchange: Any, fake_llm: FakeOpenAI
) -> None:
    """LLM_TIMEOUT_S (60 s) is far above the request's budget (3 s): the wall budget bounds the call, no retry is
    attempted without time for it, and the answer is the deterministic analysis saying why."""
    fake_exchange.set_price("BTC/USDT", 57_000.0)
    fake_llm.script(Reply(tool_calls=[ToolCall("get_ticker", {"symbol": "BTC/USDT"})], reasoning="price"),
                    Reply(stall=True))
    budget = 3.0
    client, key = make_client(llm=fake_llm, llm_timeout_s="60", llm_max_seconds=str(budget), llm_max_retries="2")
    started = time.monotonic()
    body = client.post("/v1/ask", json={"question": "How is BTC/USDT?"}, headers=_auth(key)).json()
    elapsed = time.monotonic() - started
    assert elapsed < budget + 4.0, elapsed  # the budget plus the deterministic report
    assert len(fake_llm.requests) == 2 and fake_llm.abandoned == 1
    assert body["mode"] == "deterministic" and "57,000.00" in body["answer"]
    assert any("time budget" in n and "LLM_MAX_SECONDS=3" in n for n in body["notes"]), body["notes"]
    # the tool call the model made before it stalled is accounted for
    audit = list(client.app.state.db["audit_log"].find({"action": "agent_tool_call"}))
    assert [(a["details"]["tool"], a["outcome"]) for a in audit] == [("get_ticker", "ok")]


def test_retry_and_timeout_arithmetic() -> None:
    from agent.llm.chat_model import attempt_timeout, backoff_s, retry_after_s

    assert attempt_timeout(60.0, None) == 60.0 and attempt_timeout(60.0, 2.5) == 2.5
    assert attempt_timeout(1.0, 30.0) == 1.0 and attempt_timeout(60.0, -1.0) == 0.05
    assert retry_after_s({"retry-after": "1.5"}) == 1.5 and retry_after_s({"retry-after-ms": "250"}) == 0.25
    assert retry_after_s({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert retry_after_s({}) is None and retry_after_s({"retry-after": "soon"}) is None
    assert backoff_s(0, 2.0) == 2.0 and backoff_s(0, 600.0, jitter=0.0) == 0.5  # an absurd Retry-After is ignored
    assert backoff_s(2, None, jitter=0.0) == 2.0 and backoff_s(10, None, jitter=1.0) == 8.0 * 0.75
