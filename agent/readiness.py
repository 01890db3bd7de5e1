"""Readiness checks: each dependency reports ok, detail and whether the service needs it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pymongo.database import Database

from core import storage
from core.settings import Settings

Check = Callable[[], tuple[bool, str]]


class Readiness:
    def __init__(self, settings: Settings, cache_s: float = 5.0) -> None:
        self.settings = settings
        self.cache_s = cache_s
        self._checks: dict[str, tuple[Check, bool]] = {}
        self._cached: tuple[float, dict[str, Any]] | None = None
        self.add("mongo", lambda: storage.ping(settings), required=True)
        self.add("llm", self._llm, required=False)

    def add(self, name: str, check: Check, *, required: bool) -> None:
        self._checks[name] = (check, required)
        self._cached = None

    def _llm(self) -> tuple[bool, str]:
        if self.settings.llm_enabled:
            return True, f"configured: {self.settings.llm_model} at {self.settings.llm_base_url}"
        return False, "not configured (LLM_API_KEY unset): deterministic analysis only"

    def run(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._cached and now - self._cached[0] < self.cache_s:
            return self._cached[1]
        out: dict[str, Any] = {}
        for name, (check, required) in self._checks.items():
            try:
                ok, detail = check()
            except Exception as exc:  # a failing check is reported, never raised
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            out[name] = {"ok": ok, "detail": detail, "required": required}
        self._cached = (now, out)
        return out


class StoreHealth:
    """Liveness of the database for `/health`: one ping at a time, bounded by `timeout_s`, remembered for
    `cache_s`. With the embedded server this process supervises, the detail says how often it was restarted and why
    it last died. A store that does not answer makes `/health` a 503 naming it, so an orchestrator restarts the
    service (the supervisor restarts the embedded server itself; a restart of the service is the last resort)."""

    def __init__(self, db: Database[dict[str, Any]], *, timeout_s: float = 1.5, cache_s: float = 1.0) -> None:
        self._db = db
        self.timeout_s = timeout_s
        self.cache_s = cache_s
        self._cached: tuple[float, dict[str, str]] | None = None
        self._inflight: asyncio.Future[None] | None = None

    def _ping(self) -> None:
        self._db.client.admin.command("ping")

    async def failing(self) -> dict[str, str]:
        """Component -> why it is down; empty when the store answers."""
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.cache_s:
            return self._cached[1]
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(asyncio.to_thread(self._ping))
        out: dict[str, str] = {}
        try:
            await asyncio.wait_for(asyncio.shield(self._inflight), self.timeout_s)
        except TimeoutError:
            out["mongo"] = f"no answer within {self.timeout_s:g}s"
        except Exception as exc:  # the failure is the report
            out["mongo"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        server = storage.embedded_server()
        if out and server is not None and not server.attached:
            state = server.status()
            out["mongo"] += (
                f" (embedded nx-27017 pid {state['pid']}, restarts {state['restarts']},"
                f" last exit: {state['last_exit'] or 'none'})"
            )
        self._cached = (time.monotonic(), out)
        return out
