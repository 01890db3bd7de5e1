"""Readiness checks: each dependency reports ok, detail and whether the service needs it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

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
