"""Event bus interface and the in-process asyncio implementation.

Delivery is at-least-once: consumers must be idempotent (events carry a stable `id`). The Redis Streams bus in
`core.events_redis` implements the same protocol for deployments with several workers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Event:
    topic: str
    payload: dict[str, Any]
    key: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


class EventBus(Protocol):
    async def publish(self, event: Event) -> None: ...

    async def publish_many(self, events: Iterable[Event]) -> int: ...

    def subscribe(self, topic: str, group: str, consumer: str) -> AsyncIterator[Event]: ...

    async def ack(self, topic: str, group: str, event_id: str) -> None: ...

    async def close(self) -> None: ...


class InProcessBus:
    """Fan-out to consumer groups inside one process; each group gets every event once, shared by its consumers."""

    def __init__(self, maxsize: int = 0) -> None:
        self._maxsize = maxsize
        self._groups: dict[str, dict[str, asyncio.Queue[Event]]] = defaultdict(dict)

    def _queue(self, topic: str, group: str) -> asyncio.Queue[Event]:
        groups = self._groups[topic]
        if group not in groups:
            groups[group] = asyncio.Queue(self._maxsize)
        return groups[group]

    async def publish(self, event: Event) -> None:
        for queue in self._groups.get(event.topic, {}).values():
            await queue.put(event)

    async def publish_many(self, events: Iterable[Event]) -> int:
        count = 0
        groups = self._groups
        for event in events:
            for queue in groups.get(event.topic, {}).values():
                if self._maxsize:
                    await queue.put(event)
                else:
                    queue.put_nowait(event)
            count += 1
        return count

    def register(self, topic: str, group: str) -> None:
        """Create the group before publishing so that no event is missed."""
        self._queue(topic, group)

    async def subscribe(self, topic: str, group: str, consumer: str) -> AsyncIterator[Event]:
        queue = self._queue(topic, group)
        while True:
            yield await queue.get()

    def drain(self, topic: str, group: str, limit: int = 1_000_000) -> list[Event]:
        """Take up to `limit` queued events without waiting (batched consumers)."""
        queue = self._queue(topic, group)
        out: list[Event] = []
        while len(out) < limit and not queue.empty():
            out.append(queue.get_nowait())
        return out

    async def ack(self, topic: str, group: str, event_id: str) -> None:
        # In-process delivery is complete once a consumer has taken the event; nothing to acknowledge.
        return None

    async def close(self) -> None:
        self._groups.clear()
