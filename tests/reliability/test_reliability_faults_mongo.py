"""MongoDB (embedded nx-27017, our own instance: never the session's) killed with SIGKILL and restarted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from core.embedded_mongo import EmbeddedMongo
from tests.reliability.conftest import auth


@pytest.fixture()
def own_mongo(tmp_path: Path) -> Iterator[EmbeddedMongo]:
    server = EmbeddedMongo(tmp_path / "own-mongo")
    server.start()
    yield server
    server.stop()


def _client(server: EmbeddedMongo) -> MongoClient[dict[str, Any]]:
    return MongoClient(server.uri, serverSelectionTimeoutMS=1500, connectTimeoutMS=1000, socketTimeoutMS=3000,
                       tz_aware=True)


@pytest.mark.fault
def test_service_survives_mongo_kill_and_recovers_without_restart(
    own_mongo: EmbeddedMongo, make_settings: Callable[..., Any]
) -> None:
    """Fault: the database is SIGKILLed while the service runs, then restarted on the same port and data.
    Must hold: during the outage requests get a JSON error (5xx with a detail; the process stays up, nothing
    hangs past the driver timeouts); after the restart the same service instance answers again without a
    restart, acknowledged writes from before the kill are all there, and new writes work."""
    from agent.app import create_app

    mongo = _client(own_mongo)
    db = mongo["desk"]
    app = create_app(make_settings(), db=db)
    with TestClient(app, raise_server_exceptions=False) as client:
        key, _ = app.state.api_keys.create("mongo-fault", "read")
        before = client.post("/v1/ask", json={"question": "How is BTC/USDT?", "session_id": "pre"}, headers=auth(key))
        assert before.status_code == 200
        own_mongo.kill()
        during = client.get("/v1/conversations/pre", headers=auth(key))
        assert during.status_code >= 500, during.text[:200]
        health = client.get("/health")  # the process answers, and says its store is dead (an orchestrator restarts it)
        assert health.status_code == 503 and "mongo" in health.json()["failing"], health.text[:200]
        own_mongo.start()
        after = client.get("/v1/conversations/pre", headers=auth(key))
        assert after.status_code == 200, after.text[:200]
        assert after.json()["turns"], after.text[:200]
        new = client.post("/v1/ask", json={"question": "And ETH/USDT?", "session_id": "post"}, headers=auth(key))
        assert new.status_code == 200
        assert client.get("/v1/conversations/post", headers=auth(key)).status_code == 200
    mongo.close()


@pytest.mark.fault
def test_acknowledged_writes_survive_kill_mid_stream(own_mongo: EmbeddedMongo) -> None:
    """Fault: SIGKILL of the database while a writer inserts audit records as fast as it can. Must hold: every
    insert the server acknowledged is present after restart (no acknowledged write lost), and writes that failed
    raised an error to the caller (none silently dropped); the AuditLog works again after restart."""
    from core.audit import AuditLog

    mongo = _client(own_mongo)
    audit = AuditLog(mongo["desk"])
    acked: list[int] = []
    failed: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            try:
                audit.record("fault_write", "tester", source="test", seq=i)
                acked.append(i)
            except PyMongoError:
                failed.append(i)
                return
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 10
    while len(acked) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    own_mongo.kill()
    thread.join(timeout=15)
    stop.set()
    assert not thread.is_alive()
    assert len(acked) >= 50 and failed, (len(acked), failed)
    own_mongo.start()
    stored = {d["details"]["seq"] for d in mongo["desk"]["audit_log"].find({"action": "fault_write"})}
    missing = sorted(set(acked) - stored)
    assert not missing, f"acknowledged writes lost after SIGKILL: {missing[:10]} ({len(missing)})"
    audit.record("fault_write", "tester", source="test", seq=-1)
    assert mongo["desk"]["audit_log"].count_documents({"details.seq": -1}) == 1
    mongo.close()


@pytest.mark.fault
def test_database_outage_is_a_json_503(own_mongo: EmbeddedMongo, make_settings: Callable[..., Any]) -> None:
    """Fault: the database is down during a request. Must hold: 503 with a JSON `detail` and Retry-After, the same
    error shape as every other error, so clients and load balancers can tell an outage from a bug."""
    from agent.app import create_app

    mongo = _client(own_mongo)
    app = create_app(make_settings(), db=mongo["desk"])
    with TestClient(app, raise_server_exceptions=False) as client:
        key, _ = app.state.api_keys.create("mongo-fault", "read")
        assert client.get("/v1/conversations/none", headers=auth(key)).status_code == 404
        own_mongo.kill()
        # another id: the transcript snapshot (1 s) may answer the first one without touching the database
        resp = client.get("/v1/conversations/other", headers=auth(key))
        own_mongo.start()
    mongo.close()
    assert resp.status_code == 503 and "retry-after" in resp.headers
    assert isinstance(resp.json()["detail"], str)


@pytest.mark.fault
def test_shutdown_completes_while_the_database_is_down(
    own_mongo: EmbeddedMongo, make_settings: Callable[..., Any]
) -> None:
    """Fault: the database dies before the service stops. Must hold: shutdown still completes (the scheduler's
    leader lock cannot be released, but it is a lease that expires on its own), so a restart is never blocked by a
    hung or crashed shutdown."""
    from agent.app import create_app

    mongo = _client(own_mongo)
    app = create_app(make_settings(), db=mongo["desk"])
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/health").status_code == 200
            own_mongo.kill()
    finally:
        own_mongo.start()
        mongo.close()
