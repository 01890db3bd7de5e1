"""Pure-ASGI middleware: request ids, request size limit, access metrics and one access log line per request (logger
`agent.access`, carrying the request id like every line logged while the request runs). (Pure ASGI keeps the hot
path cheap.)"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logging import request_id_var
from core.metrics import HTTP_LATENCY, HTTP_REQUESTS

access_log = logging.getLogger("agent.access")

# Metric children by label values: `labels()` validates and locks on every call (about 10 us a request). Bounded,
# because the method comes from the client; past the bound it falls back to `labels()`.
_MAX_CHILDREN = 4096
_counters: dict[tuple[str, str, str], Any] = {}
_histograms: dict[str, Any] = {}


def _record(method: str, path: str, status: str, elapsed_s: float) -> None:
    key = (method, path, status)
    counter = _counters.get(key)
    if counter is None:
        counter = HTTP_REQUESTS.labels(method, path, status)
        if len(_counters) < _MAX_CHILDREN:
            _counters[key] = counter
    counter.inc()
    hist = _histograms.get(path)
    if hist is None:
        hist = HTTP_LATENCY.labels(path)
        if len(_histograms) < _MAX_CHILDREN:
            _histograms[path] = hist
    hist.observe(elapsed_s)


class ServiceMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def _reject(self, send: Send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        # 16 random hex digits, as uuid4().hex[:16] gave, without building a UUID object per request.
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or os.urandom(8).hex()
        token = request_id_var.set(rid)
        # The catch-all error handler runs outside this middleware (after the context variable is reset): it reads
        # the id from the scope, which every layer shares.
        scope["request_id"] = rid
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500}
        try:
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                status_holder["status"] = 413
                await self._reject(send, 413, f"request body too large: limit is {self.max_body_bytes} bytes")
                return
            if length is None and scope.get("method") in ("POST", "PUT", "PATCH"):
                # No declared length (chunked): read up to the limit before the app sees anything, so an oversized
                # body is a clean 413 rather than an error halfway through parsing.
                chunks: list[bytes] = []
                size = 0
                more = True
                while more:
                    message = await receive()
                    if message["type"] != "http.request":
                        break
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        status_holder["status"] = 413
                        await self._reject(send, 413, f"request body too large: limit is {self.max_body_bytes} bytes")
                        return
                    chunks.append(chunk)
                    more = bool(message.get("more_body", False))
                buffered: Message | None = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

                async def replay() -> Message:
                    nonlocal buffered
                    if buffered is not None:
                        message, buffered = buffered, None
                        return message
                    return await receive()

                body_receive: Receive = replay
            else:
                body_receive = receive
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await body_receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise _TooLarge()
                return message

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status_holder["status"] = message["status"]
                    message.setdefault("headers", [])
                    message["headers"] = [*message["headers"], (b"x-request-id", rid.encode("latin-1"))]
                await send(message)

            try:
                await self.app(scope, limited_receive, send_with_id)
            except _TooLarge:
                status_holder["status"] = 413
                await self._reject(send, 413, f"request body too large: limit is {self.max_body_bytes} bytes")
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            _record(scope.get("method", ""), path, str(status_holder["status"]), elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info("%s %s %s %.1fms", scope.get("method", ""), scope.get("path", ""),
                                status_holder["status"], elapsed * 1000.0)
            request_id_var.reset(token)


class _TooLarge(Exception):
    pass
