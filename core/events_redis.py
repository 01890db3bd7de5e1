"""Redis Streams event bus: the EventBus protocol across processes and machines.

- One stream per topic (`{prefix}{topic}`), trimmed approximately to `maxlen`.
- Consumer groups: every group sees every event; the consumers of a group share the work (scale-out).
- At-least-once: an entry stays pending until acknowledged; entries left pending by a dead consumer for longer than
  `claim_idle_ms` are taken over by a live one with XAUTOCLAIM. Consumers must be idempotent (events keep their id).
- Throughput: `publish_many` packs up to `pack_size` events into one stream entry (one XADD, one XACK); `publish`
  writes one event per entry. Consumers see single events either way; an entry is acknowledged when all of its
  events are.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import ormsgpack
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from core.events import Event

_FIELD = b"e"


def _encode(events: list[Event]) -> bytes:
    """MessagePack of [[id, key, payload], ...] (decodes about a third faster than JSON for ticker payloads)."""
    return ormsgpack.packb([[e.id, e.key, e.payload] for e in events])


def _decode(topic: str, blob: bytes) -> list[Event]:
    return [Event(topic, p, k, i) for i, k, p in ormsgpack.unpackb(blob)]


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event with the stream entry that carried it (for batched consumers that ack entries themselves)."""

    event: Event
    entry_id: str


class RedisStreamsBus:
    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        prefix: str = "events:",
        maxlen: int | None = 1_000_000,
        pack_size: int = 100,
        block_ms: int = 1_000,
        read_count: int = 100,
        claim_idle_ms: int = 30_000,
    ) -> None:
        if client is None:
            client = aioredis.Redis.from_url(url or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
        self.redis = client
        self.prefix = prefix
        self.maxlen = maxlen
        self.pack_size = max(1, pack_size)
        self.block_ms = block_ms
        self.read_count = read_count
        self.claim_idle_ms = claim_idle_ms
        self._groups: set[tuple[str, str]] = set()
        # (topic, group) -> entry id -> events of that entry not yet acknowledged
        self._unacked: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(dict)
        # (topic, group) -> event id -> entry id
        self._entry_of: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)

    def stream(self, topic: str) -> str:
        return f"{self.prefix}{topic}"

    # ------------------------------------------------------------------ publishing
    async def publish(self, event: Event) -> None:
        await self.redis.xadd(self.stream(event.topic), {_FIELD: _encode([event])}, maxlen=self.maxlen,
                              approximate=True)

    async def publish_many(self, events: Iterable[Event]) -> int:
        by_topic: dict[str, list[Event]] = defaultdict(list)
        count = 0
        for event in events:
            by_topic[event.topic].append(event)
            count += 1
        pipe = self.redis.pipeline(transaction=False)
        queued = 0
        for topic, items in by_topic.items():
            stream = self.stream(topic)
            for start in range(0, len(items), self.pack_size):
                pipe.xadd(stream, {_FIELD: _encode(items[start:start + self.pack_size])}, maxlen=self.maxlen,
                          approximate=True)
                queued += 1
                if queued >= 1_000:
                    await pipe.execute()
                    pipe = self.redis.pipeline(transaction=False)
                    queued = 0
        if queued:
            await pipe.execute()
        return count

    # ------------------------------------------------------------------ groups
    async def ensure_group(self, topic: str, group: str, start_id: str = "0") -> None:
        """Create the group (and the stream) if needed. `start_id='0'`: the group sees the stream's backlog."""
        if (topic, group) in self._groups:
            return
        try:
            await self.redis.xgroup_create(self.stream(topic), group, id=start_id, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add((topic, group))

    def register(self, topic: str, group: str) -> None:
        """Sync twin of InProcessBus.register is not possible over the network: call `ensure_group` instead."""
        raise TypeError("RedisStreamsBus.register: use `await bus.ensure_group(topic, group)`")

    def _track(self, topic: str, group: str, entry_id: str, events: list[Event]) -> None:
        key = (topic, group)
        self._unacked[key][entry_id] = {e.id for e in events}
        entry_of = self._entry_of[key]
        for e in events:
            entry_of[e.id] = entry_id

    def _unpack(self, topic: str, group: str, entries: list[Any]) -> list[Delivery]:
        out: list[Delivery] = []
        for entry_id, fields in entries:
            if fields is None:  # deleted (trimmed) while pending: nothing to deliver, ack it away
                continue
            eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            events = _decode(topic, fields[_FIELD])
            self._track(topic, group, eid, events)
            out.extend(Delivery(e, eid) for e in events)
        return out

    async def _xread(self, topic: str, group: str, consumer: str, count: int | None, block_ms: int | None,
                     pending: bool) -> list[Any]:
        await self.ensure_group(topic, group)
        for attempt in (1, 2):
            try:
                reply = await self.redis.xreadgroup(
                    group, consumer, {self.stream(topic): "0" if pending else ">"},
                    count=count or self.read_count,
                    block=None if pending else (block_ms if block_ms is not None else self.block_ms),
                )
                return reply[0][1] if reply else []
            except ResponseError as exc:
                # Redis came back without our stream or group (restart without persistence): create them again
                # once, instead of answering NOGROUP until the process restarts.
                if "NOGROUP" not in str(exc) or attempt == 2:
                    raise
                self._groups.discard((topic, group))
                await self.ensure_group(topic, group)
        return []

    async def read_batch(self, topic: str, group: str, consumer: str, *, count: int | None = None,
                         block_ms: int | None = None, pending: bool = False) -> list[Delivery]:
        """One XREADGROUP: new entries (`pending=False`) or this consumer's own unacknowledged ones (`True`).

        `count` counts stream entries (each holds up to `pack_size` events). Ack with `ack`/`ack_many` per event
        or `ack_entries` per entry.
        """
        return self._unpack(topic, group, await self._xread(topic, group, consumer, count, block_ms, pending))

    async def read_entries(self, topic: str, group: str, consumer: str, *, count: int | None = None,
                           block_ms: int | None = None, pending: bool = False) -> list[tuple[str, list[Event]]]:
        """The fast path for batch consumers: (entry id, events) pairs, no per-event bookkeeping; acknowledge with
        `ack_entries` once the whole entry is handled."""
        out: list[tuple[str, list[Event]]] = []
        for entry_id, fields in await self._xread(topic, group, consumer, count, block_ms, pending):
            if fields is not None:
                eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                out.append((eid, _decode(topic, fields[_FIELD])))
        return out

    async def claim_stale(self, topic: str, group: str, consumer: str, *, min_idle_ms: int | None = None,
                          count: int = 100) -> list[Delivery]:
        """Take over entries another consumer left pending for longer than `min_idle_ms` (it died)."""
        await self.ensure_group(topic, group)
        out: list[Delivery] = []
        cursor: Any = "0-0"
        while True:
            reply = await self.redis.xautoclaim(self.stream(topic), group, consumer,
                                                min_idle_time=self.claim_idle_ms if min_idle_ms is None
                                                else min_idle_ms, start_id=cursor, count=count)
            cursor, entries = reply[0], reply[1]
            deleted = reply[2] if len(reply) > 2 else []
            if deleted:
                await self.redis.xack(self.stream(topic), group, *deleted)
            out.extend(self._unpack(topic, group, entries))
            if cursor in (b"0-0", "0-0") or not entries:
                return out

    async def subscribe(self, topic: str, group: str, consumer: str) -> AsyncIterator[Event]:
        """Yield events for this consumer: its own pending ones first (restart), stale ones of dead peers, then new.

        Acknowledge each event with `ack(topic, group, event.id)` once handled.
        """
        await self.ensure_group(topic, group)
        for d in await self.read_batch(topic, group, consumer, pending=True, count=10_000):
            yield d.event
        loop = asyncio.get_running_loop()
        next_claim = 0.0
        while True:
            if loop.time() >= next_claim:
                next_claim = loop.time() + max(self.claim_idle_ms / 2000, 0.05)
                for d in await self.claim_stale(topic, group, consumer):
                    yield d.event
            for d in await self.read_batch(topic, group, consumer):
                yield d.event

    # ------------------------------------------------------------------ acknowledgement
    async def ack(self, topic: str, group: str, event_id: str) -> None:
        await self.ack_many(topic, group, [event_id])

    async def ack_many(self, topic: str, group: str, event_ids: Iterable[str]) -> int:
        """Acknowledge events; returns how many stream entries became fully acknowledged (XACKed)."""
        key = (topic, group)
        entry_of = self._entry_of[key]
        unacked = self._unacked[key]
        done: list[str] = []
        for event_id in event_ids:
            entry = entry_of.pop(event_id, None)
            if entry is None:
                continue
            remaining = unacked.get(entry)
            if remaining is None:
                continue
            remaining.discard(event_id)
            if not remaining:
                del unacked[entry]
                done.append(entry)
        if done:
            await self.ack_entries(topic, group, done)
        return len(done)

    async def ack_entries(self, topic: str, group: str, entry_ids: list[str]) -> None:
        """XACK whole entries (batched consumers); forgets their per-event bookkeeping."""
        key = (topic, group)
        unacked = self._unacked.get(key)
        if unacked:
            entry_of = self._entry_of[key]
            for entry in entry_ids:
                for event_id in unacked.pop(entry, ()):
                    entry_of.pop(event_id, None)
        for start in range(0, len(entry_ids), 10_000):
            await self.redis.xack(self.stream(topic), group, *entry_ids[start:start + 10_000])

    async def pending_count(self, topic: str, group: str) -> int:
        info = await self.redis.xpending(self.stream(topic), group)
        return int(info["pending"] if isinstance(info, dict) else info[0])

    async def delete_topic(self, topic: str) -> None:
        await self.redis.delete(self.stream(topic))
        self._groups = {g for g in self._groups if g[0] != topic}

    async def close(self) -> None:
        await self.redis.aclose()


def from_settings(redis_url: str | None = None, **kwargs: Any) -> RedisStreamsBus:
    """A bus for `redis_url` (or settings.redis_url, or REDIS_URL)."""
    if redis_url is None:
        from core.settings import get_settings

        redis_url = get_settings().redis_url
    return RedisStreamsBus(redis_url, **kwargs)
