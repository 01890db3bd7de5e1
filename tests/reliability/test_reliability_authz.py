"""Authorisation by key id and scope, conversations owned by their principal, revocation seen by every process at
once, failed-key throttling per address, `apikey --data-dir`, and `/ready` details for admin keys only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.reliability.conftest import auth

GOOD_SHAPE_BAD_SECRET = "cqa_0123456789ab_" + "A" * 32


@pytest.mark.fault
def test_admin_key_runs_the_kill_switch_with_slack_admins_set(make_client: Any) -> None:
    """Fault: SLACK_ADMINS is set (Slack user ids) and an admin-scope API key halts, resumes and kills the desk.
    Must hold: the HTTP kill switch works for the admin scope (the key's name is no Slack id), and a read key named
    like a Slack admin is still refused by scope."""
    client, admin = make_client(scopes="admin", SLACK_ADMINS="U0ADMIN")
    reader, _ = client.app.state.api_keys.create("U0ADMIN", "read")  # a free-text name grants nothing
    for path in ("/v1/desk/halt", "/v1/desk/resume", "/v1/desk/kill"):
        resp = client.post(path, json={"reason": "drill"}, headers=auth(admin))
        assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
    assert client.get("/v1/risk", headers=auth(admin)).json()["desk_state"] == "halted"
    refused = client.post("/v1/desk/resume", json={}, headers=auth(reader))
    assert refused.status_code == 403 and "'admin' scope" in refused.json()["detail"]


@pytest.mark.fault
def test_cli_desk_control_with_slack_admins_set(make_settings: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Fault: the operator runs `crypto-agent desk halt|resume` on the desk's host while SLACK_ADMINS is set. Must
    hold: exit 0 (the CLI's authority is access to the desk's data; SLACK_ADMINS governs Slack)."""
    from agent.cli import main

    make_settings(SLACK_ADMINS="U0ADMIN")
    assert main(["desk", "halt", "--reason", "drill", "--json"]) == 0
    assert '"halted"' in capsys.readouterr().out
    assert main(["desk", "resume", "--json"]) == 0
    assert '"active"' in capsys.readouterr().out


def _ask(client: TestClient, key: str, session: str, question: str = "hello desk") -> None:
    resp = client.post("/v1/ask", json={"question": question, "session_id": session}, headers=auth(key))
    assert resp.status_code == 200, resp.text[:300]


@pytest.mark.fault
def test_conversations_are_owned_by_their_principal(make_client: Any) -> None:
    """Fault: a read key reads and continues another key's conversation and a Slack user's by their session ids.
    Must hold: someone else's conversation is a 404 (as if it did not exist) and appending under its id starts the
    caller's own conversation, leaving the other untouched; an admin key reads any conversation."""
    client, alice = make_client(scopes="read")
    store = client.app.state.api_keys
    bob, _ = store.create("bob", "read")
    admin, _ = store.create("ops", "admin")
    desk = client.app.state.desk
    _ask(client, alice, "s1", "alice's question")
    desk.ask("slack user's question", session_id="slack:C1:U1", user="slack:U1", source="slack")

    mine = client.get("/v1/conversations/s1", headers=auth(alice))
    assert mine.status_code == 200 and [t["question"] for t in mine.json()["turns"]] == ["alice's question"]
    for session in ("s1", "slack:C1:U1"):
        resp = client.get(f"/v1/conversations/{session}", headers=auth(bob))
        assert resp.status_code == 404, (session, resp.text[:200])
        assert resp.json()["detail"] == f"no conversation with session id {session}"  # same as a missing one
    _ask(client, bob, "slack:C1:U1", "bob's injected turn")
    _ask(client, bob, "s1", "bob's turn")
    assert [m.content for m in desk.memory.history("slack:C1:U1", "slack")][::2] == ["slack user's question"]
    assert [t["question"] for t in client.get("/v1/conversations/s1", headers=auth(alice)).json()["turns"]] == [
        "alice's question"
    ]
    assert [t["question"] for t in client.get("/v1/conversations/s1", headers=auth(bob)).json()["turns"]] == [
        "bob's turn"
    ]
    everyone = client.get("/v1/conversations/slack:C1:U1", headers=auth(admin)).json()["turns"]
    assert {(t["owner"], t["question"]) for t in everyone} == {
        ("slack", "slack user's question"),
        (next(t["owner"] for t in everyone if t["owner"].startswith("key:")), "bob's injected turn"),
    }


def _cli_env(settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(MONGO_URI=str(settings.mongo_uri), MONGO_DB=settings.mongo_db, DATA_DIR=str(settings.data_dir))
    return env


@pytest.mark.fault
def test_revocation_by_another_process_is_effective_at_once(make_client: Any) -> None:
    """Fault: a key the server has verified (and remembers) is revoked by `crypto-agent apikey revoke` in another
    process, and through a second app instance on the same database. Must hold: the next request with it is a 401
    in every instance, without waiting for any cache to expire."""
    from agent.app import create_app

    client, key = make_client(scopes="read")
    settings = client.app.state.settings
    twin = TestClient(create_app(settings))  # a second instance: its own key store and memory, the same database
    twin.__enter__()
    try:
        key_id = key.split("_")[1]
        for c in (client, twin):
            assert c.get("/v1/conversations/none", headers=auth(key)).status_code == 404  # verified, remembered
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from agent.cli import main; sys.exit(main(sys.argv[1:]))",
             "apikey", "revoke", key_id],
            env=_cli_env(settings), capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        for c in (client, twin):
            resp = c.get("/v1/conversations/none", headers=auth(key))
            assert resp.status_code == 401, resp.text[:200]
        # the other way round: revoked through one instance, refused at once by the other
        key2, p2 = client.app.state.api_keys.create("second", "read")
        assert twin.get("/v1/conversations/none", headers=auth(key2)).status_code == 404
        assert client.app.state.api_keys.revoke(p2.key_id)
        assert twin.get("/v1/conversations/none", headers=auth(key2)).status_code == 401
    finally:
        twin.__exit__(None, None, None)


@pytest.mark.fault
def test_failed_keys_are_throttled_per_address(make_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault: one address sends a stream of invalid keys (each used to cost an argon2 check). Must hold: past
    AUTH_FAILURE_LIMIT failures it gets 429 with Retry-After and no further argon2 work; keys already verified keep
    working from that address; another address is unaffected; a malformed key never reaches argon2."""
    from agent.api import auth as auth_mod

    client, good = make_client(scopes="read", AUTH_FAILURE_LIMIT="5", AUTH_FAILURE_WINDOW_S="600")
    assert client.get("/v1/conversations/none", headers=auth(good)).status_code == 404  # verified before the attack
    calls: list[str] = []
    real = auth_mod._hasher

    class Counting:
        def verify(self, stored: str, password: str) -> bool:
            calls.append(stored)
            return bool(real.verify(stored, password))

        def hash(self, secret: str) -> str:
            return str(real.hash(secret))

    monkeypatch.setattr(auth_mod, "_hasher", Counting())
    for bad in ("garbage", "cqa_short_x", "Bearer-less", "cqa_0123456789ab_" + "!" * 32):
        assert client.get("/v1/conversations/none", headers=auth(bad)).status_code == 401
    assert calls == []  # the wrong shape is refused without a database read or argon2
    statuses = [client.get("/v1/conversations/none", headers=auth(GOOD_SHAPE_BAD_SECRET)).status_code
                for _ in range(4)]
    assert statuses == [401, 429, 429, 429]  # 4 malformed + 1 well-formed = 5 failures, then throttled
    assert len(calls) == 1
    limited = client.get("/v1/conversations/none", headers=auth(GOOD_SHAPE_BAD_SECRET))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "too many failed" in limited.json()["detail"]
    assert client.get("/v1/conversations/none", headers=auth(good)).status_code == 404  # good key unaffected
    # A revocation anywhere makes every remembered key be checked again: a key verified before is re-checked, not
    # throttled with the guesses from its address.
    store = client.app.state.api_keys
    store.revoke(store.create("other", "read")[1].key_id)
    assert client.get("/v1/conversations/none", headers=auth(good)).status_code == 404
    assert len(calls) == 2
    elsewhere = TestClient(client.app, client=("203.0.113.7", 40000))  # same app, another peer address
    assert elsewhere.get("/v1/conversations/none", headers=auth(GOOD_SHAPE_BAD_SECRET)).status_code == 401
    assert len(calls) == 3


def test_failure_limiter_refills_and_forgets() -> None:
    from core.ratelimit import FailureLimiter

    limiter = FailureLimiter(limit=2, window_s=0.2, max_clients=3)
    assert limiter.blocked("a") == 0.0
    limiter.failed("a")
    assert limiter.blocked("a") == 0.0
    limiter.failed("a")
    wait = limiter.blocked("a")
    assert 0 < wait <= 0.1 + 1e-6
    for name in ("b", "c", "d", "e"):
        limiter.failed(name)
    assert len(limiter._buckets) <= 3


@pytest.mark.fault
def test_unknown_key_says_it_is_unknown_to_this_desk(make_client: Any) -> None:
    """Fault: a key created for another database (another --data-dir). Must hold: 401 whose detail says the key is
    not known to this desk and how keys are made for it, revealing nothing about the key or the stored ones."""
    client, key = make_client(scopes="read")
    resp = client.get("/v1/conversations/x", headers=auth(GOOD_SHAPE_BAD_SECRET))
    assert resp.status_code == 401
    detail = resp.json()["detail"]
    assert "not recognised by this desk" in detail and "--data-dir" in detail
    assert "0123456789ab" not in resp.text and key.split("_")[1] not in resp.text


@pytest.mark.fault
def test_apikey_commands_take_the_servers_data_dir(
    make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault: `crypto-agent apikey create` run without the server's --data-dir put the key into another desk's
    database. Must hold: `apikey create|list|revoke --data-dir D` work on D's embedded database (the one `serve
    --data-dir D` uses), and a server on another data dir answers 401 for that key."""
    from agent.app import create_app
    from agent.cli import main
    from core import settings as settings_mod
    from core import storage

    make_settings()
    monkeypatch.delenv("MONGO_URI", raising=False)  # embedded MongoDB in the data dir, as `serve` runs it
    desk_dir, other_dir = tmp_path / "desk", tmp_path / "other"
    monkeypatch.setenv("DATA_DIR", str(other_dir))
    settings_mod.reset_settings()
    storage.close()
    try:
        assert main(["apikey", "create", "--scopes", "read", "--name", "ops", "--data-dir", str(desk_dir)]) == 0
        out = capsys.readouterr()
        key = out.out.strip()
        assert key.startswith("cqa_") and str(desk_dir) in out.err
        assert main(["apikey", "list", "--data-dir", str(desk_dir)]) == 0
        assert key.split("_")[1] in capsys.readouterr().out
        storage.close()
        for data_dir, expected in ((desk_dir, 404), (other_dir, 401)):
            monkeypatch.setenv("DATA_DIR", str(data_dir))
            settings_mod.reset_settings()
            with TestClient(create_app(settings_mod.get_settings())) as client:
                resp = client.get("/v1/conversations/none", headers=auth(key))
                assert resp.status_code == expected, (data_dir, resp.text[:200])
            storage.close()
        assert main(["apikey", "revoke", key.split("_")[1], "--data-dir", str(desk_dir)]) == 0
    finally:
        storage.close()


@pytest.mark.fault
def test_ready_shows_details_to_admin_keys_only(make_client: Any) -> None:
    """Fault: an anonymous probe of /ready. Must hold: states only (no Mongo address, LLM URL or data path);
    a read key sees the same; an admin key sees each check's detail; a bad key is a 401."""
    client, read = make_client(scopes="read")
    admin, _ = client.app.state.api_keys.create("ops", "admin")
    settings = client.app.state.settings
    for headers in ({}, auth(read)):
        resp = client.get("/ready", headers=headers)
        assert resp.status_code == 200
        body = resp.json()
        assert body["ready"] is True and all(set(c) == {"ok", "required"} for c in body["checks"].values()), body
        for secret_ish in (str(settings.data_dir), str(settings.mongo_uri).split("@")[-1], settings.llm_base_url):
            assert secret_ish not in resp.text
    detailed = client.get("/ready", headers=auth(admin)).json()
    assert all("detail" in c for c in detailed["checks"].values())
    assert client.get("/ready", headers=auth(GOOD_SHAPE_BAD_SECRET)).status_code == 401


def test_every_operation_documents_the_statuses_its_layers_answer(make_client: Any) -> None:
    """The OpenAPI document lists, for every operation, what the shared layers can answer: 401/403/429/503 behind a
    scope, 400/422 for input, 413 for a body (schemathesis's status-code check relies on it, but samples)."""
    from tests.reliability.conftest import walk_routes

    client, _ = make_client()
    paths = client.get("/openapi.json").json()["paths"]
    checked = 0
    for info in walk_routes(client.app):
        operation = paths.get(info.path, {}).get(info.method.lower())
        if operation is None:
            continue  # not in the schema (Slack endpoints, /metrics)
        codes = set(operation["responses"])
        if info.scopes:
            assert {"401", "403", "429", "503"} <= codes, (info.method, info.path, sorted(codes))
        if info.has_body:
            assert {"400", "413", "422"} <= codes, (info.method, info.path, sorted(codes))
        checked += 1
    assert checked >= 30
    assert {"404"} <= set(paths["/v1/orders/{order_id}"]["get"]["responses"])
    assert {"404"} <= set(paths["/v1/conversations/{session_id}"]["get"]["responses"])
