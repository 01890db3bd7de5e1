"""The embedded database is supervised: restarted when it dies, never orphaned by a killed owner, one server per
data directory (a lock), and /health reports a store that does not answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from core.embedded_mongo import STATE_FILE, EmbeddedMongo, EmbeddedMongoError, free_port

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split()[2] != "Z"


def _wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _servers_on(data_dir: Path) -> list[int]:
    """Pids of nx-27017 processes serving `data_dir`."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any("nx_27017" in a for a in args) and str(data_dir) in args and "-c" not in args:
            out.append(int(proc.name))
    return out


def test_a_dead_server_is_restarted_and_clients_reconnect(tmp_path: Path) -> None:
    server = EmbeddedMongo(tmp_path / "mongo")
    server.start()
    try:
        client: MongoClient[dict[str, Any]] = MongoClient(server.uri, serverSelectionTimeoutMS=15_000)
        client["d"]["c"].insert_one({"_id": 1})
        first = server.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)  # the server dies under the running process
        assert client["d"]["c"].count_documents({}) == 1  # the same client, after the supervisor's restart
        client["d"]["c"].insert_one({"_id": 2})
        assert server.pid not in (None, first) and server.restarts == 1
        assert "code -9" in str(server.status()["last_exit"])
        client.close()
    finally:
        server.stop()
    assert not _servers_on(tmp_path / "mongo")


def test_two_starts_on_one_data_dir_share_one_server(tmp_path: Path) -> None:
    first, second = EmbeddedMongo(tmp_path / "mongo"), EmbeddedMongo(tmp_path / "mongo")
    first.start()
    try:
        assert second.start() == first.uri and second.attached and not first.attached
        assert _servers_on(tmp_path / "mongo") == [first.pid]
        second.stop()  # an attached user never stops the owner's server
        assert first.status()["up"]
    finally:
        first.stop()


def test_an_owner_killed_with_sigkill_leaves_no_server_behind(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from core.embedded_mongo import EmbeddedMongo; "
        "m = EmbeddedMongo(Path(sys.argv[1])); m.start(); print(m.pid, flush=True); time.sleep(120)"
    )
    owner = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "mongo")], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    assert owner.stdout is not None
    nx_pid = int(owner.stdout.readline())
    owner.kill()
    owner.wait(timeout=10)
    owner.stdout.close()
    assert _wait_gone(nx_pid), "the embedded server outlived its SIGKILLed owner"
    # the next start takes the released lock and runs exactly one server
    server = EmbeddedMongo(tmp_path / "mongo")
    server.start()
    try:
        assert not server.attached and _servers_on(tmp_path / "mongo") == [server.pid]
    finally:
        server.stop()


def test_a_server_left_by_a_dead_owner_is_stopped_before_a_new_one_starts(tmp_path: Path) -> None:
    """An orphan (e.g. from an owner on a system without a parent-death signal) is found through the state file."""
    data = tmp_path / "mongo"
    data.mkdir()
    port = free_port()
    orphan = subprocess.Popen(
        [sys.executable, "-m", "nx_27017.nx_27017", "--data-dir", str(data), "--host", "127.0.0.1", "--port",
         str(port), "--log-file", str(data / "orphan.log"), "--pid-file", str(data / "orphan.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    probe: MongoClient[dict[str, Any]] = MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true",
                                                     serverSelectionTimeoutMS=20_000)
    probe.admin.command("ping")  # the orphan is up and serving
    probe.close()
    (data / STATE_FILE).write_text(json.dumps({"owner_pid": 999_999_999, "server_pid": orphan.pid, "port": port}))
    server = EmbeddedMongo(data)
    try:
        server.start()
        assert orphan.wait(timeout=10) is not None  # stopped, not reused
        assert _servers_on(data) == [server.pid]
    finally:
        server.stop()
        if orphan.poll() is None:
            orphan.kill()


def test_an_unanswering_owner_is_refused_clearly(tmp_path: Path) -> None:
    import fcntl

    data = tmp_path / "mongo"
    data.mkdir()
    (data / STATE_FILE).write_text(json.dumps({"owner_pid": os.getpid(), "server_pid": 1, "port": free_port()}))
    with open(data / "nx-27017.lock", "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(EmbeddedMongoError, match=r"belongs to process .* does not answer"):
            EmbeddedMongo(data).start(timeout_s=1.0)


@pytest.mark.fault
def test_health_is_503_naming_the_store_while_it_is_down(tmp_path: Path, make_settings: Callable[..., Any]) -> None:
    from agent.app import create_app

    server = EmbeddedMongo(tmp_path / "own")
    server.start()
    mongo: MongoClient[dict[str, Any]] = MongoClient(server.uri, serverSelectionTimeoutMS=1000)
    try:
        app = create_app(make_settings(), db=mongo["desk"])
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/health").json() == {"status": "ok"}
            server.kill()  # down, and the supervisor stands by (fault injection)
            time.sleep(1.1)  # past the remembered answer
            down = client.get("/health")
            assert down.status_code == 503 and "mongo" in down.json()["failing"], down.text
            server.start()
            time.sleep(1.1)
            assert client.get("/health").status_code == 200
    finally:
        mongo.close()
        server.stop()


@pytest.mark.fault
def test_the_service_answers_again_after_its_embedded_server_dies(
    make_settings: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repro: nx-27017 (the app's own, no MONGO_URI) dies under a running service. It used to stay dead (every
    route 503 for good, /health 200). Now the supervisor restarts it and the same process answers again."""
    from agent.app import create_app
    from core import storage

    monkeypatch.delenv("MONGO_URI", raising=False)
    app = create_app(make_settings())
    with TestClient(app, raise_server_exceptions=False) as client:
        key, _ = app.state.api_keys.create("supervisor", "read")
        headers = {"Authorization": f"Bearer {key}"}
        assert client.get("/v1/orders", headers=headers).status_code == 200
        server = storage.embedded_server()
        assert server is not None and server.pid is not None and not server.attached
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        statuses = []
        while time.monotonic() < deadline:
            statuses.append(client.get("/v1/orders?state=filled", headers=headers).status_code)
            if statuses[-1] == 200:
                break
            time.sleep(0.2)
        assert statuses[-1] == 200, statuses
        assert server.restarts == 1 and client.get("/health").status_code == 200
