"""A fake Slack Web API: records what the app sends (chat.*, files upload v2, views.*) and answers like Slack.

Point `slack_sdk.WebClient(base_url=fake.api_url)` at it. Every call is kept in `calls` as (method, params).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.asgi_server import ThreadedServer


class FakeSlack:
    def __init__(self, bot_token: str = "xoxb-test-token") -> None:
        self.bot_token = bot_token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.uploads: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._ts = 1_700_000_000.000100
        self._server = ThreadedServer(
            Starlette(
                routes=[
                    Route("/api/{method}", self._api, methods=["POST", "GET"]),
                    Route("/upload/{file_id}", self._upload, methods=["POST", "PUT"]),
                ]
            )
        )

    @property
    def api_url(self) -> str:
        return f"{self._server.url}/api/"

    def start(self) -> str:
        self._server.start()
        return self.api_url

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeSlack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- assertions helpers ----------------------------------------------------------------------------------
    def calls_of(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [params for name, params in self.calls if name == method]

    def wait_for(
        self, method: str, count: int = 1, timeout: float = 10.0, predicate: Any = None
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [p for n, p in self.calls if n == method and (predicate is None or predicate(p))]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = [n for n, _ in self.calls]
                    raise AssertionError(f"expected {count} x {method}, saw {len(found)}; calls: {names}")
                self._cond.wait(remaining)

    # -- protocol --------------------------------------------------------------------------------------------
    def _next_ts(self) -> str:
        self._ts += 1.0
        return f"{self._ts:.6f}"

    async def _params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query_params)
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        if raw:
            if "json" in ctype:
                params.update(json.loads(raw))
            elif "multipart" in ctype:
                form = await request.form()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
            else:
                params.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
        for key in ("blocks", "attachments", "view", "files"):
            if isinstance(params.get(key), str):
                try:
                    params[key] = json.loads(params[key])
                except json.JSONDecodeError:
                    pass
        return params

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        auth = request.headers.get("authorization", "")
        params = await self._params(request)
        token = auth[7:] if auth.startswith("Bearer ") else params.get("token")
        if token != self.bot_token:
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        with self._cond:
            self.calls.append((method, params))
            self._cond.notify_all()
        return JSONResponse(self._answer(method, params))

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel") or params.get("channel_id") or "C000"
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T000", "url": "https://fake.slack/"}
        if method in ("chat.postMessage", "chat.update"):
            ts = params.get("ts") if method == "chat.update" else self._next_ts()
            return {"ok": True, "channel": channel, "ts": ts, "message": {"text": params.get("text", ""), "ts": ts}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "files.getUploadURLExternal":
            file_id = f"F{uuid.uuid4().hex[:10].upper()}"
            return {"ok": True, "upload_url": f"{self._server.url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = params.get("files") or []
            return {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}
        if method.startswith("views."):
            return {"ok": True, "view": {"id": f"V{uuid.uuid4().hex[:8].upper()}", **(params.get("view") or {})}}
        if method == "conversations.info":
            return {"ok": True, "channel": {"id": channel, "name": "markets"}}
        return {"ok": True}

    async def _upload(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        body = await request.body()
        with self._cond:
            self.uploads[file_id] = body
            self.calls.append(("upload", {"file_id": file_id, "bytes": len(body)}))
            self._cond.notify_all()
        return PlainTextResponse("OK - " + str(len(body)))
