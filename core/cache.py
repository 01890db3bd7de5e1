"""A small thread-safe TTL cache for hot read paths (market views, risk snapshots).

Reads that many clients repeat within a second are computed once per key and interval; writers call `clear()` so
that a change is visible at once. Values are shared: callers must not mutate what they get.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, ttl_s: float, max_items: int = 1024) -> None:
        self.ttl_s = ttl_s
        self.max_items = max_items
        self._items: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> tuple[bool, V | None]:
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    async def aget_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """From an event loop: a fresh value is returned at once; otherwise `compute` runs in a worker thread."""
        found, value = self.peek(key)
        if found:
            return value  # type: ignore[return-value]
        return await asyncio.to_thread(self.get_or_compute, key, compute)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = compute()  # errors are not cached: the next caller tries again
        with self._lock:
            if len(self._items) >= self.max_items:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl_s, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
