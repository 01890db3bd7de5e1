"""Load benchmark: the HTTP API and the Slack endpoint on loopback with concurrent keep-alive clients.

Starts the service with uvicorn in a subprocess on a free port on the embedded defaults (its own embedded MongoDB
under a temp data dir, simulated exchange so no network is needed), creates a read-scoped API key, seeds a
conversation, then:

1. read phase: every GET operation in the OpenAPI schema that a read key can call (path parameters it knows how to
   fill, no required query) plus /health, round-robin over `--connections` keep-alive connections, for at most
   `--seconds` or `--requests`;
2. Slack phase: signed `/analyze` slash commands (text without a symbol, so the ack is the whole work) to
   /slack/events, `--slack-connections` connections, at most `--slack-requests`.

The client is a minimal HTTP/1.1 keep-alive client on asyncio streams (uvloop when installed) so that most of the
two cores go to the server. It prints a line per route (requests/s, p50, p99) and one JSON line last:
{"benchmark":"load","read_rps":...,"read_p99_ms":...,"slack_ack_p99_ms":...,"errors":0, ...}

Goal (issue 11): read routes >= 1,500 requests/s with p99 < 50 ms on a 2-core machine, nothing dropped.
The rate limit is raised for the run (RATE_LIMIT_PER_MINUTE) so that it measures throughput, not the limiter.

    .venv/bin/python benchmarks/load.py [--seconds 10] [--connections 32] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIGNING_SECRET = "bench-signing-secret"
SESSION_ID = "bench-session"


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process and its reaped children (Linux /proc); 0 when unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def process_tree(pid: int) -> list[int]:
    out = [pid]
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            out.extend(process_tree(int(child)))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RouteStats:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Conn:
    """One keep-alive HTTP/1.1 connection; requests are sent one at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value.strip())
            elif lname == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self.reader.readexactly(length) if length else b""
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
            self.writer = None


def get_request(path: str, key: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def slack_request(i: int) -> bytes:
    body = urllib.parse.urlencode(
        {"command": "/analyze", "text": "help", "user_id": f"U{i % 50}", "channel_id": "C1", "team_id": "T1",
         "trigger_id": f"{i}.1"}
    )
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    head = (
        "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {sig}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body.encode()


async def drive(port: int, requests: list[tuple[str, bytes]], connections: int, seconds: float, limit: int,
                stats: dict[str, RouteStats], make: Any = None) -> tuple[int, float]:
    """Round-robin `requests` over `connections` until `seconds` or `limit` requests; returns (count, elapsed)."""
    sent = 0
    deadline = time.perf_counter() + seconds

    async def worker(wid: int) -> None:
        nonlocal sent
        conn = Conn(port)
        i = wid
        try:
            while time.perf_counter() < deadline and sent < limit:
                sent += 1
                name, raw = requests[i % len(requests)]
                if make is not None:
                    raw = make(sent)
                i += 1
                started = time.perf_counter()
                try:
                    status, _ = await asyncio.wait_for(conn.request(raw), timeout=10)
                except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError):
                    stats[name].errors += 1
                    await conn.close()
                    continue
                stats[name].latencies_ms.append((time.perf_counter() - started) * 1000)
                stats[name].statuses[status] += 1
                if status >= 300:
                    stats[name].errors += 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(connections)))
    return sent, time.perf_counter() - started


def http_json(url: str, key: str | None = None, timeout: float = 10.0) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def discover_read_routes(base: str, key: str) -> tuple[list[str], dict[str, str]]:
    """GET operations a read key gets 200 from, with path params we can fill; and why others were skipped."""
    _, schema = http_json(f"{base}/openapi.json")
    fills = {"session_id": SESSION_ID, "symbol": "BTC-USDT"}
    query_fills = {"symbol": "BTC/USDT", "symbols": "BTC/USDT,ETH/USDT", "timeframe": "1h"}
    chosen: list[str] = []
    skipped: dict[str, str] = {}
    for path, item in sorted(schema["paths"].items()):
        op = item.get("get")
        if op is None or path in ("/health", "/ready"):
            continue
        params = op.get("parameters", [])
        required_query = [p["name"] for p in params if p.get("required") and p["in"] == "query"]
        if any(name not in query_fills for name in required_query):
            skipped[path] = f"required query parameter(s) {required_query}"
            continue
        concrete = path
        ok = True
        for p in params:
            if p["in"] == "path":
                if p["name"] not in fills:
                    ok = False
                    break
                concrete = concrete.replace("{" + p["name"] + "}", fills[p["name"]])
        if not ok:
            skipped[path] = "unknown path parameter"
            continue
        if required_query:
            concrete += "?" + urllib.parse.urlencode({n: query_fills[n] for n in required_query})
        status, _ = http_json(base + concrete, key)
        if status != 200:
            skipped[path] = f"answers {status} to a read key"
            continue
        chosen.append(concrete)
    return chosen, skipped


def seed(mongo_uri: str, db_name: str) -> str:
    from pymongo import MongoClient

    from agent.api.auth import ApiKeyStore
    from agent.memory import ConversationStore

    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, tz_aware=True)
    db = client[db_name]
    key, _ = ApiKeyStore(db).create("bench", "read")
    ConversationStore(db).append(SESSION_ID, "How is BTC/USDT?", "Fine.", {"mode": "deterministic", "user": "bench"})
    client.close()
    return key


def summarize(title: str, stats: dict[str, RouteStats], elapsed: float) -> None:
    print(f"== {title}", file=sys.stderr)
    for name, st in sorted(stats.items()):
        lat = st.latencies_ms
        if not lat and not st.errors:
            continue
        print(
            f"  {name:40s} {len(lat) / elapsed:8.0f} req/s  p50 {pct(lat, 0.5):6.2f} ms  p99 {pct(lat, 0.99):6.2f} ms"
            f"  errors {st.errors}  statuses {dict(st.statuses)}",
            file=sys.stderr,
        )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from core.embedded_mongo import EmbeddedMongo

    if args.uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from tests.fakes.slack_server import FakeSlack  # answers auth.test (bolt calls it once) and chat.postMessage

    slack_api = FakeSlack("xoxb-bench-token")
    slack_api.start()
    tmp = Path(tempfile.mkdtemp(prefix="cqa-load-"))
    mongo = EmbeddedMongo(tmp / "mongo")
    mongo.start()
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(tmp / "data"),
        "MONGO_URI": mongo.uri,
        "MONGO_DB": "bench",
        "SIMULATED_EXCHANGE": "true",
        "RATE_LIMIT_PER_MINUTE": "100000000",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": "xoxb-bench-token",
        "SLACK_API_URL": slack_api.api_url,
        "LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    env.pop("LLM_API_KEY", None)
    key = seed(mongo.uri, "bench")
    cmd = [sys.executable, "-m", "uvicorn", "agent.app:create_app", "--factory", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(args.workers), "--no-access-log", "--log-level", "warning"]
    server = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: ASYNC220
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                err = server.stderr.read().decode(errors="replace") if server.stderr else ""
                raise RuntimeError(f"server exited with {server.returncode}: {err[-2000:]}")
            with contextlib.suppress(OSError):
                if http_json(f"{base}/health", timeout=2)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer /health within 120 s")
            await asyncio.sleep(0.25)
        routes, skipped = discover_read_routes(base, key)
        for path, why in skipped.items():
            print(f"  skipped GET {path}: {why}", file=sys.stderr)
        if not routes:
            raise RuntimeError("no read route answered 200")
        # warm-up (JIT caches, connection pools, key cache)
        warm: dict[str, RouteStats] = defaultdict(RouteStats)
        await drive(port, [(r, get_request(r, key)) for r in routes], 4, 2.0, 400, warm)

        health: dict[str, RouteStats] = defaultdict(RouteStats)
        _, el_h = await drive(port, [("GET /health", get_request("/health", None))], args.connections,
                                min(3.0, args.seconds), args.requests, health)
        summarize("unauthenticated liveness (not counted in read_rps)", health, el_h)

        if args.routes:
            routes = [r for r in routes if any(f in r for f in args.routes.split(","))]
        read: dict[str, RouteStats] = defaultdict(RouteStats)
        reqs = [(f"GET {r}", get_request(r, key)) for r in routes]
        app_pids = process_tree(server.pid)
        assert mongo.process is not None
        cpu0 = {"app": sum(map(cpu_seconds, app_pids)), "mongo": cpu_seconds(mongo.process.pid),
                "client": time.process_time()}
        spy = None
        if args.profile:
            spy_bin = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            spy_cmd = [spy_bin, "record", "-f", "raw", "--gil", "-o", args.profile, "-r", "100",
                       "-d", str(int(args.seconds)), "-p", str(app_pids[-1])]
            spy = subprocess.Popen(spy_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
        _, el_r = await drive(port, reqs, args.connections, args.seconds, args.requests, read)
        cpu = {"app": sum(map(cpu_seconds, app_pids)) - cpu0["app"],
               "mongo": cpu_seconds(mongo.process.pid) - cpu0["mongo"],
               "client": time.process_time() - cpu0["client"]}
        if spy is not None:
            spy.wait(timeout=args.seconds + 30)
        summarize(f"read routes, {args.connections} connections", read, el_r)
        print("  CPU seconds during the read phase: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
              + f" (wall {el_r:.1f} s, {os.cpu_count()} cores)", file=sys.stderr)

        slack: dict[str, RouteStats] = defaultdict(RouteStats)
        _, el_s = await drive(port, [("POST /slack/events", b"")], args.slack_connections, args.seconds,
                                args.slack_requests, slack, make=slack_request)
        summarize(f"slack acks, {args.slack_connections} connections", slack, el_s)
        alive = server.poll() is None
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        mongo.stop()
        slack_api.stop()

    all_read = [v for st in read.values() for v in st.latencies_ms]
    slack_lat = [v for st in slack.values() for v in st.latencies_ms]
    errors = sum(st.errors for st in (*read.values(), *slack.values()))
    return {
        "benchmark": "load",
        "read_rps": round(len(all_read) / el_r, 1),
        "read_p50_ms": round(pct(all_read, 0.5), 2),
        "read_p99_ms": round(pct(all_read, 0.99), 2),
        "read_requests": len(all_read),
        "read_routes": [r for r in routes],
        "per_route": {
            name: {"rps": round(len(st.latencies_ms) / el_r, 1), "p50_ms": round(pct(st.latencies_ms, 0.5), 2),
                   "p99_ms": round(pct(st.latencies_ms, 0.99), 2)}
            for name, st in read.items()
        },
        "health_rps": round(sum(len(s.latencies_ms) for s in health.values()) / el_h, 1),
        "slack_ack_rps": round(len(slack_lat) / el_s, 1),
        "slack_ack_p50_ms": round(pct(slack_lat, 0.5), 2),
        "slack_ack_p99_ms": round(pct(slack_lat, 0.99), 2),
        "slack_requests": len(slack_lat),
        "errors": errors,
        "server_alive": alive,
        "cpu_share_read_phase": {k: round(v / el_r, 2) for k, v in cpu.items()},
        "connections": args.connections,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "goal": {"read_rps": 1500, "read_p99_ms": 50},
        "goal_met": len(all_read) / el_r >= 1500 and pct(all_read, 0.99) < 50 and errors == 0,
        "mean_ms": round(statistics.fmean(all_read), 2) if all_read else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="max seconds per phase")
    parser.add_argument("--requests", type=int, default=60_000, help="max requests in the read phase")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections (reads)")
    parser.add_argument("--slack-requests", type=int, default=3_000)
    parser.add_argument("--slack-connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    parser.add_argument("--routes", default="", help="comma-separated substrings: only read routes matching")
    parser.add_argument("--profile", default="", help="py-spy raw (collapsed) profile of the server to this file")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result))
    return 0 if result["server_alive"] else 1


if __name__ == "__main__":
    sys.exit(main())
