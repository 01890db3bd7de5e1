"""Fixtures for the reliability suite: the desk fixtures (fake exchange, LLM, Slack, app factory) plus helpers that
walk whatever routes and CLI commands the app has when the suite runs (areas land independently)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

# Re-export the desk fixtures so tests in this folder can use them (pytest finds fixtures by name in conftest).
from tests.agent.conftest import (  # noqa: F401
    BOT_TOKEN,
    SIGNING_SECRET,
    fake_exchange,
    fake_llm,
    fake_slack,
    make_client,
    make_settings,
    slack_headers,
)

# Routes that answer without an API key, on purpose. Anything else without a scope dependency fails the scope walk:
# add a route here only with a reason.
PUBLIC_ROUTES: dict[str, str] = {
    "/health": "liveness probe",
    "/ready": "readiness probe for the orchestrator; reports check names and states only",
    "/metrics": "Prometheus scrape; aggregate counters, no per-user data",
    "/openapi.json": "API description",
    "/docs": "Swagger UI",
    "/docs/oauth2-redirect": "Swagger UI",
    "/redoc": "ReDoc",
    "/": "the web desk's page (static HTML; it asks for a key and sends it to the scoped API routes)",
    "/slack/events": "authenticated by the Slack signing secret instead of an API key",
    "/slack/interactions": "authenticated by the Slack signing secret instead of an API key",
    "/slack/commands": "authenticated by the Slack signing secret instead of an API key",
}


@dataclass(frozen=True)
class RouteInfo:
    path: str
    method: str
    scopes: frozenset[str]  # scopes named by require_scope dependencies on this route (empty: public)
    has_body: bool
    path_params: tuple[str, ...]


def _scope_names(calls: list[Any]) -> set[str]:
    return {
        name[len("require_") :]
        for call in calls
        if (name := getattr(call, "__name__", "")).startswith("require_")
    }


def _dependency_calls(route: APIRoute) -> list[Any]:
    calls: list[Any] = []
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        calls.append(dep.call)
        stack.extend(dep.dependencies)
    return calls


def _iter_api_routes(routes: list[Any], prefix: str = "", extra: tuple[Any, ...] = ()) -> Iterator[
        tuple[str, APIRoute, tuple[Any, ...]]]:
    """(full path, route, dependency callables added by include_router) for every APIRoute, following included
    routers (FastAPI >= 0.16x keeps them as lazy `_IncludedRouter` entries instead of flattening them)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route, extra
        elif hasattr(route, "original_router"):
            ctx = getattr(route, "include_context", None)
            deps = tuple(d.dependency for d in getattr(ctx, "dependencies", []) or [])
            yield from _iter_api_routes(
                list(route.original_router.routes), prefix + str(getattr(ctx, "prefix", "") or ""), extra + deps
            )


def walk_routes(app: FastAPI) -> list[RouteInfo]:
    """Every (path, method) the app serves through FastAPI, with the scopes its dependencies demand."""
    out: list[RouteInfo] = []
    for path, route, extra in _iter_api_routes(list(app.routes)):
        scopes = frozenset(_scope_names(_dependency_calls(route) + list(extra)))
        for method in sorted(route.methods or ()):
            if method in ("HEAD", "OPTIONS"):
                continue
            out.append(
                RouteInfo(
                    path=path,
                    method=method,
                    scopes=scopes,
                    has_body=route.body_field is not None,
                    path_params=tuple(p.name for p in route.dependant.path_params),
                )
            )
    return out


def concrete_path(info: RouteInfo, value: str = "x1") -> str:
    path = info.path
    for name in info.path_params:
        path = path.replace("{" + name + "}", value).replace("{" + name + ":path}", value)
    return path


class LogCapture(logging.Handler):
    """Formats every record the way production does (JSON formatter) and keeps the text."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        from core.logging import JsonFormatter

        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot format is still evidence: keep its raw parts
            self.lines.append(f"{record.name} {record.msg!r} {record.args!r}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture()
def log_capture() -> Iterator[LogCapture]:
    handler = LogCapture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


ClientFactory = Callable[..., tuple[Any, str]]
