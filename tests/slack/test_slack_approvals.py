"""The approve-trade workflow end to end: signed /trade and button clicks -> trading service -> paper venue,
with what reached the fake Slack API checked at each step."""

from __future__ import annotations

import time
from typing import Any

from tests.slack.conftest import (
    ADMIN,
    APPROVER,
    APPROVER2,
    OUTSIDER,
    TRADER,
    SlackDesk,
    blocks_text,
    buttons,
)


def _card(desk: SlackDesk, state_text: str, count: int = 1) -> dict[str, Any]:
    """The latest chat.update whose card text contains `state_text`."""
    updates = desk.slack.wait_for("chat.update", count, predicate=lambda p: state_text in blocks_text(p))
    return updates[-1]


def _propose(desk: SlackDesk, text: str = "buy 0.01 BTC/USDT", user: str = TRADER) -> tuple[str, str]:
    resp = desk.command("/trade", text, user=user)
    assert resp.status_code == 200 and resp.text == ""
    card = _card(desk, "Pending approval")
    [approve, reject] = buttons(card)
    assert approve["action_id"] == "trade_approve" and reject["action_id"] == "trade_reject"
    assert approve["value"] == reject["value"]
    return approve["value"], card["ts"]


def _audit(desk: SlackDesk, action: str) -> list[dict[str, Any]]:
    return list(desk.app.state.db["audit_log"].find({"action": action}, {"_id": 0}))


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_approve_path_to_executed_paper_order_with_retry_and_double_click(slack_desk: Any) -> None:
    desk: SlackDesk = slack_desk()
    svc = desk.attach_trading()
    order_id, ts = _propose(desk)

    card = desk.slack.calls_of("chat.update")[-1]
    text = blocks_text(card)
    for expected in ("BTC/USDT", "BUY", "0.01", "Risk checks", "headroom", "Forecast", "Sentiment", f"<@{TRADER}>"):
        assert expected in text, (expected, text)
    assert svc.store.get_order(order_id)["state"] == "pending_approval"

    action_ts = "1700000000.000001"
    resp = desk.click("trade_approve", order_id, APPROVER, message_ts=ts, action_ts=action_ts, trigger_id="trig-1")
    assert resp.status_code == 200
    done = _card(desk, "Executed")
    assert done["ts"] == ts and done["channel"] == "C1"
    assert buttons(done) == []
    assert f"approved by <@{APPROVER}>" in blocks_text(done) and "fills:" in blocks_text(done)
    order = svc.store.get_order(order_id)
    assert order["state"] == "filled" and abs(order["filled_qty"] - 0.01) < 1e-12
    assert order["approved_by"] == APPROVER
    fills = list(svc.store.fills.find({"order_id": order_id}))
    assert len(fills) == 1 and fills[0]["venue"] == "paper"
    assert svc.positions()["positions"][0]["symbol"] == "BTC/USDT"

    # Slack retries the same delivery: dropped before any handler runs, nothing changes.
    updates_before = len(desk.slack.calls_of("chat.update"))
    retry = desk.click("trade_approve", order_id, APPROVER, message_ts=ts, action_ts=action_ts, trigger_id="trig-1",
                       **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200
    # A second, separate click (double click): the guarded transition refuses; the clicker is told.
    desk.click("trade_approve", order_id, APPROVER2, message_ts=ts)
    told = desk.slack.wait_for("chat.postEphemeral", predicate=lambda p: p.get("user") == APPROVER2)
    assert "already filled" in told[0]["text"]
    assert len(list(svc.store.fills.find({"order_id": order_id}))) == 1
    assert [c for c in desk.ephemerals_to(APPROVER)] == []
    assert len(desk.slack.calls_of("chat.update")) >= updates_before
    approvals = _audit(desk, "slack.trade.approve")
    assert [a["outcome"] for a in approvals] == ["executed", "already_decided"]
    assert approvals[0]["actor"] == f"slack:{APPROVER}" and approvals[0]["details"]["order_id"] == order_id
    keys = [d["_id"] for d in desk.app.state.db["slack_deliveries"].find({})]
    assert len([k for k in keys if k.endswith(":trig-1")]) == 1  # the retry was recognised, not recorded again


def test_unauthorised_click_and_four_eyes_are_refused(slack_desk: Any) -> None:
    desk: SlackDesk = slack_desk(four_eyes="true")
    svc = desk.attach_trading(four_eyes=True)
    order_id, ts = _propose(desk, user=APPROVER)

    desk.click("trade_approve", order_id, OUTSIDER, message_ts=ts)
    refused = desk.slack.wait_for("chat.postEphemeral", predicate=lambda p: p.get("user") == OUTSIDER)
    assert "only desk approvers" in refused[0]["text"]
    desk.click("trade_approve", order_id, APPROVER, message_ts=ts)  # the requester approving their own trade
    own = desk.slack.wait_for("chat.postEphemeral", predicate=lambda p: p.get("user") == APPROVER)
    assert "Four-eyes" in own[0]["text"]
    assert svc.store.get_order(order_id)["state"] == "pending_approval"
    outcomes = [(a["actor"], a["outcome"]) for a in _audit(desk, "slack.trade.approve")]
    assert outcomes == [(f"slack:{OUTSIDER}", "refused"), (f"slack:{APPROVER}", "refused")]

    desk.click("trade_approve", order_id, APPROVER2, message_ts=ts)
    _card(desk, "Executed")
    assert svc.store.get_order(order_id)["state"] == "filled"


def test_reject_updates_card_and_audits(slack_desk: Any) -> None:
    desk: SlackDesk = slack_desk()
    svc = desk.attach_trading()
    order_id, ts = _propose(desk, "buy 0.5 ETH/USDT limit 2999")
    desk.click("trade_reject", order_id, APPROVER, message_ts=ts)
    card = _card(desk, "Rejected")
    assert f"rejected by <@{APPROVER}>" in blocks_text(card) and buttons(card) == []
    assert svc.store.get_order(order_id)["state"] == "rejected"
    assert svc.store.fills.count_documents({"order_id": order_id}) == 0
    assert _audit(desk, "slack.trade.reject")[0]["outcome"] == "rejected"
    # approving after the reject changes nothing
    desk.click("trade_approve", order_id, APPROVER2, message_ts=ts)
    told = desk.slack.wait_for("chat.postEphemeral", predicate=lambda p: p.get("user") == APPROVER2)
    assert "already rejected" in told[0]["text"]
    assert svc.store.get_order(order_id)["state"] == "rejected"


def test_expiry_rejects_on_its_own_and_edits_the_card(slack_desk: Any) -> None:
    desk: SlackDesk = slack_desk()
    svc = desk.attach_trading(approval_ttl_s=1)
    order_id, ts = _propose(desk)
    card = _card(desk, "Expired")  # nobody clicks: the periodic sweep expires it and edits the card
    assert card["ts"] == ts and buttons(card) == []
    assert svc.store.get_order(order_id)["state"] == "expired"
    assert _audit(desk, "slack.trade.expired")[0]["details"]["order_id"] == order_id
    desk.click("trade_approve", order_id, APPROVER, message_ts=ts)
    told = desk.slack.wait_for("chat.postEphemeral", predicate=lambda p: p.get("user") == APPROVER)
    assert "already expired" in told[0]["text"]
    assert svc.store.fills.count_documents({}) == 0


def test_gate_rejection_at_proposal_and_bad_input(slack_desk: Any) -> None:
    desk: SlackDesk = slack_desk()
    svc = desk.attach_trading()
    bad = desk.command("/trade", "buy lots BTC/USDT")
    assert bad.status_code == 200
    body = bad.json()
    assert body["response_type"] == "ephemeral" and "Usage: `/trade buy|sell" in body["text"]
    assert "`lots` is not a number" in body["text"]
    desk.command("/trade", "buy 1 BTC/USDT")  # 50k notional > 20k order limit
    card = _card(desk, "Rejected")
    assert "order notional" in blocks_text(card).lower() or "notional" in blocks_text(card)
    assert buttons(card) == []
    assert svc.store.orders.count_documents({"state": "rejected"}) == 1
    unknown = desk.command("/trade", "buy 0.01 BTC/USDT kraken")
    assert unknown.status_code == 200
    msg = desk.slack.wait_for("chat.postEphemeral", predicate=lambda p: "Unknown venue" in p.get("text", ""))
    assert "paper" in msg[0]["text"]


def test_desk_halt_is_admin_only_and_blocks_new_trades(slack_desk: Any) -> None:
    desk: SlackDesk = slack_desk()
    svc = desk.attach_trading()
    refused = desk.command("/desk", "halt", user=TRADER)
    assert "Only desk admins" in refused.json()["text"]
    assert svc.desk_state().value == "active"
    assert desk.command("/desk", "halt volatility", user=ADMIN).status_code == 200
    desk.slack.wait_for("chat.postMessage", predicate=lambda p: "halted the desk" in p.get("text", ""))
    assert svc.desk_state().value == "halted"
    desk.command("/trade", "buy 0.01 BTC/USDT")
    card = _card(desk, "Rejected")
    assert "halt" in blocks_text(card).lower()
    desk.command("/desk", "resume", user=ADMIN)
    desk.slack.wait_for("chat.postMessage", predicate=lambda p: "resumed the desk" in p.get("text", ""))
    assert svc.desk_state().value == "active"
    outcomes = [(a["action"], a["outcome"]) for a in desk.app.state.db["audit_log"].find(
        {"action": {"$in": ["slack.desk.halt", "slack.desk.resume"]}})]
    assert outcomes == [("slack.desk.halt", "refused"), ("slack.desk.halt", "ok"), ("slack.desk.resume", "ok")]


def test_trade_when_the_trading_service_cannot_start_is_a_friendly_refusal(slack_desk: Any, monkeypatch: Any) -> None:
    from trading.oms import factory

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("live trading refused: binance unreachable")

    factory.set_trading_service(None)
    monkeypatch.setattr(factory, "get_trading_service", refuse)
    desk: SlackDesk = slack_desk()
    assert desk.command("/trade", "buy 0.01 BTC/USDT").status_code == 200
    msg = desk.slack.wait_for("chat.postEphemeral", predicate=lambda p: p.get("user") == TRADER)
    assert "Trading is unavailable right now (RuntimeError: live trading refused" in msg[0]["text"]
    assert desk.command("/desk", "halt", user=ADMIN).status_code == 200
    desk.slack.wait_for("chat.postEphemeral", predicate=lambda p: p.get("user") == ADMIN)


def test_agent_proposal_in_a_thread_gets_a_card_that_approvers_act_on(slack_desk: Any, fake_llm: Any) -> None:
    from tests.fakes.openai_server import Reply, ToolCall

    fake_llm.script(
        Reply(tool_calls=[ToolCall("propose_order", {"symbol": "BTC/USDT", "side": "buy", "qty": 0.01,
                                                     "note": "momentum"})], reasoning="propose"),
        Reply(content="I proposed buying 0.01 BTC/USDT; an approver has to accept it."),
    )
    desk: SlackDesk = slack_desk(llm_api_key="sk-test-key-0123456789abcdef", llm_base_url=fake_llm.base_url,
                                 llm_max_retries="0", four_eyes="true", slack_approvers=f"{TRADER},{APPROVER}")
    svc = desk.attach_trading(four_eyes=True)
    root = "1700000900.000100"
    mention = {"type": "app_mention", "user": TRADER, "text": "<@UBOT> buy a little BTC", "ts": root,
               "channel": "C1", "event_ts": root}
    assert desk.event(mention, event_id="EvProp").status_code == 200
    card = _card(desk, "Pending approval")
    [approve, _reject] = buttons(card)
    order_id = approve["value"]
    order = svc.store.get_order(order_id)
    # the agent proposed it for the person who asked: the card names them, and four-eyes applies to them
    assert order["state"] == "pending_approval" and order["requester"] == f"slack:{TRADER}"
    assert f"<@{TRADER}>" in blocks_text(card)
    posted = desk.slack.calls_of("chat.postMessage")
    assert len(posted) == 2 and all(p.get("thread_ts") == root for p in posted)  # answer and card: in the thread
    assert svc.store.fills.count_documents({"order_id": order_id}) == 0  # the agent alone executed nothing

    desk.click("trade_approve", order_id, TRADER, message_ts=card["ts"])
    told = desk.slack.wait_for("chat.postEphemeral", predicate=lambda p: p.get("user") == TRADER)
    assert "Four-eyes" in told[-1]["text"]
    desk.click("trade_approve", order_id, OUTSIDER, message_ts=card["ts"])
    desk.slack.wait_for("chat.postEphemeral", predicate=lambda p: p.get("user") == OUTSIDER)
    assert svc.store.get_order(order_id)["state"] == "pending_approval"
    desk.click("trade_approve", order_id, APPROVER, message_ts=card["ts"])
    done = _card(desk, "Executed")
    assert done["ts"] == card["ts"]
    assert svc.store.get_order(order_id)["state"] == "filled"
    assert _audit(desk, "slack.trade.card")[0]["details"]["order_id"] == order_id


def _fields_of(desk: SlackDesk, order_id: str) -> list[str]:
    """The field texts of the latest card edit for `order_id`."""
    cards = desk.slack.wait_for("chat.update", predicate=lambda p: f"`{order_id}`" in blocks_text(p))
    return [f["text"] for b in cards[-1]["blocks"] if b.get("type") == "section" for f in b.get("fields", [])]


def test_card_shows_price_and_venue(slack_desk: Any) -> None:
    desk: SlackDesk = slack_desk()
    svc = desk.attach_trading()
    limit_id, _ts = _propose(desk, "buy 0.01 BTC/USDT limit 49990 paper")
    fields = _fields_of(desk, limit_id)
    assert "*Price*\nlimit 49,990.00" in fields, fields
    assert "*Venue*\npaper" in fields, fields
    desk.command("/trade", "buy 0.01 BTC/USDT")  # a market order: the gate's reference price, the router as venue
    pending = desk.slack.wait_for("chat.update", predicate=lambda p: "Pending approval" in blocks_text(p)
                                  and f"`{limit_id}`" not in blocks_text(p))
    market_id = buttons(pending[-1])[0]["value"]
    fields = _fields_of(desk, market_id)
    price = next(f for f in fields if f.startswith("*Price*"))
    order = svc.store.get_order(market_id)
    sized = order["decision"]["notional"] / 0.01  # the gate sized it at the ask plus its slippage allowance
    assert 50_000 < sized < 50_000 * 1.02
    assert price == f"*Price*\nmarket (sized at {sized:,.2f})", price
    assert "*Venue*\nsmart router (best venue, may split)" in fields


def test_venue_refusing_at_execution_edits_the_card_to_failed(slack_desk: Any) -> None:
    from trading.types import Balance

    desk: SlackDesk = slack_desk()
    svc = desk.attach_trading()
    order_id, ts = _propose(desk, "buy 0.01 BTC/USDT paper")
    # between proposal and approval the venue account is emptied outside the desk: the desk's own ledger (and so
    # the gate) still sees the cash; the venue refuses the order for lack of funds
    venue = svc.venues["paper"]
    venue._balances["USDT"] = Balance("USDT", 1.0, 0.0)  # type: ignore[attr-defined]
    desk.click("trade_approve", order_id, APPROVER, message_ts=ts)
    card = _card(desk, "Failed")
    assert card["ts"] == ts and buttons(card) == []
    text = blocks_text(card)
    assert f"approved by <@{APPROVER}>" in text
    order = svc.store.get_order(order_id)
    assert order["state"] == "failed"
    assert svc.store.fills.count_documents({"order_id": order_id}) == 0
    child = svc.store.children.find_one({"parent_id": order_id}) or svc.store.children.find_one({})
    assert child is not None and "insufficient" in str(child.get("error", "")).lower()
    assert _audit(desk, "slack.trade.approve")[0]["details"]["order_id"] == order_id


def test_gate_rerun_at_approval_refuses_when_the_desk_halted_meanwhile(slack_desk: Any) -> None:
    desk: SlackDesk = slack_desk()
    svc = desk.attach_trading()
    order_id, ts = _propose(desk)
    assert desk.command("/desk", "halt news shock", user=ADMIN).status_code == 200
    desk.slack.wait_for("chat.postMessage", predicate=lambda p: "halted the desk" in p.get("text", ""))
    desk.click("trade_approve", order_id, APPROVER, message_ts=ts)
    told = desk.slack.wait_for("chat.postEphemeral", predicate=lambda p: p.get("user") == APPROVER)
    assert told[0]["text"].startswith("The risk gate refused the order at approval: ")
    assert "halt" in told[0]["text"].lower()
    card = _card(desk, "Rejected")
    assert card["ts"] == ts and buttons(card) == [] and "halt" in blocks_text(card).lower()
    assert svc.store.get_order(order_id)["state"] == "rejected"
    assert svc.store.fills.count_documents({}) == 0
    assert _audit(desk, "slack.trade.approve")[0]["outcome"] == "rejected"
