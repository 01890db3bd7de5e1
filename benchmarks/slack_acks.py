"""Slack burst benchmark: N signed slash commands at once to /slack/events; how fast each is acknowledged and how
long until every command's background work has reached the (fake) Slack Web API.

In-process (FastAPI TestClient, like the tests) on the embedded MongoDB under a temp data dir, the fake Binance
and fake Slack servers from tests/fakes, and a paper trading service. The mix: `/risk` and `/positions` (background
work through the trading service, progress message edited in place), `/briefing list` (answered in the ack) and a
`/trade` with bad input (ephemeral usage in the ack). Slack's deadline for an ack is 3 s.

    .venv/bin/python benchmarks/slack_acks.py [--commands 50] [--rounds 3]

Prints one JSON line last: {"benchmark":"slack_acks","commands":50,"ack_p50_ms":...,"ack_p95_ms":...,
"ack_max_ms":...,"all_acked":true,"background_all_done_s":...}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from core import settings as settings_mod
    from core import storage
    from tests.agent.conftest import BOT_TOKEN, SIGNING_SECRET, slack_headers
    from tests.fakes.binance_server import FakeBinance
    from tests.fakes.slack_server import FakeSlack
    from tests.slack.conftest import build_service
    from trading.oms import factory

    tmp = tempfile.mkdtemp(prefix="slack-bench-")
    os.environ.update({"DATA_DIR": tmp, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                       "EXCHANGE_ID": "binance", "RATE_LIMIT_PER_MINUTE": "100000"})
    os.environ.pop("MONGO_URI", None)
    os.environ.pop("LLM_API_KEY", None)
    acks: list[float] = []
    background: list[float] = []
    failures = 0
    with FakeBinance() as exchange, FakeSlack(BOT_TOKEN) as slack:
        os.environ["EXCHANGE_API_URL"] = exchange.url
        os.environ["SLACK_API_URL"] = slack.api_url
        settings_mod.reset_settings()
        from agent.app import create_app

        app = create_app(settings_mod.get_settings())
        with TestClient(app) as client:
            svc = build_service(app.state.db)
            factory.set_trading_service(svc)
            app.state.trading = svc
            mix = [("/risk", ""), ("/positions", ""), ("/briefing", "list"), ("/trade", "buy lots")]

            def one(i: int) -> tuple[int, float]:
                name, text = mix[i % len(mix)]
                body = urllib.parse.urlencode({
                    "command": name, "text": text, "user_id": f"U{i:04d}", "channel_id": "C1", "team_id": "T1",
                    "response_url": f"{slack.api_url}response", "trigger_id": uuid.uuid4().hex})
                started = time.perf_counter()
                resp = client.post("/slack/events", content=body, headers=slack_headers(body))
                return resp.status_code, time.perf_counter() - started

            one(0)  # warm-up (bolt's auth.test, first imports)
            slack.wait_for("chat.update", 1, timeout=30)
            for _ in range(args.rounds):
                before = len(slack.calls_of("chat.update"))
                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=args.commands) as pool:
                    results = list(pool.map(one, range(args.commands)))
                failures += sum(1 for status, _ in results if status != 200)
                acks.extend(seconds for _, seconds in results)
                expected = sum(1 for i in range(args.commands) if mix[i % len(mix)][0] in ("/risk", "/positions"))
                slack.wait_for("chat.update", before + expected, timeout=120)
                background.append(time.perf_counter() - started)
        factory.set_trading_service(None)
    storage.close()
    ms = sorted(a * 1000 for a in acks)
    out = {
        "benchmark": "slack_acks",
        "commands": args.commands,
        "rounds": args.rounds,
        "ack_p50_ms": round(statistics.median(ms), 1),
        "ack_p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
        "ack_max_ms": round(ms[-1], 1),
        "all_acked": failures == 0,
        "within_3s": all(a < 3.0 for a in acks),
        "background_all_done_s": round(max(background), 2),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(out))
    return 0 if out["all_acked"] and out["within_3s"] else 1


if __name__ == "__main__":
    sys.exit(main())
