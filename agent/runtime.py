"""The LLM tool loop: `create_agent` over the typed tool registry, with per-request budgets.

Budgets per request: a cap on tool calls, a cap on model calls, wall time, and the daily token budget. Each tool
call is recorded (name, arguments, result, milliseconds) so that the answer can show what it used and the audit log
can show what was attempted.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain.agents.middleware.types import ModelRequest, ModelResponse, hook_config
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import StructuredTool
from pydantic import ConfigDict, ValidationError

from agent.llm.chat_model import request_deadline
from agent.prompts import SYSTEM_PROMPT
from core.metrics import TOOL_LATENCY
from tools.context import acting_for
from tools.registry import ToolSpec

MAX_TOOL_RESULT_CHARS = 8_000


@dataclass
class ToolRecord:
    name: str
    args: dict[str, Any]
    ok: bool
    result: Any
    ms: float


@dataclass
class RequestContext:
    deadline: float
    max_tool_calls: int
    records: list[ToolRecord] = field(default_factory=list)
    on_event: Callable[[dict[str, Any]], None] | None = None
    stopped_reason: str | None = None
    model_calls: int = 0
    user: str | None = None  # the person the request acts for (recorded by tools that propose orders)
    refusals: list[tuple[str, str]] = field(default_factory=list)  # (tool, why it did not run), for the audit log
    model_timed_out: bool = False  # a model call was cut off by the request's wall budget

    def emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(event)


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("agent_request", default=None)


def _compact(result: dict[str, Any]) -> str:
    text = json.dumps(result, default=str, separators=(",", ":"))
    if len(text) > MAX_TOOL_RESULT_CHARS:
        text = json.dumps({"ok": result.get("ok", True), "truncated": True, "head": text[:MAX_TOOL_RESULT_CHARS]})
    return text


def as_langchain_tool(spec: ToolSpec) -> StructuredTool:
    def run(**kwargs: Any) -> str:
        ctx = _current.get()
        started = time.perf_counter()
        if ctx is not None:
            if time.monotonic() > ctx.deadline:
                ctx.stopped_reason = "time budget exhausted"
                ctx.refusals.append((spec.name, "time budget exhausted"))
                return _compact({"ok": False, "error": "time budget for this request is exhausted; answer now"})
            if len(ctx.records) >= ctx.max_tool_calls:
                ctx.stopped_reason = "tool-call budget exhausted"
                ctx.refusals.append((spec.name, "tool-call budget exhausted"))
                return _compact({"ok": False, "error": "tool-call budget for this request is exhausted; answer now"})
            ctx.emit({"type": "tool_started", "tool": spec.name, "args": kwargs})
        with acting_for(ctx.user if ctx is not None else None):
            result = spec.invoke(kwargs)
        ms = (time.perf_counter() - started) * 1000.0
        TOOL_LATENCY.labels(spec.name).observe(ms / 1000.0)
        if ctx is not None:
            ctx.records.append(
                ToolRecord(spec.name, kwargs, bool(result.get("ok")), result.get("result", result.get("error")), ms)
            )
            ctx.emit({"type": "tool_finished", "tool": spec.name, "ok": bool(result.get("ok")), "ms": round(ms, 2)})
        return _compact(result)

    def validation_error(exc: Exception) -> str:
        if isinstance(exc, ValidationError):  # one readable sentence per problem, as the registry words them
            detail = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'args'}: {str(err['msg']).removeprefix('Value error, ')}"
                for err in exc.errors()[:5]
            )
        else:
            detail = str(exc)
        message = f"invalid arguments for {spec.name}: {detail}"[:600]
        if (ctx := _current.get()) is not None:
            ctx.refusals.append((spec.name, message[:300]))
        return _compact({"ok": False, "error": message})

    # The schema the model sees forbids unknown fields, so nothing like `approved: true` is silently dropped:
    # the model is told its argument was refused.
    strict_args = type(
        spec.args.__name__, (spec.args,), {"model_config": ConfigDict(**{**spec.args.model_config, "extra": "forbid"})}
    )
    return StructuredTool.from_function(
        func=run,
        name=spec.name,
        description=spec.description,
        args_schema=strict_args,
        handle_validation_error=validation_error,
        handle_tool_error=True,
    )


class BudgetMiddleware(AgentMiddleware):  # type: ignore[type-arg]
    """Ends the loop before a model call once the request's wall time or model-call budget is spent.

    Tool calls are counted by the tool wrapper, which answers "budget exhausted" past the cap so the model can still
    write its answer; the model-call cap (tool cap + 2) ends a model that keeps asking anyway. One middleware node
    instead of three keeps the per-step cost of the graph down.
    """

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        ctx = _current.get()
        if ctx is None:
            return None
        if time.monotonic() > ctx.deadline:
            ctx.stopped_reason = ctx.stopped_reason or "time budget exhausted"
            text = "I stopped here: this request ran out of its time budget."
        elif ctx.model_calls >= ctx.max_tool_calls + 2:
            ctx.stopped_reason = ctx.stopped_reason or "tool-call budget exhausted"
            text = "I stopped here: this request used its whole tool-call budget."
        else:
            ctx.model_calls += 1
            return None
        return {"jump_to": "end", "messages": [AIMessage(content=text)]}

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> Any:
        """A model call cut off because the request's wall time ran out ends the loop instead of failing it, so the
        tool calls made so far are still accounted and audited; the desk then answers deterministically."""
        try:
            return handler(request)
        except openai.APITimeoutError:
            ctx = _current.get()
            if ctx is None or time.monotonic() < ctx.deadline - 0.05:
                raise  # the per-call timeout (LLM_TIMEOUT_S), not the wall budget: the desk's failure path
            ctx.model_timed_out = True
            ctx.stopped_reason = "time budget exhausted while waiting for the model"
            return AIMessage(content="")


@dataclass
class LoopResult:
    text: str
    records: list[ToolRecord]
    prompt_tokens: int
    completion_tokens: int
    llm_calls: int
    stopped_reason: str | None
    # Every tool call the model asked for, valid or not (unknown tools, malformed arguments): the audit trail.
    attempted: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[tuple[str, str]] = field(default_factory=list)  # (tool, reason) of valid calls that did not run
    model_timed_out: bool = False


class LoopFailed(Exception):
    """The model endpoint failed mid-loop. `partial` holds what already ran (the tool calls the desk must still
    audit); `cause` is the endpoint's own error."""

    def __init__(self, cause: BaseException, partial: LoopResult) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.partial = partial


def _partial(ctx: RequestContext) -> LoopResult:
    return LoopResult("", list(ctx.records), 0, 0, ctx.model_calls, ctx.stopped_reason, [], list(ctx.refusals))


class AgentLoop:
    def __init__(self, model: BaseChatModel, tools: dict[str, ToolSpec], *, max_tool_calls: int, max_seconds: float):
        self.max_tool_calls = max_tool_calls
        self.max_seconds = max_seconds
        middleware: list[Any] = [BudgetMiddleware()]
        # The compiled graph's overloads are too narrow for mypy; we use its documented dict API.
        self.graph: Any = create_agent(
            model,
            [as_langchain_tool(spec) for spec in tools.values()],
            system_prompt=SYSTEM_PROMPT,
            middleware=middleware,
        )

    def _context(self, on_event: Callable[[dict[str, Any]], None] | None, user: str | None) -> RequestContext:
        return RequestContext(time.monotonic() + self.max_seconds, self.max_tool_calls, on_event=on_event, user=user)

    def _config(self) -> dict[str, Any]:
        return {"recursion_limit": 12 * (self.max_tool_calls + 2) + 20}

    @staticmethod
    def _summarise(messages: list[BaseMessage], ctx: RequestContext, start: int) -> LoopResult:
        prompt = completion = calls = 0
        text = ""
        attempted: list[dict[str, Any]] = []
        for msg in messages[start:]:
            if isinstance(msg, AIMessage):
                if msg.usage_metadata:
                    prompt += msg.usage_metadata.get("input_tokens", 0)
                    completion += msg.usage_metadata.get("output_tokens", 0)
                    calls += 1
                attempted.extend({"tool": tc["name"], "args": tc["args"], "valid": True} for tc in msg.tool_calls)
                attempted.extend(
                    {
                        "tool": tc.get("name"),
                        "args": str(tc.get("args"))[:500],
                        "valid": False,
                        "error": tc.get("error"),
                    }
                    for tc in msg.invalid_tool_calls
                )
                if not msg.tool_calls and isinstance(msg.content, str):
                    text = msg.content
        stopped = ctx.stopped_reason
        if stopped is None and len(attempted) > ctx.max_tool_calls:
            stopped = "tool-call budget exhausted"
        return LoopResult(
            text, ctx.records, prompt, completion, calls, stopped, attempted, list(ctx.refusals), ctx.model_timed_out
        )

    def run(self, history: list[BaseMessage], question: str, user: str | None = None) -> LoopResult:
        ctx = self._context(None, user)
        token = _current.set(ctx)
        try:
            messages = [*history, HumanMessage(question)]
            with request_deadline(ctx.deadline):
                state = self.graph.invoke({"messages": messages}, config=self._config())
        except Exception as exc:
            raise LoopFailed(exc, _partial(ctx)) from exc
        finally:
            _current.reset(token)
        return self._summarise(state["messages"], ctx, len(history))

    def stream(self, history: list[BaseMessage], question: str, user: str | None = None) -> Iterator[dict[str, Any]]:
        """Yield tool_started, tool_finished and token events; the last is {'type': 'result', 'result': LoopResult}."""
        events: list[dict[str, Any]] = []
        ctx = self._context(events.append, user)
        token = _current.set(ctx)
        final_messages: list[BaseMessage] = [*history, HumanMessage(question)]
        deadline = request_deadline(ctx.deadline)
        deadline.__enter__()
        try:
            for mode, payload in self.graph.stream(
                {"messages": final_messages},
                config=self._config(),
                stream_mode=["messages", "values"],
            ):
                while events:
                    yield events.pop(0)
                if mode == "messages":
                    chunk, _meta = payload
                    if isinstance(chunk, AIMessageChunk) and isinstance(chunk.content, str) and chunk.content:
                        yield {"type": "token", "text": chunk.content}
                elif mode == "values":
                    final_messages = payload["messages"]
            while events:
                yield events.pop(0)
        except Exception as exc:
            raise LoopFailed(exc, _partial(ctx)) from exc
        finally:
            deadline.__exit__(None, None, None)
            _current.reset(token)
        yield {"type": "result", "result": self._summarise(final_messages, ctx, len(history))}


def tool_messages_used(messages: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]
