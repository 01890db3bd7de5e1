"""Normalised market events per second through the in-process bus and through Redis Streams.

    .venv/bin/python benchmarks/events.py [--events 2000000] [--redis-events 1000000] [--redis-url URL]

Events are normalised ticker events (trading.market_data.events.ticker_event). Phases:
- normalise: Ticker -> Event, single thread;
- inproc: InProcessBus.publish_many in batches of 10,000 to one consumer group, drained in batches (end to end);
- redis: RedisStreamsBus.publish_many (100 events per stream entry, MessagePack, pipelined) from this process while
  `--consumers` worker processes (default 1) of one consumer group read entries, decode them into Events and
  acknowledge them (the deployment shape); the rate is events published, delivered, decoded and acknowledged per
  second, from the first publish to the last acknowledgement (end to end).
Redis: REDIS_URL, else 127.0.0.1:6379, else a redis-server from PATH on a free port; if none, redis_per_s is null
with a note. Goals: inproc >= 1,000,000/s, redis >= 200,000/s. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.events import Event, InProcessBus
from trading.market_data.events import TOPIC_TICKER, ticker_event
from trading.types import Ticker

BATCH = 10_000


def make_events(n: int) -> list[Event]:
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"]
    return [ticker_event(Ticker("binance", symbols[i % 4], 1_700_000_000_000 + i, 100.0 + i * 1e-4,
                                100.01 + i * 1e-4, 100.005 + i * 1e-4, change_pct_24h=1.5,
                                base_volume_24h=1234.5)) for i in range(n)]


def bench_normalise(n: int) -> float:
    t0 = time.perf_counter()
    make_events(n)
    return n / (time.perf_counter() - t0)


async def bench_inproc(events: list[Event]) -> float:
    bus = InProcessBus()
    bus.register(TOPIC_TICKER, "bench")
    received = 0
    t0 = time.perf_counter()
    for start in range(0, len(events), BATCH):
        await bus.publish_many(events[start:start + BATCH])
        received += len(bus.drain(TOPIC_TICKER, "bench", BATCH))
    elapsed = time.perf_counter() - t0
    assert received == len(events), (received, len(events))
    return len(events) / elapsed


def _redis_alive(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        ok = bool(client.ping())
        client.close()
        return ok
    except Exception:
        return False


def find_redis(url: str | None) -> tuple[str | None, subprocess.Popen[bytes] | None, str]:
    for candidate in (url, os.environ.get("REDIS_URL"), "redis://127.0.0.1:6379/0"):
        if candidate and _redis_alive(candidate):
            return candidate, None, "existing server"
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None, "no Redis at REDIS_URL or 127.0.0.1:6379 and no redis-server on PATH"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", tempfile.mkdtemp()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _redis_alive(started):
        if time.monotonic() > deadline:
            proc.kill()
            return None, None, "redis-server did not start"
        time.sleep(0.05)
    return started, proc, "redis-server started for the benchmark"


def _consumer_process(url: str, prefix: str, name: str, n_total: int, out: Any) -> None:
    """A worker process of the consumer group: read entries, decode into Events, acknowledge."""
    from core.events_redis import RedisStreamsBus

    async def run() -> tuple[int, float]:
        bus = RedisStreamsBus(url, prefix=prefix, block_ms=100)
        got = 0
        idle = 0
        while idle < 20:  # stop after 2 s without entries
            entries = await bus.read_entries(TOPIC_TICKER, "bench", name, count=20)
            if not entries:
                idle += 1
                continue
            idle = 0
            got += sum(len(events) for _, events in entries)
            await bus.ack_entries(TOPIC_TICKER, "bench", [entry_id for entry_id, _ in entries])
            last = time.time()
            if got >= n_total:
                break
        await bus.close()
        return got, last

    out.put(asyncio.run(run()))


async def _publish(url: str, prefix: str, events: list[Event]) -> tuple[float, float]:
    from core.events_redis import RedisStreamsBus

    producer = RedisStreamsBus(url, prefix=prefix, pack_size=100, maxlen=None)
    t0 = time.time()
    for start in range(0, len(events), BATCH):
        await producer.publish_many(events[start:start + BATCH])
    t1 = time.time()
    await producer.close()
    return t0, t1


def bench_redis(url: str, events: list[Event], consumers: int) -> dict[str, float]:
    """Producer in this process, `consumers` worker processes sharing one group (the deployment shape)."""
    import multiprocessing as mp

    from core.events_redis import RedisStreamsBus

    prefix = f"bench:{os.getpid()}:"

    async def setup() -> None:
        admin = RedisStreamsBus(url, prefix=prefix)
        await admin.ensure_group(TOPIC_TICKER, "bench", start_id="$")
        await admin.close()

    asyncio.run(setup())
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_consumer_process, args=(url, prefix, f"c{i}", len(events), queue))
             for i in range(consumers)]
    for p in procs:
        p.start()
    time.sleep(1.5)  # let the workers import and block on XREADGROUP
    t0, t1 = asyncio.run(_publish(url, prefix, events))
    results = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(30)
    consumed = sum(r[0] for r in results)
    finished = max(r[1] for r in results)

    async def teardown() -> int:
        admin = RedisStreamsBus(url, prefix=prefix)
        pending = await admin.pending_count(TOPIC_TICKER, "bench")
        await admin.delete_topic(TOPIC_TICKER)
        await admin.close()
        return pending

    pending = asyncio.run(teardown())
    assert consumed == len(events) and pending == 0, (consumed, len(events), pending)
    return {"publish_per_s": len(events) / (t1 - t0), "end_to_end_per_s": len(events) / (finished - t0)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--redis-events", type=int, default=1_000_000)
    ap.add_argument("--redis-url", default=None)
    ap.add_argument("--consumers", type=int, default=1, help="consumer worker processes sharing one group")
    args = ap.parse_args()

    normalise = bench_normalise(200_000)
    events = make_events(args.events)
    inproc = max(asyncio.run(bench_inproc(events)) for _ in range(3))
    print(f"normalise: {normalise:,.0f} events/s; in-process bus: {inproc:,.0f} events/s", file=sys.stderr)

    url, proc, how = find_redis(args.redis_url)
    result: dict[str, Any] = {"benchmark": "events"}
    redis_stats: dict[str, float] | None = None
    try:
        if url is not None:
            redis_stats = bench_redis(url, events[: args.redis_events], args.consumers)
            print(f"redis ({how}): publish {redis_stats['publish_per_s']:,.0f}/s, end to end "
                  f"{redis_stats['end_to_end_per_s']:,.0f}/s", file=sys.stderr)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(5)
    result.update({
        "inproc_per_s": round(inproc),
        "redis_per_s": round(redis_stats["end_to_end_per_s"]) if redis_stats else None,
        "redis_publish_per_s": round(redis_stats["publish_per_s"]) if redis_stats else None,
        "normalise_per_s": round(normalise),
        "events": args.events, "redis_events": args.redis_events if redis_stats else 0,
        "redis_consumers": args.consumers,
        "goal_inproc_per_s": 1_000_000, "goal_redis_per_s": 200_000,
        "inproc_ok": inproc >= 1_000_000,
        "redis_ok": bool(redis_stats and redis_stats["end_to_end_per_s"] >= 200_000),
        "redis": how, "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),  # other work on the machine slows every figure
    })
    if redis_stats is None:
        result["note"] = f"redis skipped: {how}"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
