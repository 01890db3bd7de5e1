"""CLI (agent.cli.main), HTTP (router on a minimal FastAPI app) and agent tools for options."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agent.api.auth import ApiKeyStore
from agent.api.options import router
from agent.cli import main
from tests.options.conftest import chain_to_csv, make_chain
from tools.registry import get_tool


def test_cli_price_greeks_iv(capsys):
    assert (
        main(
            [
                "option",
                "price",
                "--type",
                "call",
                "--underlying",
                "100",
                "--strike",
                "110",
                "--days",
                "30",
                "--vol",
                "0.5",
                "--json",
            ]
        )
        == 0
    )
    price = json.loads(capsys.readouterr().out)["price"]
    assert 1.0 < price < 4.0
    assert (
        main(
            [
                "option",
                "greeks",
                "--type",
                "call",
                "--underlying",
                "100",
                "--strike",
                "110",
                "--days",
                "30",
                "--vol",
                "0.5",
                "--inverse",
                "--json",
            ]
        )
        == 0
    )
    g = json.loads(capsys.readouterr().out)
    assert 0 < g["delta"] < 0.5 and g["coin"]["delta_coin"] < g["delta"]
    assert (
        main(
            [
                "option",
                "iv",
                "--type",
                "call",
                "--underlying",
                "100",
                "--strike",
                "110",
                "--days",
                "30",
                "--price",
                str(price),
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["implied_vol"] == pytest.approx(0.5, rel=1e-9)


def test_cli_bad_input_exit_2(capsys, tmp_path):
    assert (
        main(
            [
                "option",
                "price",
                "--type",
                "call",
                "--underlying",
                "100",
                "--strike",
                "110",
                "--days",
                "-1",
                "--vol",
                "0.5",
            ]
        )
        == 2
    )
    assert "expiry_days" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "option",
                "price",
                "--type",
                "straddle",
                "--underlying",
                "100",
                "--strike",
                "1",
                "--days",
                "1",
                "--vol",
                "0.5",
            ]
        )
    assert exc.value.code == 2
    assert main(["option", "surface", "--chain", str(tmp_path / "missing.csv")]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    assert main(["option", "surface", "--chain", str(bad), "--json"]) == 2
    assert "lacks column" in capsys.readouterr().err
    # a price above the forward has no implied vol: exit 1 with the reason
    assert (
        main(
            [
                "option",
                "iv",
                "--type",
                "call",
                "--underlying",
                "100",
                "--strike",
                "110",
                "--days",
                "30",
                "--price",
                "150",
            ]
        )
        == 1
    )
    assert "upper bound" in capsys.readouterr().out


def test_cli_surface_json_and_chart(capsys, tmp_path):
    path = tmp_path / "chain.csv"
    path.write_text(chain_to_csv(make_chain()))
    chart = tmp_path / "out" / "smile.png"
    assert main(["option", "surface", "--chain", str(path), "--json", "--chart", str(chart)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arbitrage_free"] is True
    assert out["within_spread_frac"] == 1.0
    assert out["rmse_vol_pts"] < 0.05
    assert chart.exists() and (tmp_path / "out" / "smile_surface.png").exists()


@pytest.fixture()
def client(mongo_db):
    app = FastAPI()
    app.include_router(router)
    app.state.api_keys = ApiKeyStore(mongo_db)
    key, _ = app.state.api_keys.create("tester", "read")
    c = TestClient(app)
    c.headers["Authorization"] = f"Bearer {key}"
    return c


def test_http_price_iv_surface(client):
    body = {"option_type": "put", "underlying": 9350, "strike": 8000, "expiry_days": 30, "vol": 0.8}
    r = client.post("/v1/options/price", json=body)
    assert r.status_code == 200, r.text
    price = r.json()["price"]
    assert r.json()["delta"] < 0
    r = client.post("/v1/options/iv", json={**{k: v for k, v in body.items() if k != "vol"}, "price": price})
    assert r.status_code == 200 and r.json()["implied_vol"] == pytest.approx(0.8, rel=1e-9)
    r = client.post("/v1/options/iv", json={**{k: v for k, v in body.items() if k != "vol"}, "price": 1e6})
    assert r.status_code == 200 and r.json()["ok"] is False and r.json()["reason_code"] == "above_max"
    r = client.post(
        "/v1/options/surface",
        json={
            "chain_csv_text": chain_to_csv(make_chain()),
            "queries": [{"strike": 9350, "expiry_days": 45}],
            "full": True,
        },
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["arbitrage_free"] is True and out["within_spread_frac"] == 1.0
    assert 20 < out["queries"][0]["implied_vol_pct"] < 200
    assert out["ssvi"]["gamma"] <= 0.5


def test_http_errors_and_auth(client):
    r = client.post(
        "/v1/options/price", json={"option_type": "call", "underlying": -1, "strike": 1, "expiry_days": 1, "vol": 0.5}
    )
    assert r.status_code == 422
    r = client.post("/v1/options/surface", json={"chain_csv_text": "alpha,beta\n1,2\n"})
    assert r.status_code == 422 and "lacks column" in r.json()["detail"]
    anon = TestClient(client.app)
    assert anon.post("/v1/options/iv", json={}).status_code == 401


def test_tools_registered_and_invoke(tmp_path, monkeypatch, request):
    from core import settings as settings_mod

    monkeypatch.setenv("DATA_DIR", str(tmp_path))  # vol_surface reads model-supplied chain paths only from DATA_DIR
    settings_mod.reset_settings()
    request.addfinalizer(settings_mod.reset_settings)
    import tools.options  # noqa: F401  (registers the tools)

    spec = get_tool("price_option")
    assert spec is not None
    res = spec.invoke({"option_type": "call", "underlying": 100, "strike": 100, "expiry_days": 365, "vol": 0.2})
    assert res["ok"] and res["result"]["price"] == pytest.approx(7.965567455405804, rel=1e-9)
    bad = spec.invoke({"option_type": "call", "underlying": 100, "strike": 100, "expiry_days": 365, "vol": 99})
    assert not bad["ok"] and "vol" in bad["error"]
    iv = get_tool("implied_vol")
    assert iv is not None
    r = iv.invoke(
        {"option_type": "call", "underlying": 100, "strike": 100, "expiry_days": 365, "price": 7.965567455405804}
    )
    assert r["ok"] and r["result"]["implied_vol"] == pytest.approx(0.2, rel=1e-9)
    vs = get_tool("vol_surface")
    assert vs is not None
    path = tmp_path / "c.csv"
    path.write_text(chain_to_csv(make_chain()))
    r = vs.invoke({"chain_csv": str(path), "queries": [{"strike": 10000, "expiry_days": 60}]})
    assert r["ok"] and r["result"]["arbitrage_free"] and len(r["result"]["queries"]) == 1
    r = vs.invoke({"chain_csv": str(tmp_path / "nope.csv")})
    assert not r["ok"] and "not found" in r["error"]
    r = vs.invoke({})
    assert not r["ok"]
