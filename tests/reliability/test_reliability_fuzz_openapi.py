"""Schemathesis over the app's own OpenAPI schema, in process (ASGI), one test per operation.

Checks on every generated request (positive = schema-valid data, negative = schema-violating data):
- no 5xx (`not_a_server_error`);
- 2xx bodies conform to the documented response schema, with the documented content type (a streamed answer must
  be well-formed server-sent events ending with `done`);
- every 4xx follows the team's error contract: JSON `{"detail": "<readable text>"}` (the FastAPI default
  validation-error schema documents `detail` as a list; our handler sends a sentence plus `errors`, see
  agent/api/errors.py);
- negative data is rejected with a 4xx (`negative_data_rejection`).

Operations are read from the app when the suite is collected, so routes that other areas add are fuzzed too.
Examples are bounded (RELIABILITY_FUZZ_EXAMPLES, default 8 per mode) and each operation has a time budget.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.reliability.conftest import auth

EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "8"))
BUDGET_S = float(os.environ.get("RELIABILITY_FUZZ_BUDGET_S", "3"))

# Operations whose valid inputs start long-running work (training, searches). They are fuzzed with negative data
# only plus a handful of positive examples.
HEAVY_HINTS = ("train", "search", "walk-forward", "walkforward", "optimi")


def _operations() -> list[str]:
    from agent.app import create_app
    from core.settings import Settings

    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    schema = app.openapi()
    out = []
    for path, item in sorted(schema.get("paths", {}).items()):
        for method in sorted(item):
            if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                out.append(f"{method.upper()} {path}")
    return out


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
@pytest.mark.parametrize("operation", _operations())
def test_openapi_operation_fuzz(operation: str, make_client: Any) -> None:
    """Fault: arbitrary valid and invalid requests to each documented operation (admin key, so auth never hides a
    handler). Must hold: no 5xx, documented 2xx shapes, JSON `detail` on every 4xx, invalid data rejected."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

    client, key = make_client(scopes="admin")
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
        n_examples = max(2, EXAMPLES // 3) if heavy and mode == GenerationMode.POSITIVE else EXAMPLES

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
            if time.monotonic() - started > BUDGET_S:
                return
            kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=auth(key))
            body: dict[str, Any] = {}
            if "json" in kwargs:
                body["json"] = kwargs["json"]
            elif kwargs.get("data") is not None:
                data = kwargs["data"]
                body["content"] = data.encode() if isinstance(data, str) else data
            response = client.request(kwargs["method"], kwargs["url"], params=kwargs.get("params") or None,
                                      headers=kwargs.get("headers"), **body)
            seen[str(response.status_code)] = seen.get(str(response.status_code), 0) + 1
            label = f"{operation} [{mode.value}] {response.request.method} {response.request.url}"
            checks: list[Any] = [not_a_server_error]
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
            # schemathesis could not derive a request of this mode (e.g. nothing to negate); nothing was sent
            continue
    assert seen, f"{operation}: no request was sent"
