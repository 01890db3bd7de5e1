"""Schemathesis over the app's own OpenAPI schema, in process (ASGI), one test per operation.

Checks on every generated request (positive = schema-valid data, negative = schema-violating data):
- no 5xx (`not_a_server_error`);
- every status code is documented for its operation (`status_code_conformance`): the route's `responses=` and the
  shared layers' codes (agent/api/responses.py);
- 2xx bodies conform to the documented response schema, with the documented content type (a streamed answer must
  be well-formed server-sent events ending with `done`);
- every 4xx follows the team's error contract: JSON `{"detail": "<readable text>"}` (the FastAPI default
  validation-error schema documents `detail` as a list; our handler sends a sentence plus `errors`, see
  agent/api/errors.py);
- negative data is rejected with a 4xx (`negative_data_rejection`).

The desk runs with SLACK_ADMINS set (Slack user ids), as a desk with Slack does: API keys must still be authorised by
scope alone (an admin key reaches the kill switch).

Each operation runs twice: with an admin key (auth never hides a handler) and with a read-only key (scopes enforced:
an operation that needs more than `read` answers 403 to every valid request (a malformed body may get
400/415/422 first), never 2xx, never 5xx).

Operations are read from the app when the suite is collected, so routes that other areas add are fuzzed too.
Examples are bounded (RELIABILITY_FUZZ_EXAMPLES, default 8 per mode; the read-only pass uses a quarter) and each
mode has a time budget (RELIABILITY_FUZZ_BUDGET_S, default 3 s) that never stops its first request: every
operation must get at least one generated, sent and checked positive example, or the test fails.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.reliability.conftest import auth


def _import_schemathesis_eagerly() -> None:
    """Import every schemathesis module now, in the collecting thread. schemathesis is a pytest plugin, so pytest
    rewrites its modules on import; a module it first needs mid-test would be parsed while the app's threads run, and
    CPython 3.11.7's parser is not thread-safe there ("AST constructor recursion depth mismatch", gh-106905): seen
    once in a fresh-clone CI run."""
    for module in pkgutil.walk_packages(schemathesis.__path__, "schemathesis."):
        try:
            importlib.import_module(module.name)
        except ImportError:  # optional integrations (allure) whose package is not installed
            continue


_import_schemathesis_eagerly()

EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "8"))
BUDGET_S = float(os.environ.get("RELIABILITY_FUZZ_BUDGET_S", "3"))

# Operations whose valid inputs start long-running work (training, searches). They are fuzzed with negative data
# only plus a handful of positive examples.
HEAVY_HINTS = ("train", "search", "walk-forward", "walkforward", "optimi")


def _operations() -> list[str]:
    return sorted(_operation_scopes())


def _operation_scopes() -> dict[str, frozenset[str]]:
    """'METHOD /path' -> the scopes its dependencies demand (empty: public), for every documented operation."""
    from agent.app import create_app
    from core.settings import Settings
    from tests.reliability.conftest import walk_routes

    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    scopes = {f"{r.method} {r.path}": r.scopes for r in walk_routes(app)}
    out: dict[str, frozenset[str]] = {}
    for path, item in sorted(app.openapi().get("paths", {}).items()):
        for method in sorted(item):
            if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                op = f"{method.upper()} {path}"
                out[op] = scopes.get(op, frozenset())
    return out


SCOPES = _operation_scopes()


def _content_type(response: Any) -> str:
    value = response.headers.get("content-type") or response.headers.get("Content-Type") or ""
    return str(value[0] if isinstance(value, list) and value else value)


def _error_contract(response: Any, label: str) -> None:
    ctype = _content_type(response)
    assert "application/json" in ctype, f"{label}: {response.status_code} answered {ctype!r}, not JSON"
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"].strip(), (
        f"{label}: {response.status_code} body is not {{'detail': <readable text>}}: {response.text[:300]}"
    )


def _sse_contract(text: str, label: str) -> None:
    events = [block for block in text.split("\n\n") if block.strip()]
    assert events, f"{label}: empty event stream"
    for block in events:
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), f"{label}: bad SSE frame {block!r}"
        json.loads(lines[1][len("data: ") :])
    assert events[-1].startswith("event: done"), f"{label}: the stream did not end with 'done'"


@pytest.mark.fault
@pytest.mark.parametrize("key_scope", ["admin", "read"])
@pytest.mark.parametrize("operation", _operations())
def test_openapi_operation_fuzz(operation: str, key_scope: str, make_client: Any) -> None:
    """Fault: arbitrary valid and invalid requests to each documented operation, with an admin key and with a
    read-only key. Must hold: no 5xx, documented 2xx shapes, JSON `detail` on every 4xx, invalid data rejected; with
    the read-only key an operation needing another scope answers 403 to everything."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    client, key = make_client(scopes=key_scope, SLACK_ADMINS="U0ADMIN,U0OTHER")
    needed = SCOPES[operation]
    forbidden = key_scope == "read" and not needed <= {"read"}
    # Load the schema as data and send through our own TestClient: schemathesis's ASGI transport would run the app's
    # lifespan a second time on the same app object (and keep it alive until exit).
    schema = schemathesis.openapi.from_dict(client.app.openapi())
    method, path = operation.split(" ", 1)
    op = schema[path][method]
    heavy = any(h in path.lower() for h in HEAVY_HINTS)
    has_input = bool(op.path_parameters or op.query or op.headers or op.body)
    modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if has_input else [])
    seen: dict[str, int] = {}
    for mode in modes:
        started = time.monotonic()
        sent = [0]
        n_examples = EXAMPLES
        if key_scope == "read":
            n_examples = max(2, EXAMPLES // 4)
        elif heavy and mode == GenerationMode.POSITIVE:
            n_examples = max(2, EXAMPLES // 3)

        @settings(
            max_examples=n_examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
            database=None,
            derandomize=True,
        )
        @given(case=op.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            if sent[0] and time.monotonic() - started > BUDGET_S:
                return  # the budget never stops the first request of a mode
            kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=auth(key))
            body: dict[str, Any] = {}
            if "json" in kwargs:
                body["json"] = kwargs["json"]
            elif kwargs.get("data") is not None:
                data = kwargs["data"]
                body["content"] = data.encode() if isinstance(data, str) else data
            response = client.request(kwargs["method"], kwargs["url"], params=kwargs.get("params") or None,
                                      headers=kwargs.get("headers"), **body)
            sent[0] += 1
            seen[str(response.status_code)] = seen.get(str(response.status_code), 0) + 1
            label = f"{operation} [{key_scope} key, {mode.value}] {response.request.method} {response.request.url}"
            checks: list[Any] = [not_a_server_error, status_code_conformance]
            if forbidden:
                # valid requests: 403. A malformed body may be refused (400/415/422) before the scope is looked at:
                # FastAPI parses the body before it runs dependencies. Either way nothing runs, never 2xx or 5xx.
                allowed = {403} if mode == GenerationMode.POSITIVE else {400, 403, 415, 422}
                assert response.status_code in allowed, f"{label}: a read-only key got {response.status_code}"
                _error_contract(response, label)
                case.validate_response(response, checks=checks, headers=auth(key))
                return
            # A key with the operation's scope (admin has every scope) is authorised by that scope alone: never 401 or
            # 403, whatever SLACK_ADMINS holds (403 is documented on every scoped route, for keys that lack the scope).
            assert response.status_code not in (401, 403), f"{label}: a key with the scope got {response.status_code}"
            ctype = _content_type(response)
            if 200 <= response.status_code < 300:
                if ctype.startswith("text/event-stream"):
                    _sse_contract(response.text, label)
                else:
                    checks.append(response_schema_conformance)
            elif 400 <= response.status_code < 500:
                _error_contract(response, label)
            if mode == GenerationMode.NEGATIVE:
                checks.append(negative_data_rejection)
            case.validate_response(response, checks=checks, headers=auth(key))

        try:
            run()
        except Unsatisfiable:
            if mode == GenerationMode.POSITIVE:
                pytest.fail(f"{operation}: schemathesis could not generate a single valid request")
            # nothing to negate in this operation's inputs: no negative request exists
            continue
        if mode == GenerationMode.POSITIVE:
            assert sent[0] >= 1, f"{operation}: no positive example was generated and sent"
    assert seen, f"{operation}: no request was sent"
    if forbidden:
        assert "403" in seen and set(seen) <= {"400", "403", "415", "422"}, f"{operation}: read-only key: {seen}"


def test_scope_map_covers_every_operation() -> None:
    """The read-only pass needs each operation's scopes: an operation the route walk cannot see would be fuzzed
    as public, so it must not exist (a public one is listed in PUBLIC_ROUTES)."""
    from tests.reliability.conftest import PUBLIC_ROUTES

    public = [op for op, scopes in SCOPES.items() if not scopes]
    assert all(op.split(" ", 1)[1] in PUBLIC_ROUTES for op in public), public
    assert any(scopes - {"read"} for scopes in SCOPES.values()), "no operation needs more than read"
