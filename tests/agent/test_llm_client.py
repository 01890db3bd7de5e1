"""The chat model as the desk uses it: which model a request names, retries with backoff, and bounded waits."""

from __future__ import annotations

from typing import Any

from tests.fakes.openai_server import FakeOpenAI, Reply


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
