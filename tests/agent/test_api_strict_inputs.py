"""Request bodies and tool arguments refuse unknown fields (naming the close valid one) and non-finite or unbounded
numbers; nothing is recorded for a refused request."""

from __future__ import annotations

from typing import Any

import pytest

from tools.registry import all_tools


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


ORDER = {"symbol": "BTC/USDT", "side": "buy", "qty": 0.001}


@pytest.mark.parametrize(
    "extra,needles",
    [
        ({"stoploss": 30000}, ["stoploss", "did you mean 'stop_loss'"]),
        ({"leverage": 10}, ["unknown field 'leverage'", "valid fields:"]),
        ({"$where": "1"}, ["unknown field '$where'"]),
    ],
)
def test_proposal_with_an_unknown_field_is_422_and_records_nothing(
    make_client: Any, extra: dict[str, Any], needles: list[str]
) -> None:
    client, key = make_client(scopes="read,trade")
    r = client.post("/v1/proposals", json={**ORDER, **extra}, headers=_auth(key))
    assert r.status_code == 422, r.text
    for needle in needles:
        assert needle in r.json()["detail"], r.json()
    assert client.app.state.db["orders"].count_documents({}) == 0


@pytest.mark.parametrize(
    "raw,needle",
    [
        ('{"symbol":"BTC/USDT","side":"buy","qty":Infinity}', "qty"),
        ('{"symbol":"BTC/USDT","side":"buy","qty":NaN}', "qty"),
        ('{"symbol":"BTC/USDT","side":"buy","qty":0.001,"type":"limit","limit_price":1e308}', "limit_price"),
        ('{"symbol":"BTC/USDT","side":"buy","qty":0.001,"stop_loss":Infinity}', "stop_loss"),
        ('{"symbol":"BTC/USDT","side":"sell","qty":0.001,"stop_loss":100}', "protect a buy"),
        ('{"symbol":"BTC/USDT","side":"buy","qty":0.001,"stop_loss":200,"take_profit":100}', "below take_profit"),
    ],
)
def test_non_finite_and_out_of_range_numbers_are_422_not_a_database_error(
    make_client: Any, raw: str, needle: str
) -> None:
    client, key = make_client(scopes="read,trade")
    r = client.post("/v1/proposals", content=raw, headers={**_auth(key), "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"], r.json()
    assert client.app.state.db["orders"].count_documents({}) == 0


def test_every_request_body_in_the_api_forbids_unknown_fields(make_client: Any) -> None:
    client, _key = make_client()
    schema = client.app.openapi()
    components = schema.get("components", {}).get("schemas", {})
    bodies = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            content = (op.get("requestBody") or {}).get("content", {})
            for media in content.values():
                ref = media.get("schema", {}).get("$ref")
                if ref:
                    bodies.append((f"{method.upper()} {path}", ref.rsplit("/", 1)[-1]))
    assert len(bodies) >= 10, bodies
    loose = [(op, name) for op, name in bodies if components[name].get("additionalProperties") is not False]
    assert loose == [], f"request bodies that accept unknown fields: {loose}"


def test_every_tool_refuses_unknown_arguments_with_a_suggestion() -> None:
    import tools  # noqa: F401  (registers the tools)

    specs = all_tools()
    assert "propose_order" in specs
    for name, spec in specs.items():
        assert spec.args.model_config.get("extra") == "forbid", name
    out = specs["propose_order"].invoke({**ORDER, "stoploss": 30000})
    assert out["ok"] is False and "did you mean 'stop_loss'" in out["error"]
