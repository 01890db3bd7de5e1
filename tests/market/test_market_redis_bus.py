"""Redis Streams bus: two consumers share one group; a killed consumer's pending events go to the other."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from core.events import Event
from core.events_redis import RedisStreamsBus

pytestmark = pytest.mark.redis


@pytest.fixture()
async def prefix(redis_url: str) -> AsyncIterator[str]:
    p = f"test:{uuid.uuid4().hex[:8]}:"
    yield p
    cleanup = RedisStreamsBus(redis_url, prefix=p)
    keys = [k async for k in cleanup.redis.scan_iter(match=f"{p}*")]
    if keys:
        await cleanup.redis.delete(*keys)
    await cleanup.close()


def _events(n: int, topic: str = "market.ticker") -> list[Event]:
    return [Event(topic=topic, payload={"i": i, "last": 100.0 + i}, key="binance:BTC/USDT", id=f"ev-{i}")
            for i in range(n)]


async def test_two_consumers_share_one_group(redis_url: str, prefix: str) -> None:
    producer = RedisStreamsBus(redis_url, prefix=prefix, pack_size=10)
    worker_a = RedisStreamsBus(redis_url, prefix=prefix, block_ms=50, read_count=3)
    worker_b = RedisStreamsBus(redis_url, prefix=prefix, block_ms=50, read_count=3)
    other_group = RedisStreamsBus(redis_url, prefix=prefix, block_ms=50)
    try:
        await worker_a.ensure_group("market.ticker", "workers")
        await other_group.ensure_group("market.ticker", "audit")
        assert await producer.publish_many(_events(200)) == 200
        seen: dict[str, list[int]] = {"a": [], "b": []}

        async def work(name: str, bus: RedisStreamsBus) -> None:
            while True:
                batch = await bus.read_batch("market.ticker", "workers", name)
                if not batch:
                    return
                seen[name].extend(d.event.payload["i"] for d in batch)
                await bus.ack_many("market.ticker", "workers", [d.event.id for d in batch])
                await asyncio.sleep(0)  # let the other worker take its turn

        await asyncio.gather(work("a", worker_a), work("b", worker_b))
        assert seen["a"] and seen["b"], "both consumers must get work"
        assert not set(seen["a"]) & set(seen["b"]), "a group delivers each event to one consumer"
        assert sorted(seen["a"] + seen["b"]) == list(range(200))
        assert await producer.pending_count("market.ticker", "workers") == 0
        # another group gets its own full copy
        audit = await other_group.read_batch("market.ticker", "audit", "x", count=1000)
        assert sorted(d.event.payload["i"] for d in audit) == list(range(200))
    finally:
        for bus in (producer, worker_a, worker_b, other_group):
            await bus.close()


async def test_killed_consumer_pending_events_are_claimed(redis_url: str, prefix: str) -> None:
    producer = RedisStreamsBus(redis_url, prefix=prefix, pack_size=1)
    doomed = RedisStreamsBus(redis_url, prefix=prefix, block_ms=50, read_count=5)
    survivor = RedisStreamsBus(redis_url, prefix=prefix, block_ms=50, claim_idle_ms=100)
    try:
        await doomed.ensure_group("orders.fill", "oms")
        for e in _events(10, topic="orders.fill"):
            await producer.publish(e)
        taken = await doomed.read_batch("orders.fill", "oms", "doomed")
        assert len(taken) == 5
        await doomed.ack("orders.fill", "oms", taken[0].event.id)  # handled one, then died
        await doomed.close()
        assert await producer.pending_count("orders.fill", "oms") == 4
        # not idle long enough yet: nothing to claim
        assert await survivor.claim_stale("orders.fill", "oms", "survivor", min_idle_ms=60_000) == []
        await asyncio.sleep(0.15)
        got: list[int] = []
        stream = survivor.subscribe("orders.fill", "oms", "survivor")
        async for event in stream:
            got.append(event.payload["i"])
            await survivor.ack("orders.fill", "oms", event.id)
            if len(got) == 9:
                break
        await stream.aclose()
        assert sorted(got) == list(range(1, 10)), "the 4 orphaned events plus the 5 unread, none lost, none twice"
        assert await producer.pending_count("orders.fill", "oms") == 0
    finally:
        await producer.close()
        await survivor.close()


async def test_packed_entry_acked_only_when_all_events_are(redis_url: str, prefix: str) -> None:
    bus = RedisStreamsBus(redis_url, prefix=prefix, pack_size=4, block_ms=50)
    try:
        await bus.ensure_group("t", "g")
        await bus.publish_many(_events(4, topic="t"))
        batch = await bus.read_batch("t", "g", "c")
        assert len(batch) == 4 and len({d.entry_id for d in batch}) == 1
        assert await bus.ack_many("t", "g", [d.event.id for d in batch[:3]]) == 0
        assert await bus.pending_count("t", "g") == 1
        assert await bus.ack_many("t", "g", [batch[3].event.id]) == 1
        assert await bus.pending_count("t", "g") == 0
    finally:
        await bus.close()


async def test_read_entries_fast_path(redis_url: str, prefix: str) -> None:
    bus = RedisStreamsBus(redis_url, prefix=prefix, pack_size=50, block_ms=50)
    try:
        await bus.ensure_group("t", "g")
        await bus.publish_many(_events(120, topic="t"))
        entries = await bus.read_entries("t", "g", "c", count=10)
        assert [len(events) for _, events in entries] == [50, 50, 20]
        assert [e.payload["i"] for _, events in entries for e in events] == list(range(120))
        assert entries[0][1][0].key == "binance:BTC/USDT" and entries[0][1][0].id == "ev-0"
        assert await bus.pending_count("t", "g") == 3
        await bus.ack_entries("t", "g", [entry_id for entry_id, _ in entries])
        assert await bus.pending_count("t", "g") == 0
    finally:
        await bus.close()
