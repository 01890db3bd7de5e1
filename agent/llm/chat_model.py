"""`ChatOpenAI` that keeps Deepseek's `reasoning_content` and sends it back with tool calls.

Deepseek's thinking mode answers 400 when an earlier assistant turn with tool calls is replayed without its
`reasoning_content`; stock `ChatOpenAI` drops that field on the way in. Any other OpenAI-compatible endpoint
(OpenAI, Ollama, vLLM) ignores the extra field, so the same class serves all of them.

Retries (429, 408/409, 5xx, timeouts, connection errors) are ours, not the openai client's: the client would sleep
up to 60 s on a Retry-After and give every attempt the full timeout, whatever the request's wall budget. Here each
attempt's timeout is the smaller of LLM_TIMEOUT_S and the time the request has left, and a retry whose wait would
not leave time for another attempt is not made.
"""

from __future__ import annotations

import contextvars
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import openai
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr

from core.settings import Settings

log = logging.getLogger(__name__)

REASONING_KEY = "reasoning_content"

EMPTY_REPLY_RETRIES = 2
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0
MAX_RETRY_AFTER_S = 60.0
MIN_ATTEMPT_S = 0.05  # an attempt with less time than this left is not worth starting

T = TypeVar("T")

# Monotonic deadline of the request being served (set by the agent loop); None outside a request.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("llm_deadline", default=None)


@contextmanager
def request_deadline(deadline: float | None) -> Iterator[None]:
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def seconds_left() -> float | None:
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def attempt_timeout(configured: float | None, left: float | None) -> float | None:
    """Per-attempt timeout: the configured one, cut to what is left of the request's wall budget."""
    if left is None:
        return configured
    left = max(left, MIN_ATTEMPT_S)
    return left if configured is None else min(configured, left)


def retry_after_s(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds a server asked us to wait: `retry-after-ms`, or `retry-after` in seconds or as an HTTP date."""
    if not headers:
        return None
    try:
        return max(0.0, float(headers["retry-after-ms"]) / 1000.0)
    except (KeyError, TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, email.utils.mktime_tz(parsed) - (time.time() if now is None else now))


def backoff_s(attempt: int, retry_after: float | None, jitter: float | None = None) -> float:
    """Honour a sane Retry-After; otherwise exponential backoff (0.5, 1, 2 ... capped at 8 s) with up to 25 % jitter."""
    if retry_after is not None and retry_after <= MAX_RETRY_AFTER_S:
        return retry_after
    j = random.random() if jitter is None else jitter  # nosec B311 - jitter, not security
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0**attempt) * (1.0 - 0.25 * j)


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError):  # timeouts included
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code in RETRY_STATUSES


def _headers_of(exc: BaseException) -> Mapping[str, str] | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return headers if isinstance(headers, Mapping) else None


BOUND_CACHE_SIZE = 8


class ReasoningChatOpenAI(ChatOpenAI):
    retries: int = 0  # our retries on 429/5xx/timeouts; build_chat_model turns the openai client's own off
    # The agent loop calls `bind_tools` with the same tool objects before every model call; converting ~40 tool
    # schemas to OpenAI's format each time was a large part of the desk's per-turn overhead. The binding is
    # immutable, so the same one is handed out again. The key holds the tools themselves (not only their ids), so
    # an id cannot be reused by another tool while its entry lives.
    _bound: dict[tuple[Any, ...], tuple[tuple[BaseTool, ...], Runnable[LanguageModelInput, AIMessage]]] = (
        PrivateAttr(default_factory=dict)
    )
    _bound_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        response_format: Any = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        def bind() -> Runnable[LanguageModelInput, AIMessage]:
            return super(ReasoningChatOpenAI, self).bind_tools(
                tools,
                tool_choice=tool_choice,
                strict=strict,
                parallel_tool_calls=parallel_tool_calls,
                response_format=response_format,
                **kwargs,
            )

        # Only BaseTool lists without a response format are cached: dicts and classes could be mutated by the caller.
        if response_format is not None or not all(isinstance(t, BaseTool) for t in tools):
            return bind()
        key = (
            tuple(id(t) for t in tools), repr(tool_choice), strict, parallel_tool_calls, repr(sorted(kwargs.items()))
        )
        with self._bound_lock:
            hit = self._bound.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], tools, strict=True)):
            return hit[1]
        bound = bind()
        with self._bound_lock:
            if len(self._bound) >= BOUND_CACHE_SIZE:
                self._bound.pop(next(iter(self._bound)))
            self._bound[key] = (tuple(tools), bound)
        return bound

    def _retrying(self, call: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return call()
            except Exception as exc:
                if attempt >= self.retries or not is_retryable(exc):
                    raise
                wait = backoff_s(attempt, retry_after_s(_headers_of(exc)))
                left = seconds_left()
                if left is not None and wait + MIN_ATTEMPT_S >= left:
                    raise  # no time left for another attempt within this request's budget
                log.info("llm call failed (%s); retry %d in %.2f s", type(exc).__name__, attempt + 1, wait)
                time.sleep(wait)
                attempt += 1

    def _generate_once(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> ChatResult:
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        def once() -> ChatResult:
            return self._retrying(lambda: self._generate_once(messages, stop, run_manager, kwargs))

        # Deepseek sometimes answers with an empty message (no text, no tool call); ask again before giving up.
        result = once()
        for _ in range(EMPTY_REPLY_RETRIES):
            if not _is_empty(result):
                break
            result = once()
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # Retry only while nothing has been streamed: a half-delivered answer cannot be taken back.
        def start() -> tuple[ChatGenerationChunk | None, Iterator[ChatGenerationChunk]]:
            chunks = super(ReasoningChatOpenAI, self)._stream(messages, stop=stop, run_manager=run_manager, **kwargs)
            return next(chunks, None), chunks

        first, rest = self._retrying(start)
        if first is None:
            return
        yield first
        yield from rest

    def _create_chat_result(
        self, response: dict[str, Any] | openai.BaseModel, generation_info: dict[str, Any] | None = None
    ) -> ChatResult:
        result = super()._create_chat_result(response, generation_info)
        raw = response if isinstance(response, dict) else response.model_dump()
        for gen, choice in zip(result.generations, raw.get("choices") or [], strict=False):
            reasoning = (choice.get("message") or {}).get(REASONING_KEY)
            if reasoning and isinstance(gen.message, AIMessage):
                gen.message.additional_kwargs[REASONING_KEY] = reasoning
        return result

    def _convert_chunk_to_generation_chunk(
        self, chunk: dict[str, Any], default_chunk_class: type, base_generation_info: dict[str, Any] | None
    ) -> ChatGenerationChunk | None:
        gen = super()._convert_chunk_to_generation_chunk(chunk, default_chunk_class, base_generation_info)
        choices = chunk.get("choices") or []
        if gen is not None and choices and isinstance(gen.message, AIMessageChunk):
            reasoning = (choices[0].get("delta") or {}).get(REASONING_KEY)
            if reasoning:
                # Chunk merging concatenates string values in additional_kwargs.
                gen.message.additional_kwargs[REASONING_KEY] = reasoning
        return gen

    def _get_request_payload(
        self, input_: LanguageModelInput, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
        messages = self._convert_input(input_).to_messages()
        sent = payload.get("messages")
        if isinstance(sent, list) and len(sent) == len(messages):
            for original, out in zip(messages, sent, strict=True):
                if isinstance(original, AIMessage) and (reasoning := original.additional_kwargs.get(REASONING_KEY)):
                    out[REASONING_KEY] = reasoning
        # Deepseek's thinking mode rejects tool_choice; the agent never needs to force a tool.
        payload.pop("tool_choice", None)
        configured = self.request_timeout if isinstance(self.request_timeout, int | float) else None
        if (timeout := attempt_timeout(configured, seconds_left())) is not None:
            payload["timeout"] = timeout
        return _skip_client_transform(payload) if not self._use_responses_api(payload) else payload


PRE_SERIALISED_KEYS = ("messages", "tools")


def _skip_client_transform(payload: dict[str, Any]) -> dict[str, Any]:
    """Send `messages` and `tools` through `extra_body`, which the openai client merges into the JSON body as given.

    The client otherwise walks both against its TypedDict annotations (`maybe_transform`) before every call: about
    10 ms of CPU per call with the desk's tool schemas and a replayed history, for nothing, because no chat request
    field carries a transform (alias or format) and langchain already built plain JSON dicts. The body on the wire
    is the same (`messages` keeps its place; an explicit `extra_body` still wins). Structured-output calls
    (`response_format`, parsed by the client) keep the ordinary path.
    """
    if "response_format" in payload or not isinstance(payload.get("messages"), list):
        return payload
    moved = {key: payload.pop(key) for key in PRE_SERIALISED_KEYS if key in payload}
    extra = payload.get("extra_body")
    payload["extra_body"] = {**moved, **(extra if isinstance(extra, dict) else {})}
    payload["messages"] = []  # required by the client's signature; replaced by extra_body's on the wire
    return payload


def _is_empty(result: ChatResult) -> bool:
    if not result.generations:
        return True
    message = result.generations[0].message
    if isinstance(message, AIMessage) and (message.tool_calls or message.invalid_tool_calls):
        return False
    content = message.content
    return not content.strip() if isinstance(content, str) else not content


def build_chat_model(settings: Settings, *, deep: bool = False) -> ReasoningChatOpenAI:
    """The model for the agent loop. `streaming` is left unset on purpose: an explicit False would stop LangGraph's
    message streaming from switching the same model to streamed calls for SSE requests."""
    if settings.llm_api_key is None:
        raise ValueError("LLM_API_KEY is not set")
    return ReasoningChatOpenAI(
        model=settings.llm_deep_model if deep else settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout_s,
        max_retries=0,  # retries are ours (see the module docstring): they respect the request's wall budget
        retries=settings.llm_max_retries,
        stream_usage=True,
        temperature=0.2,
    )
