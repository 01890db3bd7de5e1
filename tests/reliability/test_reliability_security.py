"""Security properties of the HTTP and Slack doors, checked over whatever routes the app has when the suite runs."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from tests.reliability.conftest import (
    PUBLIC_ROUTES,
    SIGNING_SECRET,
    auth,
    concrete_path,
    slack_headers,
    walk_routes,
)

SCOPES = ("read", "trade", "approve", "admin")
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _request(client: Any, method: str, path: str, headers: dict[str, str], body: bool) -> Any:
    kwargs: dict[str, Any] = {"headers": headers}
    if body:
        kwargs["json"] = {}
    return client.request(method, path, **kwargs)


@pytest.mark.fault
def test_every_route_is_scoped_or_deliberately_public(make_client: Any) -> None:
    """Fault: a new route added without `require_scope`. Must hold: every route demands a scope unless it is listed
    in PUBLIC_ROUTES with a reason."""
    client, _ = make_client()
    app = client.app
    unscoped = sorted(
        {f"{r.method} {r.path}" for r in walk_routes(app) if not r.scopes and r.path not in PUBLIC_ROUTES}
    )
    plain = sorted(
        r.path for r in app.routes if isinstance(r, Route) and r.path not in PUBLIC_ROUTES and "endpoint" in vars(r)
        and r.__class__ is Route
    )
    assert not unscoped, f"routes without an API-key scope (add require_scope or list them as public): {unscoped}"
    assert not plain, f"plain Starlette routes bypass FastAPI dependencies: {plain}"
    walked = {r.path for r in walk_routes(app)}
    missing = sorted(set(app.openapi()["paths"]) - walked)
    assert not missing, f"the route walk missed documented paths (FastAPI routing changed?): {missing}"
    assert any(r.scopes for r in walk_routes(app)), "no scoped route found: the walk is broken"


@pytest.mark.fault
def test_scope_walk_every_route_every_scope(make_client: Any) -> None:
    """Fault: requests with no key, a malformed key, a revoked key, and keys of each single scope against every
    scoped route. Must hold: 401 without a valid key, 403 when the key lacks the route's scope, and neither when it
    has it (admin implies every scope)."""
    # every bad key below is a failure from one address: lift the failed-key throttle (tested on its own)
    client, _ = make_client(scopes="read", RATE_LIMIT_PER_MINUTE="100000", AUTH_FAILURE_LIMIT="100000")
    store = client.app.state.api_keys
    keys = {scope: store.create(f"walk-{scope}", scope)[0] for scope in SCOPES}
    revoked, principal = store.create("walk-revoked", "admin")
    assert client.get("/v1/conversations/x", headers=auth(revoked)).status_code in (200, 404)  # cached as valid
    assert store.revoke(principal.key_id)
    routes = [r for r in walk_routes(client.app) if r.scopes]
    assert routes
    checked = 0
    for info in routes:
        path = concrete_path(info)
        label = f"{info.method} {info.path} (needs {sorted(info.scopes)})"
        for headers in ({}, auth("cqa_000000000000_not-a-key"), auth("garbage"), auth(revoked)):
            resp = _request(client, info.method, path, headers, info.has_body)
            assert resp.status_code == 401, f"{label} with {headers or 'no key'}: {resp.status_code} {resp.text[:200]}"
            assert isinstance(resp.json()["detail"], str)
        for scope, key in keys.items():
            resp = _request(client, info.method, path, auth(key), info.has_body)
            allowed = scope == "admin" or info.scopes <= {scope}
            if allowed:
                assert resp.status_code not in (401, 403), f"{label} with a {scope} key: {resp.status_code} {resp.text}"
            else:
                assert resp.status_code == 403, f"{label} with a {scope} key: {resp.status_code} {resp.text[:200]}"
                assert "scope" in resp.json()["detail"]
            assert resp.status_code < 500, f"{label} with a {scope} key: {resp.status_code} {resp.text[:300]}"
            checked += 1
    assert checked == len(routes) * len(SCOPES)


@pytest.mark.fault
def test_rate_limit_per_key(make_client: Any) -> None:
    """Fault: one key sends a burst far above its allowance. Must hold: the excess answers 429 with Retry-After and a
    readable detail, and another key is not affected."""
    client, key = make_client(scopes="read", RATE_LIMIT_PER_MINUTE="60")  # burst 15, refill 1/s
    other, _ = client.app.state.api_keys.create("other", "read")
    statuses = [client.get("/v1/conversations/none", headers=auth(key)).status_code for _ in range(40)]
    assert statuses.count(404) >= 15 and statuses.count(429) >= 20, statuses
    limited = client.get("/v1/conversations/none", headers=auth(key))
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1 and "rate limit" in limited.json()["detail"]
    assert client.get("/v1/conversations/none", headers=auth(other)).status_code == 404


@pytest.mark.fault
def test_request_size_limit_with_and_without_content_length(make_client: Any, fake_slack: Any) -> None:
    """Fault: oversized bodies, declared (Content-Length) and streamed (chunked, no length), to the API and to the
    Slack endpoint. Must hold: 413 with a JSON detail, and the handler never runs (no conversation stored)."""
    client, key = make_client(slack=fake_slack, MAX_REQUEST_BYTES="20000")
    big = json.dumps({"question": "How is BTC/USDT? " + "x" * 50_000, "session_id": "big1"}).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    declared = client.post("/v1/ask", content=big, headers={**auth(key), "Content-Type": "application/json"})
    streamed = client.post("/v1/ask", content=chunks(), headers={**auth(key), "Content-Type": "application/json"})
    form = "text=" + "a" * 30_000
    slack = client.post("/slack/events", content=form.encode(), headers=slack_headers(form))
    for resp in (declared, streamed, slack):
        assert resp.status_code == 413, resp.text[:200]
        assert "too large" in resp.json()["detail"]
    assert client.get("/v1/conversations/big1", headers=auth(key)).status_code == 404


@pytest.mark.fault
def test_api_keys_hashed_and_unknown_ids_still_verified(make_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault: a database dump, and probing for which key ids exist. Must hold: only argon2 hashes are stored (never
    the secret), and a key with an unknown id costs one argon2 verification like a known one (no timing oracle)."""
    from agent.api import auth as auth_mod

    client, key = make_client()
    secret = key.split("_", 2)[2]
    docs = list(client.app.state.db["api_keys"].find({}))
    assert docs and all(d["hash"].startswith("$argon2") for d in docs)
    assert secret not in json.dumps(docs, default=str)
    calls: list[str] = []
    real = auth_mod._hasher

    class Counting:
        def verify(self, stored: str, password: str) -> bool:
            calls.append(stored)
            return bool(real.verify(stored, password))

    monkeypatch.setattr(auth_mod, "_hasher", Counting())
    assert client.get("/v1/conversations/x", headers=auth("cqa_ffffffffffff_" + secret)).status_code == 401
    assert client.get("/v1/conversations/x", headers=auth(key[:-2] + "zz")).status_code == 401
    assert len(calls) == 2 and calls[0] == auth_mod._DUMMY_HASH and calls[1] != auth_mod._DUMMY_HASH


@pytest.mark.fault
def test_authorization_header_fuzz(make_client: Any) -> None:
    """Fault: arbitrary Authorization / X-API-Key header values. Must hold: 401 with a JSON detail, never 5xx."""
    client, key = make_client(AUTH_FAILURE_LIMIT="100000")  # the throttle's 429 is tested on its own
    header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200)

    @FUZZ
    @given(value=header_text, use_bearer=st.booleans(), near=st.booleans())
    def run(value: str, use_bearer: bool, near: bool) -> None:
        candidate = (key[: len(key) // 2] + value) if near else value
        if candidate.strip() == key:
            return
        headers = {"Authorization": f"Bearer {candidate}"} if use_bearer else {"X-API-Key": candidate}
        resp = client.get("/v1/conversations/x", headers=headers)
        assert resp.status_code == 401, (headers, resp.status_code, resp.text[:200])
        assert isinstance(resp.json()["detail"], str)

    run()


def _form(**fields: str) -> str:
    return urllib.parse.urlencode(fields)


@pytest.mark.fault
def test_slack_signature_fuzz(make_client: Any, fake_slack: Any) -> None:
    """Fault: Slack requests that are unsigned, signed with another secret, stale (> 5 min), replayed with an edited
    body, or signed but carrying arbitrary payloads. Must hold: 401 for every bad signature; a good signature never
    yields a 5xx; nothing runs for a rejected request (no chat.postMessage)."""
    client, _ = make_client(slack=fake_slack)
    body = _form(command="/analyze", text="BTC/USDT", user_id="U1", channel_id="C1", team_id="T1",
                 response_url=f"{fake_slack.api_url}response", trigger_id="1.2")
    now = int(time.time())
    bad = [
        {"Content-Type": "application/x-www-form-urlencoded"},
        slack_headers(body, secret="not-the-secret"),
        slack_headers(body, ts=now - 301),
        slack_headers(body, ts=now + 600),
        {**slack_headers(body), "X-Slack-Signature": "v0=" + "0" * 64},
        {**slack_headers(body), "X-Slack-Signature": "v1=deadbeef"},
    ]
    for headers in bad:
        assert client.post("/slack/events", content=body, headers=headers).status_code == 401, headers
    edited = body.replace("BTC%2FUSDT", "ETH%2FUSDT")
    assert client.post("/slack/events", content=edited, headers=slack_headers(body)).status_code == 401

    printable = st.text(st.characters(min_codepoint=1, max_codepoint=0x2FFF, exclude_categories=("Cs",)), max_size=300)

    @FUZZ
    @given(raw=printable, secret=st.sampled_from([SIGNING_SECRET, "other-secret"]), form=st.booleans(),
           text=printable)
    def run(raw: str, secret: str, form: bool, text: str) -> None:
        payload = _form(command="/analyze", text=text, user_id="U2", channel_id="C2", team_id="T1",
                        response_url=f"{fake_slack.api_url}response", trigger_id="9.9") if form else raw
        resp = client.post("/slack/events", content=payload.encode(), headers=slack_headers(payload, secret=secret))
        if secret != SIGNING_SECRET:
            assert resp.status_code == 401
        else:
            assert resp.status_code < 500, (payload[:200], resp.status_code, resp.text[:200])

    run()
    posts = fake_slack.calls_of("chat.postMessage")
    assert all(p.get("channel") != "C1" for p in posts), "a request with a bad signature reached a handler"


@pytest.mark.fault
def test_streamed_oversize_body_is_413(make_client: Any) -> None:
    """Fault: a chunked body (no Content-Length) over MAX_REQUEST_BYTES. Must hold: 413 like a declared one."""
    client, key = make_client(MAX_REQUEST_BYTES="20000")
    big = json.dumps({"question": "x" * 50_000}).encode()
    resp = client.post("/v1/ask", content=iter([big[:10_000], big[10_000:]]),
                       headers={**auth(key), "Content-Type": "application/json"})
    assert resp.status_code == 413


@pytest.mark.fault
def test_slack_malformed_timestamp_is_401(make_client: Any, fake_slack: Any) -> None:
    """Fault: a Slack request whose timestamp header is not a number. Must hold: 401 like any bad signature."""
    client, _ = make_client(slack=fake_slack)
    body = _form(command="/analyze", text="BTC/USDT", user_id="U1", channel_id="C1", team_id="T1")
    resp = client.post("/slack/events", content=body,
                       headers={**slack_headers(body), "X-Slack-Request-Timestamp": "not-a-number"})
    assert resp.status_code == 401
