"""A real `crypto-agent serve` (embedded nx-27017, simulated exchange, a fixed clock) holding a 19% position is
stopped with SIGTERM and then SIGKILL and started again: each time the desk comes back exactly as it was (same
position and equity, priced, ACTIVE), the first read of the risk status does not halt it, no embedded server is
left behind, and one server per data directory runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.embedded_mongo import STATE_FILE, EmbeddedMongo, free_port

ROOT = Path(__file__).resolve().parents[2]
START_MS = int(datetime.fromisoformat("2026-12-04T15:30:00+00:00").timestamp() * 1000)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


class Serve:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "SLACK_", "MONGO_", "RISK_"))}
        env.update({
            "DATA_DIR": str(data), "MONGO_DB": "restart", "SIMULATED_EXCHANGE": "true", "EXCHANGE_ID": "binance",
            "EXCHANGES": "binance", "PAPER_INITIAL_USDT": "100000", "MARKET_STREAMS": "false",
            "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "HF_HUB_OFFLINE": "1",
        })
        self.env = env

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.clocked_cli", str(START_MS), "serve", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"serve exited with {self.proc.returncode}: {self.proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail("serve did not answer /health within 120 s")

    def server_pid(self) -> int:
        return int(json.loads((self.data / "mongo" / STATE_FILE).read_text())["server_pid"])

    def stop(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def get(self, path: str, key: str) -> Any:
        resp = httpx.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert resp.status_code == 200, resp.text[:500]
        return resp.json()

    def post(self, path: str, key: str, body: dict[str, Any] | None = None) -> Any:
        resp = httpx.post(f"{self.url}{path}", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=60)
        assert resp.status_code < 300, resp.text[:500]
        return resp.json()


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path / "data")
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.stop(signal.SIGKILL)


def _book(serve: Serve, key: str) -> tuple[float, float, dict[str, Any]]:
    risk = serve.get("/v1/risk", key)  # the read-scope evaluation that used to halt the desk
    pos = serve.get("/v1/positions", key)
    (row,) = pos["positions"]
    return float(row["qty"]), float(pos["equity"]), {"risk": risk, "row": row}


@pytest.mark.fault
def test_a_19pct_position_survives_sigterm_and_sigkill_restarts(serve: Serve) -> None:
    serve.start()
    owner_pid = serve.server_pid()
    # a second process on the data directory attaches to the running server instead of starting another
    attached = EmbeddedMongo(serve.data / "mongo")
    attached.start()
    assert attached.attached and attached.port and serve.server_pid() == owner_pid
    from pymongo import MongoClient

    from agent.api.auth import ApiKeyStore

    client: MongoClient[dict[str, Any]] = MongoClient(attached.uri)
    key, _ = ApiKeyStore(client["restart"]).create("restart-test", "read,trade,approve")
    client.close()
    attached.stop()
    assert _alive(owner_pid)  # an attached process never stops the owner's server

    price = float(serve.get("/v1/market/ticker?symbol=BTC/USDT", key)["last"])
    qty = round(19_000.0 / price, 4)
    prop = serve.post("/v1/proposals", key, {"symbol": "BTC/USDT", "side": "buy", "qty": qty})
    order_id = prop["order"]["id"]
    assert serve.post(f"/v1/approvals/{order_id}/approve", key)["order"]["state"] == "filled"
    # another process approves an order while the server runs (the CLI attaches to the server's store): the
    # server's book shows that fill at once
    extra = serve.post("/v1/proposals", key, {"symbol": "BTC/USDT", "side": "buy", "qty": 0.002})["order"]["id"]
    cli = subprocess.run(
        [sys.executable, "-m", "tests.reliability.clocked_cli", str(START_MS), "orders", "approve", extra, "--json"],
        cwd=ROOT, env=serve.env, capture_output=True, text=True, timeout=180,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert json.loads(cli.stdout)["order"]["state"] == "filled", cli.stdout[-1000:]
    assert _alive(owner_pid) and serve.server_pid() == owner_pid  # the CLI used the server's store, started none
    time.sleep(1.1)  # past the positions snapshot (1 s)
    held, equity, before = _book(serve, key)
    qty = round(qty + 0.002, 4)
    assert held == pytest.approx(qty) and before["row"]["mark_state"] == "known"
    assert before["row"]["value"] / equity == pytest.approx(0.19, abs=0.01)
    assert before["risk"]["desk_state"] == "active"

    for sig in (signal.SIGTERM, signal.SIGKILL):
        nx_pid = serve.server_pid()
        serve.stop(sig)
        deadline = time.monotonic() + 10
        while _alive(nx_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(nx_pid), f"embedded server {nx_pid} outlived its owner ({signal.Signals(sig).name})"
        serve.start()
        after_held, after_equity, after = _book(serve, key)
        name = signal.Signals(sig).name
        assert after["risk"]["desk_state"] == "active", (name, after["risk"]["desk_reason"])
        assert after_held == pytest.approx(held), name
        assert after["row"]["mark"] is not None and after["row"]["mark_state"] == "known", name
        assert after_equity == pytest.approx(equity, rel=0.005), name  # same book, market seconds later
        assert after["risk"]["metrics"]["gross_exposure"] > 0.15 * after_equity, name
