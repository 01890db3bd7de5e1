"""Status codes every operation can answer for reasons outside its handler, added to the OpenAPI document.

Each route documents its own outcomes in its decorator's `responses=` (404 for a missing order, 422 for a refused
proposal, ...). What the shared layers answer is added here, from what the route actually depends on, so that the
document lists every status a client can get (schemathesis checks it: test_reliability_fuzz_openapi.py):

- routes behind `require_scope`: 401 (no key, or one this desk does not know), 403 (the key lacks the scope), 429 (the
  key's rate limit, or too many failed keys from the address), 503 (the key store's database does not answer);
- routes that take input (parameters or a body): 400 (a body that is not JSON, and values the schema allows that the
  desk refuses: the ValueError handler in agent/api/errors.py) and 422 (input that does not validate; FastAPI
  documents 422 only for operations with parameters);
- routes that take a body: 413 (over MAX_REQUEST_BYTES, refused by the middleware before the handler).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "what is wrong, in one sentence"},
        "request_id": {"type": "string", "description": "the request's id (also the X-Request-ID header)"},
    },
}

SCOPED: dict[str, str] = {
    "401": "no API key, or one this desk does not know (unknown here or revoked)",
    "403": "the API key lacks the scope this operation needs",
    "429": "rate limit for this key, or too many failed API keys from this address (see Retry-After)",
    "503": "the database does not answer; retry shortly (see Retry-After)",
}
WITH_INPUT: dict[str, str] = {
    "400": "the body is not valid JSON, or the desk refuses a value: `detail` says why",
    "422": "the request does not validate: `detail` says which field and why",
}
WITH_BODY: dict[str, str] = {"413": "the request body is over MAX_REQUEST_BYTES"}


def _requires_scope(route: APIRoute) -> bool:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if getattr(dep.call, "__name__", "").startswith("require_"):
            return True
        stack.extend(dep.dependencies)
    return False


def _routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) for every APIRoute, following included routers (kept lazily by recent FastAPI)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):
            ctx = getattr(route, "include_context", None)
            yield from _routes(list(route.original_router.routes), prefix + str(getattr(ctx, "prefix", "") or ""))


def add_common_responses(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Add the shared layers' status codes to each operation of `schema` (the app's OpenAPI document), in place."""
    schema.setdefault("components", {}).setdefault("schemas", {}).setdefault("Error", ERROR_SCHEMA)
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    paths = schema.get("paths", {})
    for path, route in _routes(list(app.routes)):
        item = paths.get(path)
        if not item or not route.include_in_schema:
            continue
        dependant = route.dependant
        has_input = bool(dependant.path_params or dependant.query_params or dependant.header_params)
        has_body = route.body_field is not None
        extra = {
            **(SCOPED if _requires_scope(route) else {}),
            **(WITH_INPUT if has_input or has_body else {}),
            **(WITH_BODY if has_body else {}),
        }
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for code, description in extra.items():
                responses.setdefault(code, {"description": description, **ref})
    return schema


def document_common_responses(app: FastAPI) -> None:
    """Wrap `app.openapi` so the document it builds (once, then cached) carries the shared status codes."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        app.openapi_schema = add_common_responses(app, build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
