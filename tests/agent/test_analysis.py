"""The deterministic analysis without an LLM: every section carries real values from its tool, or says why not."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from tests.fakes.rss_server import FakeFeeds, rss


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _closes(candles: Any) -> list[float]:
    rows = candles.get("candles", candles) if isinstance(candles, dict) else candles
    return [float(r[4] if isinstance(r, list | tuple) else r["close"]) for r in rows]


def test_no_llm_analysis_has_every_section(make_client: Any, fake_exchange: Any) -> None:
    fake_exchange.set_price("BTC/USDT", 60_000.0)
    feed = rss(
        "Coin Wire",
        [
            {
                "title": "Bitcoin rallies as ETF inflows surge",
                "link": "https://coin.example/etf",
                "summary": "Bitcoin BTC price jumped strongly on record ETF inflows, a bullish surge.",
                "published": datetime.now(UTC),
            }
        ],
    )
    with FakeFeeds({"wire": feed}) as feeds:
        client, key = make_client(scopes="read,trade", allow_private_fetch="true")
        from knowledge.sources import RSSFeed

        ingested = client.app.state.news.ingest(
            sources=[RSSFeed("Coin Wire", feeds.feed_url("wire"), allow_private=True)]
        )
        assert ingested["stored"] == 1, ingested
    approver, _ = client.app.state.api_keys.create("risk-officer", "approve")
    filled = client.post("/v1/proposals", json={"symbol": "BTC/USDT", "side": "buy", "qty": 0.01}, headers=_auth(key))
    approved = client.post(f"/v1/approvals/{filled.json()['order']['id']}/approve", headers=_auth(approver))
    assert approved.status_code == 200 and approved.json()["order"]["state"] == "filled", approved.text
    waiting = client.post("/v1/proposals", json={"symbol": "ETH/USDT", "side": "buy", "qty": 0.1}, headers=_auth(key))
    assert waiting.json()["status"] == "pending_approval"

    body = client.post("/v1/ask", json={"question": "How is BTC/USDT doing?"}, headers=_auth(key)).json()
    assert body["mode"] == "deterministic" and body["narrative"] is False
    sections = body["report"]["sections"]
    text = body["answer"]
    raw = {u["tool"]: u["result"] for u in body["tools_used"]}

    # price
    assert sections["ticker"]["data"]["last"] == 60_000.0 and "Price 60,000.00 on binance" in text

    # volatility and 7-day change, recomputed here from the candles the tool returned
    closes = _closes(raw["get_candles"])
    assert len(closes) == 168
    rets = np.diff(np.log(closes))
    vol = float(np.std(rets, ddof=1) * math.sqrt(24 * 365))
    change = (closes[-1] / closes[0] - 1) * 100
    candles = sections["candles"]["data"]
    assert vol > 0 and candles["realised_vol_annual"] == pytest.approx(vol, rel=1e-9)
    assert candles["change_7d_pct"] == pytest.approx(change, rel=1e-9) and candles["bars"] == 168
    assert f"realised volatility {vol * 100:,.1f}% annualised (168 hourly bars)" in text
    assert f"7-day change {change:,.2f}%" in text

    # forecast: no model is trained in this test, so the section says so and shows no number
    forecast = sections["forecast"]
    assert forecast["ok"] is False and "no trained model for BTC/USDT" in forecast["note"]
    assert f"- Forecast unavailable: {forecast['note']}" in text and "- Forecast 24" not in text
    assert "_Not available: forecast._" in text

    # sentiment of the one ingested (positive) article
    [senti] = sections["sentiment"]["data"]["symbols"]
    assert senti["symbol"] == "BTC" and senti["n_docs"] == 1 and senti["positive"] == 1 and senti["index"] > 0
    assert f"News sentiment BTC: index {senti['index']:,.3f} over 1 docs" in text

    # news: the article, cited with its source and url
    [cite] = sections["news"]["data"]["citations"]
    assert cite["title"] == "Bitcoin rallies as ETF inflows surge" and cite["source"] == "Coin Wire"
    assert "  - Bitcoin rallies as ETF inflows surge (Coin Wire, " in text
    assert any(c.get("url") == "https://coin.example/etf" for c in body["citations"])

    # risk status: desk state and the proposal waiting for a person
    risk = sections["risk"]["data"]
    assert risk["desk_state"] == "active" and risk["pending_approvals"] == 1
    assert "Risk: desk ACTIVE; pending approvals 1; daily loss 0.00%" in text

    # positions: the paper fill
    positions = sections["positions"]["data"]
    [row] = positions["positions"]
    assert row["symbol"] == "BTC/USDT" and row["qty"] == pytest.approx(0.01)
    assert f"Positions: BTC/USDT 0.010000; equity {positions['equity']:,.2f}" in text
    assert 99_000 < positions["equity"] < 100_000
    assert "narrative is off" in text
