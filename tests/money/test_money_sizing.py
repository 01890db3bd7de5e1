"""Position sizing: the pure functions, the `size_position` tool and POST /v1/risk/size (same functions)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pymongo.database import Database

from agent.api.auth import ApiKeyStore
from tools.registry import get_tool
from trading.risk import sizing


def test_realised_vol_is_annualised_std_of_log_returns() -> None:
    rng = np.random.default_rng(7)
    rets = rng.normal(0.0, 0.01, 2000)
    closes = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(rets)]))
    vol = sizing.realised_vol(closes.tolist(), 365.0)
    assert vol == pytest.approx(float(np.std(rets, ddof=1)) * math.sqrt(365.0), rel=1e-9)
    assert sizing.realised_vol([100.0, 101.0, 100.0, 101.0], 1.0) == pytest.approx(
        float(np.std(np.diff(np.log([100.0, 101.0, 100.0, 101.0])), ddof=1))
    )
    with pytest.raises(ValueError):
        sizing.realised_vol([100.0, 101.0])
    with pytest.raises(ValueError):
        sizing.realised_vol([100.0, 0.0, 101.0])


def test_atr_position_loses_the_risk_fraction_over_the_atr_move() -> None:
    qty = sizing.atr_position(100_000.0, 0.01, 500.0, 2.0)
    assert qty == pytest.approx(1.0)
    assert qty * 500.0 * 2.0 == pytest.approx(100_000.0 * 0.01)
    assert sizing.atr_position(100_000.0, 0.01, 500.0, 4.0) == pytest.approx(0.5)
    assert sizing.atr_position(0.0, 0.01, 500.0) == 0.0
    assert sizing.atr_position(100_000.0, 0.01, 0.0) == 0.0


def test_size_position_tool_returns_size_and_derivation() -> None:
    from tools.trading import size_position  # noqa: F401  (registers the tool)

    spec = get_tool("size_position")
    assert spec is not None and not spec.proposes_orders
    ff = spec.invoke({"method": "fixed_fractional", "equity": 100_000, "entry": 50_000, "risk_fraction": 0.01,
                      "stop": 49_000})
    assert ff["ok"] and ff["result"]["qty"] == pytest.approx(1.0)
    assert ff["result"]["notional"] == pytest.approx(50_000.0) and "|entry - stop|" in ff["result"]["derivation"]
    bars = 20
    atr = spec.invoke({"method": "atr", "equity": 100_000, "entry": 10.0, "risk_fraction": 0.01,
                       "highs": [11.0] * bars, "lows": [9.0] * bars, "closes": [10.0] * bars})
    assert atr["ok"] and atr["result"]["inputs"]["atr"] == pytest.approx(2.0)
    assert atr["result"]["qty"] == pytest.approx(100_000 * 0.01 / (2.0 * 2.0))
    vt = spec.invoke({"method": "vol_target", "equity": 100_000, "entry": 50_000, "target_vol": 0.2,
                      "realised_vol": 0.8})
    assert vt["ok"] and vt["result"]["notional"] == pytest.approx(25_000.0)
    kelly = spec.invoke({"method": "kelly", "equity": 100_000, "entry": 50_000, "win_prob": 0.6,
                         "win_loss_ratio": 1.0, "kelly_fraction": 1.0, "kelly_cap": 0.1})
    assert kelly["ok"] and kelly["result"]["fraction_of_equity"] == pytest.approx(0.1)  # 0.2 capped at 0.1
    # bad input is refused with a message, never sized
    for bad in (
        {"method": "fixed_fractional", "equity": 100_000, "entry": 50_000, "risk_fraction": 0.01},
        {"method": "kelly", "equity": -1, "entry": 50_000, "win_prob": 0.6, "win_loss_ratio": 1.0},
        {"method": "fixed_fractional", "equity": 1e5, "entry": 5e4, "risk_fraction": 0.5, "stop": 4e4},
        {"method": "atr", "equity": 1e5, "entry": 10, "risk_fraction": 0.01, "highs": [11.0] * 5,
         "lows": [9.0] * 5, "closes": [10.0] * 5},
        {"method": "vol_target", "equity": 1e5, "entry": 10, "target_vol": 0.2, "closes": [10.0] * 10},
        {"method": "kelly", "equity": 1e5, "entry": 5e4, "win_prob": 0.6, "win_loss_ratio": 1.0, "approved": True},
    ):
        out = spec.invoke(bad)
        assert not out["ok"] and out["error"], bad


@pytest.fixture()
def client(mongo_db: Database[dict[str, Any]]) -> Any:
    from agent.api import trading as trading_api

    app = FastAPI()
    app.include_router(trading_api.router)
    store = ApiKeyStore(mongo_db)
    app.state.api_keys = store
    keys = {scope: store.create(f"{scope}-user", scope)[0] for scope in ("read", "trade")}
    with TestClient(app) as c:
        yield c, keys


def test_size_route_uses_the_same_functions(client: Any) -> None:
    c, keys = client
    body = {"method": "fixed_fractional", "equity": 100_000, "entry": 50_000, "risk_fraction": 0.01, "stop": 48_000}
    assert c.post("/v1/risk/size", json=body).status_code == 401
    r = c.post("/v1/risk/size", json=body, headers={"Authorization": f"Bearer {keys['read']}"})
    assert r.status_code == 200, r.text
    assert r.json()["qty"] == pytest.approx(sizing.fixed_fractional(100_000, 0.01, 50_000, 48_000))
    assert "nothing was proposed" in r.json()["note"]
    for bad in ({**body, "stop": 50_000}, {**body, "risk_fraction": 0.9}, {"method": "nope", "equity": 1, "entry": 1},
                {"method": "vol_target", "equity": 1e5, "entry": 10, "target_vol": 0.2, "closes": [10.0] * 10}):
        resp = c.post("/v1/risk/size", json=bad, headers={"Authorization": f"Bearer {keys['trade']}"})
        assert resp.status_code in (403, 422)
        resp = c.post("/v1/risk/size", json=bad, headers={"Authorization": f"Bearer {keys['read']}"})
        assert resp.status_code == 422, (bad, resp.text)
        assert resp.json()["detail"]
