"""The service SIGKILLed while an order is in flight to the venue, then restarted: reconciliation by client order id
must settle it from the exchange's record, with no duplicate order and no lost or doubled fill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from core.embedded_mongo import EmbeddedMongo
from tests.fakes.binance_server import FakeBinance

ROOT = Path(__file__).resolve().parents[2]


def _env(mongo: EmbeddedMongo, fake: FakeBinance, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "SLACK_"))}
    env.update({
        "MONGO_URI": mongo.uri, "MONGO_DB": "killtest", "DATA_DIR": str(data), "EXCHANGE_ID": "binance",
        "EXCHANGES": "binance", "EXCHANGE_API_URL": fake.url, "LIVE_TRADING": "true",
        "EXCHANGE_API_KEY": "kill-test-key", "EXCHANGE_SECRET": "kill-test-secret", "SIMULATED_EXCHANGE": "false",
        "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
    })
    return env


@pytest.mark.fault
def test_sigkill_during_order_submission_then_reconcile(tmp_path: Path) -> None:
    """Fault: the process is SIGKILLed while its order request is in flight (the venue executes it after the kill),
    then a new process starts. Must hold: after restart the order is settled from the venue by client order id
    (filled), exactly one venue order exists for it (never re-sent), its fill is recorded exactly once, and
    repeated reconciliation changes nothing."""
    pytest.importorskip("trading.oms.factory")
    mongo = EmbeddedMongo(tmp_path / "mongo")
    mongo.start()
    try:
        with FakeBinance() as fake:
            fake.set_price("BTC/USDT", 65_000.0)
            fake.delay("/api/v3/order", 4.0)  # the send hangs; the fake executes the order after the delay
            env = _env(mongo, fake, tmp_path / "data")
            worker = subprocess.Popen([sys.executable, "-m", "tests.reliability.oms_worker", "submit"], cwd=ROOT,
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 90
            while fake.count("POST", "/api/v3/order") == 0:
                if worker.poll() is not None or time.monotonic() > deadline:
                    out, err = worker.communicate(timeout=5) if worker.poll() is not None else ("", "")
                    pytest.fail(f"the worker never sent its order (rc {worker.returncode}): {out[-500:]} {err[-1500:]}")
                time.sleep(0.05)
            worker.kill()  # SIGKILL while the POST is in flight
            worker.wait(timeout=10)
            assert worker.returncode == -9
            while len(fake.orders) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)  # the venue finishes executing the order it received
            assert len(fake.orders) == 1
            venue_order = next(iter(fake.orders.values()))
            recover = subprocess.run([sys.executable, "-m", "tests.reliability.oms_worker", "recover"], cwd=ROOT,
                                     env=env, capture_output=True, text=True, timeout=120)
            assert recover.returncode == 0, recover.stderr[-2000:]
            state: dict[str, Any] = json.loads(recover.stdout.strip().splitlines()[-1])
            posts = fake.count("POST", "/api/v3/order")
    finally:
        mongo.stop()
    assert posts == 1, f"the order was sent {posts} times"
    assert len(state["orders"]) == 1 and len(state["children"]) == 1, state
    child = state["children"][0]
    assert venue_order["clientOrderId"] == child["_id"], (venue_order, child)
    assert child["state"] == "filled" and abs(child["filled"] - 0.01) < 1e-12, child
    assert state["orders"][0]["state"] == "filled", state["orders"]
    assert len(state["fills"]) >= 1
    assert abs(sum(f["qty"] for f in state["fills"]) - 0.01) < 1e-12, state["fills"]
    trade_ids = [f["trade_id"] for f in state["fills"]]
    assert len(trade_ids) == len(set(trade_ids)), f"a fill was recorded twice: {state['fills']}"
