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
    assert_fills_recorded_once(state["fills"], {c["_id"]: c["filled"] for c in state["children"]})
    assert abs(float(venue_order["executedQty"]) - child["filled"]) < 1e-12, venue_order


def assert_fills_recorded_once(fills: list[dict[str, Any]], filled: dict[str, float]) -> None:
    """Fills are keyed `<client order id>:<cumulative filled>`: per child the keys must be distinct, their cumulative
    amounts strictly rising, each fill's qty the step from the previous one, and the last equal to what the child
    (and the venue) says filled. A fill recorded twice breaks one of these."""
    ids = [f["_id"] for f in fills]
    assert len(ids) == len(set(ids)), f"a fill id was recorded twice: {fills}"
    by_child: dict[str, list[tuple[float, float]]] = {}
    for f in fills:
        coid, _, cumulative = str(f["_id"]).rpartition(":")
        assert coid == f["client_order_id"], f
        by_child.setdefault(coid, []).append((float(cumulative), float(f["qty"])))
    assert set(by_child) <= set(filled), (by_child, filled)
    for coid, steps in by_child.items():
        steps.sort()
        previous = 0.0
        for cumulative, qty in steps:
            assert cumulative > previous + 1e-12, f"{coid}: the same fill recorded again: {steps}"
            assert abs(qty - (cumulative - previous)) < 1e-9, f"{coid}: fill qty does not match its key: {steps}"
            previous = cumulative
        assert abs(previous - filled[coid]) < 1e-9, f"{coid}: fills add up to {previous}, child says {filled[coid]}"


def test_fill_identity_check_catches_a_double_record() -> None:
    """The check above must fail on a fill recorded twice (under a second key), not only pass on good data."""
    good = [{"_id": "cqa-x-1:0.004", "client_order_id": "cqa-x-1", "qty": 0.004},
            {"_id": "cqa-x-1:0.01", "client_order_id": "cqa-x-1", "qty": 0.006}]
    assert_fills_recorded_once(good, {"cqa-x-1": 0.01})
    doubled = [*good, {"_id": "cqa-x-1:0.016", "client_order_id": "cqa-x-1", "qty": 0.006}]
    with pytest.raises(AssertionError):
        assert_fills_recorded_once(doubled, {"cqa-x-1": 0.01})
    with pytest.raises(AssertionError):
        assert_fills_recorded_once([good[1], good[1]], {"cqa-x-1": 0.01})
