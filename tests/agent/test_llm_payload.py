"""The desk's chat model sends what stock `ChatOpenAI` sends (plus `reasoning_content`), without the openai client's
per-call request transform, and reuses one tool binding for the same tools."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai._utils import _transform

from agent.llm.chat_model import ReasoningChatOpenAI
from tests.fakes.openai_server import FakeOpenAI, Reply


@tool
def quote(symbol: str, depth: int = 5) -> str:
    """Quote a symbol."""
    return symbol


@tool
def other(symbol: str) -> str:
    """Another tool."""
    return symbol


MESSAGES: list[BaseMessage] = [
    SystemMessage("system"),
    HumanMessage("hi"),
    AIMessage(
        "",
        tool_calls=[{"id": "c1", "name": "quote", "args": {"symbol": "BTC/USDT"}}],
        additional_kwargs={"reasoning_content": "thinking"},
    ),
    ToolMessage('{"ok":true}', tool_call_id="c1"),
    HumanMessage([{"type": "text", "text": "and now?"}]),
]


def _bodies(cls: type[ChatOpenAI], fake: FakeOpenAI, **extra: Any) -> list[dict[str, Any]]:
    fake.requests.clear()
    fake.script(Reply(content="one"), Reply(content="two"))
    model = cls(model="m", base_url=fake.base_url, api_key="sk-test-0123456789", max_retries=0, **extra)
    bound = model.bind_tools([quote])
    assert bound.invoke(MESSAGES).content == "one"
    assert "".join(str(c.content) for c in bound.stream(MESSAGES)) == "two"
    return list(fake.requests)


def test_the_wire_body_is_stock_chatopenai_plus_reasoning(monkeypatch: Any) -> None:
    with FakeOpenAI() as fake:
        stock = _bodies(ChatOpenAI, fake, extra_body={"foo": 1})
        calls: list[Any] = []
        real = _transform._transform_recursive

        def counting(data: Any, **kwargs: Any) -> Any:
            calls.append(data)
            return real(data, **kwargs)

        monkeypatch.setattr(_transform, "_transform_recursive", counting)
        ours = _bodies(ReasoningChatOpenAI, fake, extra_body={"foo": 1})
    assert len(stock) == len(ours) == 2
    for plain, sent in zip(stock, ours, strict=True):
        assert sent["tools"] == plain["tools"] and sent["foo"] == 1
        assert {k: v for k, v in sent.items() if k != "messages"} == {k: v for k, v in plain.items() if k != "messages"}
        replayed = [dict(m) for m in sent["messages"]]
        assert replayed[2].pop("reasoning_content") == "thinking"
        assert replayed == plain["messages"]
    # The history and the tool schemas never went through the client's transform (only the small envelope did).
    assert not any(isinstance(data, list) and data and isinstance(data[0], dict) for data in calls)


def test_the_same_tools_reuse_one_binding() -> None:
    model = ReasoningChatOpenAI(model="m", base_url="http://127.0.0.1:9/v1", api_key="sk-test-0123456789")
    first = model.bind_tools([quote, other])
    assert model.bind_tools([quote, other]) is first
    assert model.bind_tools([other, quote]) is not first
    assert model.bind_tools([quote, other], tool_choice="quote") is not first
    assert model.bind_tools([quote]) is not model.bind_tools([other])
    kwargs = getattr(model.bind_tools([quote, other], parallel_tool_calls=False), "kwargs", {})
    assert kwargs.get("parallel_tool_calls") is False
