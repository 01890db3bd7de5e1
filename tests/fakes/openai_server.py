"""A scripted OpenAI-compatible chat server (`POST /v1/chat/completions`, JSON and SSE streaming).

Each request consumes the next scripted step. A step is a `Reply` or a callable taking the request body and
returning a `Reply`, so a script can answer with numbers taken from the tool results it was sent. With
`deepseek_strict=True` the server enforces Deepseek's thinking-mode rules: every earlier assistant message that
carried tool calls must send its `reasoning_content` back, and `tool_choice` is refused (both answer 400, as the
real API does).

Faults: a `Reply` with `status` 429/500/503 answers that HTTP error (with `headers`, e.g. `Retry-After`); `delay_s`
waits before answering; `stall=True` never answers and holds the connection until the client gives up (or the
server stops). A request whose client hung up before the answer counts in `abandoned`; `request_times` holds the
monotonic arrival time of every request (to check a client's backoff).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.asgi_server import ThreadedServer


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any] | str
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:10]}")


@dataclass
class Reply:
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str | None = None
    status: int = 200
    error: str | None = None
    raw_body: str | None = None  # send this text as-is (garbage replies)
    delay_s: float = 0.0
    stall: bool = False  # hold the request until the client disconnects (a hung upstream)
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (e.g. Retry-After on a 429)
    prompt_tokens: int = 50
    completion_tokens: int = 20


Step = Reply | Callable[[dict[str, Any]], Reply]


def last_tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON results of the tool messages since the last assistant turn (helper for scripted steps)."""
    out: list[dict[str, Any]] = []
    for msg in reversed(body.get("messages", [])):
        if msg.get("role") != "tool":
            break
        try:
            out.insert(0, json.loads(msg.get("content") or "null"))
        except json.JSONDecodeError:
            out.insert(0, {"raw": msg.get("content")})
    return out


class FakeOpenAI:
    def __init__(
        self, steps: list[Step] | None = None, *, deepseek_strict: bool = False, loop_forever: Step | None = None
    ):
        self.steps: list[Step] = list(steps or [])
        self.requests: list[dict[str, Any]] = []
        self.request_times: list[float] = []
        self.abandoned = 0  # requests whose client disconnected before the answer
        self._released = threading.Event()
        self.deepseek_strict = deepseek_strict
        self.loop_forever = loop_forever  # when the script runs out, keep answering with this step
        self._server = ThreadedServer(Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])]))

    # -- lifecycle -------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"{self._server.url}/v1"

    def start(self) -> str:
        self._server.start()
        return self.base_url

    def stop(self) -> None:
        self._released.set()  # let stalled handlers finish so the server can shut down
        self._server.stop()

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *steps: Step) -> None:
        self.steps.extend(steps)

    # -- protocol --------------------------------------------------------------------------------------------
    def _deepseek_violation(self, body: dict[str, Any]) -> str | None:
        if "tool_choice" in body:
            return "deepseek-v4 thinking mode does not support tool_choice"
        for msg in body.get("messages", []):
            if msg.get("role") == "assistant" and msg.get("tool_calls") and not msg.get("reasoning_content"):
                return "The reasoning_content in the thinking mode must be passed back to the API."
        return None

    async def _chat(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or len(auth) < 10:
            return JSONResponse({"error": {"message": "missing api key", "type": "authentication_error"}}, 401)
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return JSONResponse({"error": {"message": "invalid json", "type": "invalid_request_error"}}, 400)
        self.requests.append(body)
        self.request_times.append(time.monotonic())
        if self.deepseek_strict and (problem := self._deepseek_violation(body)):
            return JSONResponse({"error": {"message": problem, "type": "invalid_request_error"}}, 400)
        if self.steps:
            step = self.steps.pop(0)
        elif self.loop_forever is not None:
            step = self.loop_forever
        else:
            return JSONResponse({"error": {"message": "script exhausted", "type": "server_error"}}, 500)
        reply = step(body) if callable(step) else step
        if (reply.stall or reply.delay_s) and not await self._wait(request, None if reply.stall else reply.delay_s):
            self.abandoned += 1
            return Response(status_code=499)  # nobody is listening any more
        if reply.raw_body is not None:
            return Response(
                reply.raw_body, status_code=reply.status, media_type="application/json", headers=reply.headers
            )
        if reply.status != 200:
            kind = "rate_limit_error" if reply.status == 429 else "server_error"
            return JSONResponse(
                {"error": {"message": reply.error or "error", "type": kind}}, reply.status, headers=reply.headers
            )
        model = body.get("model", "fake-model")
        if body.get("stream"):
            return StreamingResponse(self._stream(reply, model, body), media_type="text/event-stream")
        return JSONResponse(self._completion(reply, model))

    async def _wait(self, request: Request, seconds: float | None) -> bool:
        """Sleep `seconds` (None: until released); False when the client hung up first."""
        end = None if seconds is None else time.monotonic() + seconds
        while end is None or time.monotonic() < end:
            if await request.is_disconnected():
                return False
            if seconds is None and self._released.is_set():
                return False
            step = 0.02 if end is None else min(0.02, max(end - time.monotonic(), 0.0))
            await asyncio.sleep(step)
        return not await request.is_disconnected()

    @staticmethod
    def _tool_calls_json(reply: Reply) -> list[dict[str, Any]]:
        return [
            {
                "id": tc.id,
                "type": "function",
                "function": {
                    "name": tc.name,
                    "arguments": tc.arguments if isinstance(tc.arguments, str) else json.dumps(tc.arguments),
                },
            }
            for tc in reply.tool_calls
        ]

    def _completion(self, reply: Reply, model: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.reasoning is not None:
            message["reasoning_content"] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = self._tool_calls_json(reply)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}
            ],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        }

    async def _stream(self, reply: Reply, model: str, body: dict[str, Any]) -> Any:
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            data = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(data)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        if reply.reasoning:
            yield chunk({"reasoning_content": reply.reasoning})
        for i, tc in enumerate(self._tool_calls_json(reply)):
            yield chunk({"tool_calls": [{"index": i, **tc}]})
        words = reply.content.split(" ")
        for i, word in enumerate(words):
            yield chunk({"content": word if i == 0 else " " + word})
        yield chunk({}, "tool_calls" if reply.tool_calls else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            }
            final = {"id": cid, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            yield f"data: {json.dumps(final)}\n\n"
        yield "data: [DONE]\n\n"
