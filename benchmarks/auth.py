"""A good key's latency while another address sends invalid API keys, with and without the failed-key throttle.

The server is `agent.app.create_app` under uvicorn in a child process, on the embedded MongoDB (nx-27017), as
`crypto-agent serve` runs it. A client on 127.0.0.1 sends `GET /v1/conversations/none` (a verified key, a 404 after
the revocation-counter read and one conversation query) one request at a time; an attacker on 127.0.0.2 sends
well-formed keys with wrong secrets at AUTH_BENCH_BAD_RPS (default 43/s, the rate that raised a good request from 3 to
14 ms before the throttle) from AUTH_BENCH_ATTACKERS threads.

Three phases of AUTH_BENCH_SECONDS each: no attack; attack with the throttle lifted (AUTH_FAILURE_LIMIT=10^9: every bad
key costs an argon2 check, the behaviour before; the anchor); attack with the default throttle (20 failures per 60 s
per address). Prints one JSON line last: good-key p50/p99/max per phase and the attacker's status counts.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

SECONDS = float(os.environ.get("AUTH_BENCH_SECONDS", "6"))
BAD_RPS = float(os.environ.get("AUTH_BENCH_BAD_RPS", "43"))
ATTACKERS = int(os.environ.get("AUTH_BENCH_ATTACKERS", "4"))
BAD_KEY = "cqa_0123456789ab_" + "A" * 32

SERVER = """
import sys, uvicorn
from agent.app import create_app
from core.settings import get_settings
uvicorn.run(create_app(get_settings()), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def _phase(url: str, key: str, attack: bool) -> dict[str, Any]:
    stop = threading.Event()
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def attacker() -> None:
        interval = ATTACKERS / BAD_RPS
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(transport=transport, timeout=10) as client:
            next_at = time.monotonic()
            while not stop.is_set():
                try:
                    code = str(client.get(f"{url}/v1/conversations/none",
                                          headers={"Authorization": f"Bearer {BAD_KEY}"}).status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                with lock:
                    statuses[code] = statuses.get(code, 0) + 1
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(ATTACKERS if attack else 0)]
    for t in threads:
        t.start()
    lat: list[float] = []
    with httpx.Client(timeout=10) as client:
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(20):
            client.get(f"{url}/v1/conversations/none", headers=headers)
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            t0 = time.perf_counter()
            code = client.get(f"{url}/v1/conversations/none", headers=headers).status_code
            lat.append((time.perf_counter() - t0) * 1000)
            assert code == 404, code
            time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join(15)
    lat.sort()
    return {
        "good_p50_ms": round(statistics.median(lat), 2),
        "good_p99_ms": round(lat[int(len(lat) * 0.99) - 1], 2),
        "good_max_ms": round(lat[-1], 2),
        "good_n": len(lat),
        "attacker_statuses": statuses,
    }


def main() -> None:
    from pymongo import MongoClient

    from agent.api.auth import ApiKeyStore
    from core.embedded_mongo import EmbeddedMongo

    with tempfile.TemporaryDirectory() as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "mongo")
        mongo.start()
        try:
            base = {**os.environ, "MONGO_URI": mongo.uri, "MONGO_DB": "bench_auth", "DATA_DIR": str(Path(tmp) / "d"),
                    "RATE_LIMIT_PER_MINUTE": "1000000", "SCHEDULER_ENABLED": "false", "LLM_API_KEY": ""}
            client: MongoClient[dict[str, Any]] = MongoClient(mongo.uri)
            key, _ = ApiKeyStore(client["bench_auth"]).create("bench", "read")
            results: dict[str, Any] = {}
            for name, limit, attack in (("no_attack", "20", False), ("attack_no_throttle", str(10**9), True),
                                        ("attack_throttled", "20", True)):
                proc, url = _serve({**base, "AUTH_FAILURE_LIMIT": limit, "AUTH_FAILURE_WINDOW_S": "60"})
                try:
                    results[name] = _phase(url, key, attack)
                finally:
                    proc.terminate()
                    proc.wait(30)
                print(name, results[name], file=sys.stderr)
            client.close()
        finally:
            mongo.stop()
    print(json.dumps({"bench": "auth", "bad_rps": BAD_RPS, "seconds": SECONDS, **results}))


if __name__ == "__main__":
    main()
