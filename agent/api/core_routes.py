"""Core routes: liveness, readiness, metrics, and the desk's ask/analyze endpoints."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field, field_validator

from agent.api.auth import Principal, optional_principal, require_scope
from agent.desk import Answer, Desk
from core.strict import StrictModel

router = APIRouter()
log = logging.getLogger(__name__)

_SYMBOL = re.compile(r"^[A-Z0-9]{2,12}/[A-Z0-9]{2,8}$")


class AskRequest(StrictModel):
    question: str = Field(min_length=1, max_length=4000, description="A question for the desk")
    session_id: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    stream: bool = Field(default=False, description="Answer as server-sent events (tool events and tokens)")
    deep: bool = Field(default=False, description="Deeper analysis with LLM_DEEP_MODEL (default: LLM_MODEL)")


class AnalyzeRequest(StrictModel):
    symbol: str = Field(min_length=3, max_length=24, examples=["BTC/USDT"])
    session_id: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    deep: bool = Field(default=False, description="Narrative from LLM_DEEP_MODEL (default: LLM_MODEL)")

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        value = value.strip().upper()
        if not _SYMBOL.match(value):
            raise ValueError("symbol must look like BASE/QUOTE, e.g. BTC/USDT")
        return value


async def get_desk(request: Request) -> Desk:
    # async: a sync dependency would cost every desk request a worker-thread round trip for an attribute read.
    desk: Desk = request.app.state.desk
    return desk


@router.get(
    "/health",
    tags=["ops"],
    responses={503: {"description": "the store does not answer: `failing` names the component and why"}},
)
async def health(request: Request) -> Response:
    """Liveness: 200 while this process and its store answer; 503 naming the failing component otherwise, so an
    orchestrator restarts a service whose store is dead."""
    store = getattr(request.app.state, "store_health", None)
    failing = await store.failing() if store is not None else {}
    if failing:
        # /health needs no key: name the component, keep its error text and process ids for the log and /ready
        log.warning("health: store failing: %s", failing)
        body = json.dumps({"status": "unavailable", "failing": {name: "does not answer" for name in failing}})
        return Response(body, 503, media_type="application/json")
    return Response(json.dumps({"status": "ok"}), 200, media_type="application/json")


@router.get(
    "/ready",
    tags=["ops"],
    responses={
        503: {"description": "a required dependency is not ready (same body as 200)"},
        401: {"description": "an API key was sent and this desk does not know it"},
        429: {"description": "too many failed API-key attempts from this address"},
    },
)
async def ready(request: Request) -> Response:
    """Each dependency's `ok` and `required`, without a key (probes). With an admin key each also carries `detail`
    (addresses, models, paths: what an operator needs and a stranger should not see)."""
    principal = await optional_principal(request)
    checks: dict[str, Any] = await asyncio.to_thread(request.app.state.readiness.run)
    status = 200 if all(c["ok"] or not c.get("required", True) for c in checks.values()) else 503
    if principal is None or not principal.has("admin"):
        checks = {name: {"ok": c["ok"], "required": c.get("required", True)} for name, c in checks.items()}
    return Response(
        json.dumps({"ready": status == 200, "checks": checks}, default=str), status, media_type="application/json"
    )


@router.get("/metrics", tags=["ops"], include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.post(
    "/v1/ask",
    response_model=Answer,
    tags=["desk"],
    responses={200: {"content": {"text/event-stream": {"description": "with stream=true: tool and token events"}}}},
)
async def ask(
    body: AskRequest,
    principal: Annotated[Principal, Depends(require_scope("read"))],
    desk: Annotated[Desk, Depends(get_desk)],
) -> Any:
    user = principal.actor  # the same identity the money routes use, so four-eyes sees the agent's proposals
    if not body.stream:
        return await asyncio.to_thread(
            desk.ask,
            body.question,
            session_id=body.session_id,
            user=user,
            source="api",
            deep=body.deep,
            owner=principal.owner,
        )
    return StreamingResponse(_sse(desk, body, user, principal.owner), media_type="text/event-stream")


async def _sse(desk: Desk, body: AskRequest, user: str, owner: str) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def produce() -> None:
        try:
            events = desk.ask_stream(
                body.question, session_id=body.session_id, user=user, source="api", deep=body.deep, owner=owner
            )
            for event in events:
                loop.call_soon_threadsafe(queue.put_nowait, event)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    task = loop.run_in_executor(None, produce)
    while (event := await queue.get()) is not None:
        yield f"event: {event['type']}\ndata: {json.dumps(event, default=str)}\n\n"
    await task
    yield "event: done\ndata: {}\n\n"


@router.post(
    "/v1/analyze",
    response_model=Answer,
    tags=["desk"],
    responses={404: {"description": "the exchange does not list this symbol"}},
)
async def analyze(
    body: AnalyzeRequest,
    principal: Annotated[Principal, Depends(require_scope("read"))],
    desk: Annotated[Desk, Depends(get_desk)],
) -> Any:
    return await asyncio.to_thread(
        desk.analyze,
        body.symbol,
        session_id=body.session_id,
        user=principal.actor,
        deep=body.deep,
        owner=principal.owner,
    )


@router.get(
    "/v1/conversations/{session_id}",
    tags=["desk"],
    responses={404: {"description": "no conversation with this id that this key may read"}},
)
async def conversation(
    session_id: str,
    principal: Annotated[Principal, Depends(require_scope("read"))],
    desk: Annotated[Desk, Depends(get_desk)],
) -> dict[str, Any]:
    """The turns of a conversation this key owns (the session ids it used with /v1/ask and /v1/analyze). An admin key
    reads any conversation, Slack's and other keys' included, each turn with its `owner`. Someone else's conversation
    is a 404, like one that does not exist."""
    owner = None if "admin" in principal.scopes else principal.owner
    turns = await desk.memory.aturns(session_id, owner)
    if not turns:
        raise HTTPException(404, f"no conversation with session id {session_id}")
    return {"session_id": session_id, "turns": turns}
