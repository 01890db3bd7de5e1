"""HTTP endpoints (scopes, idempotent approvals), the propose-only tool, and the desk CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pymongo.database import Database

from agent.api.auth import ApiKeyStore
from tests.money.conftest import Desk
from trading.oms import factory


@pytest.fixture()
def wired(mongo_db: Database[dict[str, Any]]) -> Iterator[tuple[TestClient, dict[str, str], Desk]]:
    from agent.api import trading as trading_api

    desk = Desk(mongo_db)
    # the service's async work runs on the shared exchange loop, as in production
    desk.svc = desk.new_service()
    factory.run(desk.svc.refresh_market(["BTC/USDT"]))
    app = FastAPI()
    app.include_router(trading_api.router)
    store = ApiKeyStore(mongo_db)
    app.state.api_keys = store
    app.state.trading = desk.svc
    keys = {scope: store.create(f"{scope}-user", scope)[0] for scope in ("read", "trade", "approve", "admin")}
    factory.set_trading_service(desk.svc)
    with TestClient(app) as client:
        yield client, keys, desk
    factory.set_trading_service(None)


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_http_money_path_with_scopes(wired: tuple[TestClient, dict[str, str], Desk]) -> None:
    client, keys, _desk = wired
    body = {"symbol": "btcusdt", "side": "buy", "qty": 0.1}
    assert client.post("/v1/proposals", json=body, headers=h(keys["read"])).status_code == 403
    assert client.post("/v1/proposals", json=body).status_code == 401
    bad = client.post("/v1/proposals", json={**body, "type": "limit"}, headers=h(keys["trade"]))
    assert bad.status_code == 422
    r = client.post("/v1/proposals", json=body, headers=h(keys["trade"]))
    assert r.status_code == 201, r.text
    prop = r.json()
    assert prop["status"] == "pending_approval" and prop["order"]["request"]["symbol"] == "BTC/USDT"
    oid = prop["order"]["id"]
    assert client.post(f"/v1/approvals/{oid}/approve", headers=h(keys["trade"])).status_code == 403
    a1 = client.post(f"/v1/approvals/{oid}/approve", headers=h(keys["approve"]))
    a2 = client.post(f"/v1/approvals/{oid}/approve", headers=h(keys["approve"]))
    assert a1.json()["status"] == "executed" and a1.json()["order"]["state"] == "filled"
    assert a2.json()["status"] == "already_decided"
    assert client.post("/v1/approvals/nope/approve", headers=h(keys["approve"])).status_code == 404
    orders = client.get("/v1/orders", headers=h(keys["read"])).json()["orders"]
    assert [o["id"] for o in orders] == [oid]
    pos = client.get("/v1/positions", headers=h(keys["read"])).json()
    assert pos["positions"][0]["qty"] == pytest.approx(0.1)
    risk = client.get("/v1/risk", headers=h(keys["read"])).json()
    assert risk["desk_state"] == "active"
    assert "factor" in risk["vol_regime"]["BTC/USDT"]  # the regime (here: no candles, factor 1) is visible
    assert client.post("/v1/desk/halt", headers=h(keys["approve"])).status_code == 403
    assert client.post("/v1/desk/halt", json={"reason": "test"}, headers=h(keys["admin"])).json()["state"] == "halted"
    blocked = client.post("/v1/proposals", json=body, headers=h(keys["trade"])).json()
    assert blocked["status"] == "rejected"
    assert client.post("/v1/desk/resume", headers=h(keys["admin"])).json()["state"] == "active"
    killed = client.post("/v1/desk/kill", headers=h(keys["admin"])).json()
    assert killed["desk"]["state"] == "halted"


def test_tool_only_proposes(wired: tuple[TestClient, dict[str, str], Desk]) -> None:
    from tools.registry import get_tool
    from tools.trading import propose_order  # noqa: F401  (registers the tools)

    _client, _keys, desk = wired
    spec = get_tool("propose_order")
    assert spec is not None and spec.proposes_orders
    out = spec.invoke({"symbol": "BTC/USDT", "side": "buy", "qty": 0.05, "note": "test"})
    assert out["ok"] and out["result"]["status"] == "pending_approval"
    assert desk.db["paper_orders"].count_documents({}) == 0  # nothing sent
    too_big = spec.invoke({"symbol": "BTC/USDT", "side": "buy", "qty": 5})
    assert too_big["ok"] and too_big["result"]["status"] == "rejected"
    assert "max_order_notional" in " ".join(too_big["result"]["reasons"])
    assert not spec.invoke({"symbol": "BTC/USDT", "side": "buy", "qty": -1})["ok"]
    risk = get_tool("get_risk_status")
    assert risk is not None and risk.invoke({})["result"]["pending_approvals"] == 1


def test_cli_desk_and_orders(
    wired: tuple[TestClient, dict[str, str], Desk], capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    assert main(["desk", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["desk_state"] == "active"
    assert main(["orders", "propose", "--symbol", "BTC/USDT", "--qty", "0.01", "--as", "cli", "--json"]) == 0
    oid = json.loads(capsys.readouterr().out)["order"]["id"]
    assert main(["orders", "approve", oid, "--as", "boss", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["order"]["state"] == "filled"
    assert main(["desk", "halt", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "halted"
    assert main(["orders", "list", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["orders"]) == 1
