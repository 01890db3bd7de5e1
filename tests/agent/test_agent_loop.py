"""The agent loop through the real ChatOpenAI client: multi-tool turns, memory, streaming, retries, degradation."""

from __future__ import annotations

import json
from typing import Any

from tests.agent.conftest import tool_result
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_multi_tool_turn(make_client: Any, fake_exchange: Any, fake_llm: FakeOpenAI) -> None:
    fake_exchange.set_price("BTC/USDT", 60_000.0)
    fake_exchange.set_price("ETH/USDT", 3_000.0)

    def final(body: dict[str, Any]) -> Reply:
        btc = tool_result(body, "get_ticker")
        book = tool_result(body, "get_order_book")["result"]
        return Reply(
            content=f"Ratio {60_000.0 / 3_000.0:.1f}; ETH last {btc['result']['last']}; "
            f"BTC spread {book['spread_bps']} bps",
            reasoning="done",
        )

    fake_llm.script(
        Reply(
            tool_calls=[
                ToolCall("get_ticker", {"symbol": "BTC/USDT"}),
                ToolCall("get_order_book", {"symbol": "BTC/USDT", "depth": 5}),
            ],
            reasoning="need both",
        ),
        Reply(tool_calls=[ToolCall("get_ticker", {"symbol": "ETH/USDT"})], reasoning="and ETH"),
        final,
    )
    client, key = make_client(llm=fake_llm)
    body = client.post("/v1/ask", json={"question": "BTC vs ETH?"}, headers=_auth(key)).json()
    # The first two calls run in parallel: their order in the record is the order they finished.
    tools = [u["tool"] for u in body["tools_used"]]
    assert sorted(tools[:2]) == ["get_order_book", "get_ticker"] and tools[2] == "get_ticker"
    assert "ETH last 3000.0" in body["answer"]
    # Every replayed assistant turn that carried tool calls also carried its reasoning (Deepseek rule).
    last = fake_llm.requests[-1]
    replayed = [m for m in last["messages"] if m["role"] == "assistant"]
    assert [m["reasoning_content"] for m in replayed] == ["need both", "and ETH"]


def test_memory_across_two_turns(make_client: Any, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(
        Reply(content="First answer: BTC is strong.", reasoning="r1"), Reply(content="Second answer.", reasoning="r2")
    )
    client, key = make_client(llm=fake_llm)
    client.post("/v1/ask", json={"question": "How is BTC?", "session_id": "thread-1"}, headers=_auth(key))
    client.post("/v1/ask", json={"question": "And now?", "session_id": "thread-1"}, headers=_auth(key))
    second = fake_llm.requests[1]["messages"]
    contents = [m.get("content") for m in second]
    assert "How is BTC?" in contents and "First answer: BTC is strong." in contents and contents[-1] == "And now?"
    # A different session does not see it.
    fake_llm.script(Reply(content="Fresh.", reasoning="r3"))
    client.post("/v1/ask", json={"question": "Hi", "session_id": "thread-2"}, headers=_auth(key))
    assert "How is BTC?" not in [m.get("content") for m in fake_llm.requests[2]["messages"]]


def test_streaming_sse(make_client: Any, fake_exchange: Any, fake_llm: FakeOpenAI) -> None:
    fake_exchange.set_price("BTC/USDT", 62_000.0)
    fake_llm.script(
        Reply(tool_calls=[ToolCall("get_ticker", {"symbol": "BTC/USDT"})], reasoning="price first"),
        lambda body: Reply(
            content=f"BTC is at {tool_result(body, 'get_ticker')['result']['last']} now", reasoning="answer"
        ),
    )
    client, key = make_client(llm=fake_llm)
    with client.stream("POST", "/v1/ask", json={"question": "BTC?", "stream": True}, headers=_auth(key)) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: ")]
    kinds = [e.get("type") for e in events]
    assert kinds.index("tool_started") < kinds.index("tool_finished") < kinds.index("token") < kinds.index("answer")
    tokens = "".join(e["text"] for e in events if e.get("type") == "token")
    assert tokens == "BTC is at 62000.0 now"
    answer = next(e for e in events if e.get("type") == "answer")["answer"]
    assert answer["answer"] == "BTC is at 62000.0 now" and answer["tools_used"][0]["tool"] == "get_ticker"
    assert fake_llm.requests[0]["stream"] is True


def test_empty_reply_is_retried(make_client: Any, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(Reply(content=""), Reply(content="", reasoning="thinking"), Reply(content="Here it is."))
    client, key = make_client(llm=fake_llm)
    body = client.post("/v1/ask", json={"question": "Anything?"}, headers=_auth(key)).json()
    assert body["answer"] == "Here it is." and len(fake_llm.requests) == 3


def test_llm_failure_degrades_to_deterministic(make_client: Any, fake_exchange: Any, fake_llm: FakeOpenAI) -> None:
    fake_exchange.set_price("BTC/USDT", 58_000.0)
    fake_llm.script(Reply(status=500, error="upstream down"), Reply(raw_body="<html>not json</html>"))
    client, key = make_client(llm=fake_llm)
    first = client.post("/v1/ask", json={"question": "How is BTC/USDT?"}, headers=_auth(key)).json()
    assert first["mode"] == "deterministic" and "did not answer" in first["answer"] and "58,000.00" in first["answer"]
    second = client.post("/v1/ask", json={"question": "How is BTC/USDT?"}, headers=_auth(key))
    assert second.status_code == 200 and second.json()["mode"] == "deterministic"


def test_token_accounting_per_day(make_client: Any, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(
        Reply(content="a", prompt_tokens=1000, completion_tokens=500),
        Reply(content="b", prompt_tokens=10, completion_tokens=5),
    )
    client, key = make_client(llm=fake_llm, llm_daily_token_budget="1200")
    first = client.post("/v1/ask", json={"question": "BTC/USDT?"}, headers=_auth(key)).json()
    assert first["usage"]["total_tokens"] == 1500 and first["usage"]["cost_usd"] > 0
    # The budget is spent: the next request does not reach the model.
    second = client.post("/v1/ask", json={"question": "BTC/USDT?"}, headers=_auth(key)).json()
    assert second["mode"] == "deterministic" and "budget" in second["answer"]
    assert len(fake_llm.requests) == 1
