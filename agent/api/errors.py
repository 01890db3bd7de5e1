"""One error shape for every 4xx/5xx: `{"detail": "<readable sentence>", "errors": [...]?, "request_id": "<id>"}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.logging import request_id_var
from trading.exchanges.errors import ExchangeError, ExchangeUnavailable, UnknownExchange, UnknownSymbol

log = logging.getLogger(__name__)


def request_id(request: Request) -> str:
    """The request's id: the middleware puts it in the scope (the context variable is already reset when the
    catch-all handler runs, outside the middleware)."""
    rid = request.scope.get("request_id")
    return str(rid) if rid else request_id_var.get()


def error_response(
    request: Request, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The one error body: `{"detail": <sentence>, "request_id": <id>, ...}`."""
    return JSONResponse({"detail": detail, **extra, "request_id": request_id(request)}, status_code=status,
                        headers=headers)


def _readable(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        msg = str(err.get("msg") or "").removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid request: " + "; ".join(parts) + more


def _document_error_shape(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers send: a readable `detail` string (plus `errors` on 422)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["HTTPValidationError"] = {
            "title": "HTTPValidationError",
            "type": "object",
            "required": ["detail"],
            "properties": {
                "detail": {"type": "string", "description": "what is wrong, in one sentence"},
                "errors": {"type": "array", "items": {"type": "object"}, "description": "each invalid field"},
                "request_id": {"type": "string", "description": "the request's id (also the X-Request-ID header)"},
            },
        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    _document_error_shape(app)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        return error_response(request, 422, _readable(errors), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_response(request, exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(PyMongoError)
    async def database_error(request: Request, exc: PyMongoError) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return error_response(request, 503, "database unavailable; retry shortly", headers={"Retry-After": "5"})

    @app.exception_handler(ExchangeError)
    async def exchange_error(request: Request, exc: ExchangeError) -> JSONResponse:
        """Whatever route reached a venue: an unknown symbol or exchange is a 404 naming the nearby ones, a venue
        that cannot be reached a 503, any other refusal by the venue a 400."""
        if isinstance(exc, (UnknownSymbol, UnknownExchange)):
            return error_response(request, 404, str(exc)[:500])
        if isinstance(exc, ExchangeUnavailable):
            return error_response(request, 503, str(exc)[:500], headers={"Retry-After": "5"})
        return error_response(request, 400, str(exc)[:500])

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        # this response bypasses the middleware that adds the id header to every other answer
        return error_response(request, 500, "internal error; the request id identifies it in the logs",
                              headers={"X-Request-ID": request_id(request)})

    @app.exception_handler(ValueError)
    async def value_error(request: Request, exc: ValueError) -> JSONResponse:
        return error_response(request, 400, str(exc)[:500])
