"""Token-bucket rate limiting per key (in-process; each replica limits its own share)."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(per_minute // 4, 10))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, cost: float = 1.0) -> tuple[bool, float]:
        """(allowed, seconds until a token is free)."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                return True, 0.0
            self._buckets[key] = (tokens, now)
            return False, (cost - tokens) / self.rate


class FailureLimiter:
    """Failures per client (an address): after `limit` failures within about `window_s`, `blocked` says how long to
    wait. A token bucket holding `limit` tokens that refills over `window_s`; each failure takes one token, success
    takes none. Clients whose bucket is full again are forgotten, so memory holds only recent offenders (at most
    `max_clients`; past that the oldest entries go first)."""

    def __init__(self, limit: int, window_s: float, max_clients: int = 10_000) -> None:
        self.capacity = float(limit)
        self.rate = limit / window_s
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _tokens(self, client: str, now: float) -> float:
        tokens, last = self._buckets.get(client, (self.capacity, now))
        return min(self.capacity, tokens + (now - last) * self.rate)

    def blocked(self, client: str) -> float:
        """Seconds until `client` may try again (0.0: it may now)."""
        now = time.monotonic()
        with self._lock:
            if client not in self._buckets:
                return 0.0
            tokens = self._tokens(client, now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens = self._tokens(client, now)
            self._buckets.pop(client, None)  # re-inserted last: the dict stays ordered oldest failure first
            self._buckets[client] = (max(0.0, tokens - 1.0), now)
            if len(self._buckets) > self.max_clients:
                self._prune(now)

    def _prune(self, now: float) -> None:
        for client in [c for c in self._buckets if self._tokens(c, now) >= self.capacity]:
            del self._buckets[client]
        while len(self._buckets) > self.max_clients:
            del self._buckets[next(iter(self._buckets))]
