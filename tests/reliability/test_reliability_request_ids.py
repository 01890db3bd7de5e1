"""Request ids: a given `X-Request-ID`, or a generated one, comes back in the response header and is the
`request_id` of the JSON log lines of that request (its access line and whatever the handler logs)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter

from tests.reliability.conftest import ClientFactory, LogCapture, auth


def _lines(capture: LogCapture) -> list[dict[str, Any]]:
    out = []
    for line in capture.lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_request_id_given_or_generated_is_echoed_and_logged(make_client: ClientFactory,
                                                             log_capture: LogCapture) -> None:
    client, key = make_client()
    router = APIRouter()

    @router.get("/probe-log", include_in_schema=False)
    def probe() -> dict[str, bool]:
        logging.getLogger("tests.probe").warning("inside the handler")
        return {"ok": True}

    client.app.include_router(router)

    given = client.get("/probe-log", headers={"X-Request-ID": "req-given-42"})
    assert given.status_code == 200 and given.headers["x-request-id"] == "req-given-42"
    generated = client.get("/v1/conversations/none", headers=auth(key))
    assert generated.status_code == 404
    rid = generated.headers["x-request-id"]
    assert rid and rid != "req-given-42" and rid != "-"
    other = client.get("/health")
    assert other.headers["x-request-id"] not in (rid, "req-given-42")  # one id per request

    lines = _lines(log_capture)
    mine = [entry for entry in lines if entry.get("request_id") == "req-given-42"]
    assert any(e["logger"] == "tests.probe" and e["msg"] == "inside the handler" for e in mine), mine
    access = [e for e in mine if e["logger"] == "agent.access"]
    assert len(access) == 1 and access[0]["msg"].startswith("GET /probe-log 200 ")
    gen = [e for e in lines if e.get("request_id") == rid and e["logger"] == "agent.access"]
    assert len(gen) == 1 and gen[0]["msg"].startswith("GET /v1/conversations/none 404 "), gen
    assert {"ts", "level", "logger", "request_id", "msg"} <= set(gen[0])
