"""`ChatOpenAI` that keeps Deepseek's `reasoning_content` and sends it back with tool calls.

Deepseek's thinking mode answers 400 when an earlier assistant turn with tool calls is replayed without its
`reasoning_content`; stock `ChatOpenAI` drops that field on the way in. Any other OpenAI-compatible endpoint
(OpenAI, Ollama, vLLM) ignores the extra field, so the same class serves all of them.
"""

from __future__ import annotations

from typing import Any

import openai
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI

from core.settings import Settings

REASONING_KEY = "reasoning_content"


EMPTY_REPLY_RETRIES = 2


class ReasoningChatOpenAI(ChatOpenAI):
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Deepseek sometimes answers with an empty message (no text, no tool call); ask again before giving up.
        result = super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        for _ in range(EMPTY_REPLY_RETRIES):
            if not _is_empty(result):
                break
            result = super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        return result

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
        max_retries=settings.llm_max_retries,  # the openai client backs off on 429 and 5xx
        stream_usage=True,
        temperature=0.2,
    )
