"""Agent tools whose contents matter on their own: the portfolio after a paper fill, and the chain-path guard."""

from __future__ import annotations

from typing import Any

import pytest

from tests.agent.conftest import tool_result
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_get_portfolio_shows_a_paper_fill(make_client: Any, fake_exchange: Any, fake_llm: FakeOpenAI) -> None:
    fake_exchange.set_price("BTC/USDT", 60_000.0)
    client, trader = make_client(scopes="read,trade", llm=fake_llm, paper_initial_usdt="100000")
    approver, _ = client.app.state.api_keys.create("risk-officer", "approve")
    made = client.post("/v1/proposals", json={"symbol": "BTC/USDT", "side": "buy", "qty": 0.01}, headers=_auth(trader))
    done = client.post(f"/v1/approvals/{made.json()['order']['id']}/approve", headers=_auth(approver))
    assert done.status_code == 200 and done.json()["order"]["state"] == "filled", done.text
    [fill] = list(client.app.state.db["fills"].find({}))
    seen: dict[str, Any] = {}

    def answer(body: dict[str, Any]) -> Reply:
        seen.update(tool_result(body, "get_portfolio"))
        return Reply(content="You hold 0.01 BTC.", reasoning="from get_portfolio")

    fake_llm.script(Reply(tool_calls=[ToolCall("get_portfolio", {})], reasoning="book"), answer)
    body = client.post("/v1/ask", json={"question": "What do I hold?"}, headers=_auth(trader)).json()
    assert seen["ok"] is True
    result = seen["result"]
    assert body["tools_used"][0]["tool"] == "get_portfolio" and body["tools_used"][0]["result"] == result
    [row] = result["positions"]
    assert row["symbol"] == "BTC/USDT" and row["qty"] == pytest.approx(0.01, abs=1e-12)
    price, fee = float(fill["price"]), float(fill["fee_cost"])
    assert fill["fee_currency"] == "USDT" and fee > 0
    # the cost basis carries the fee; the mark is the venue's price now
    assert row["avg_cost"] == pytest.approx(price + fee / 0.01, rel=1e-9)
    assert row["fees_quote"] == pytest.approx(fee, rel=1e-6)
    assert row["mark"] == pytest.approx(60_000.0, rel=1e-3) and row["value"] == pytest.approx(0.01 * row["mark"])
    assert row["unrealised_pnl"] == pytest.approx((row["mark"] - row["avg_cost"]) * 0.01, abs=1e-6)
    [venue] = result["cash"]
    assert result["cash"][venue]["USDT"] == pytest.approx(100_000.0 - 0.01 * price - fee, abs=1e-6), result
    assert result["cash"][venue]["BTC"] == pytest.approx(0.01, abs=1e-12)
    assert result["equity"] == pytest.approx(result["cash"][venue]["USDT"] + row["value"], abs=1e-6)
    assert result["equity"] < 100_000.0  # fee and spread paid


def test_vol_surface_reads_chain_files_only_inside_the_data_dir(
    make_client: Any, fake_llm: FakeOpenAI, isolated_settings: Any, tmp_path: Any
) -> None:
    from tests.options.conftest import chain_to_csv, make_chain

    data_dir = isolated_settings
    (data_dir / "chains").mkdir(parents=True, exist_ok=True)
    csv = chain_to_csv(make_chain())
    (data_dir / "chains" / "btc.csv").write_text(csv)
    outside = tmp_path / "outside.csv"  # a valid chain, but not in DATA_DIR
    outside.write_text(csv)
    (data_dir / "chains" / "link.csv").symlink_to(outside)
    asked = [
        str(outside),
        "../outside.csv",
        "chains/link.csv",
        "/etc/passwd",
        "chains/btc.csv",
        str(data_dir / "chains" / "btc.csv"),
    ]
    fake_llm.script(
        *(Reply(tool_calls=[ToolCall("vol_surface", {"chain_csv": p})], reasoning=p) for p in asked),
        Reply(content="done", reasoning="r"),
    )
    client, key = make_client(llm=fake_llm, llm_max_tool_calls="10")
    body = client.post("/v1/ask", json={"question": "surface?"}, headers=_auth(key)).json()
    uses = [u for u in body["tools_used"] if u["tool"] == "vol_surface"]
    assert [u["args"]["chain_csv"] for u in uses] == asked
    for use in uses[:4]:  # refused, and told why, as data the model can read
        assert use["ok"] is False, use
        assert "outside the data directory (DATA_DIR)" in use["result"] and use["args"]["chain_csv"] in use["result"]
    for use in uses[4:]:
        assert use["ok"] is True and use["result"]["arbitrage_free"] is True and use["result"]["n_expiries"] > 0
    refusals = list(client.app.state.db["audit_log"].find({"action": "agent_tool_call", "outcome": "error"}))
    assert len(refusals) == 4
