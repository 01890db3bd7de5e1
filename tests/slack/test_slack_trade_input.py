"""/trade input: unknown `key=value` options are refused naming the valid ones, numbers are bounded, and the card
always ends in a decision (never stuck on "checking risk")."""

from __future__ import annotations

from typing import Any

import pytest

from agent.slack.parsing import ParseError, parse_trade
from tests.slack.conftest import TRADER, SlackDesk, blocks_text, buttons


@pytest.mark.parametrize(
    "text,needles",
    [
        ("buy 0.01 BTC/USDT stoploss=30000", ["Unknown option `stoploss`", "Did you mean `stop_loss=`", "`venue=`"]),
        ("buy 0.01 BTC/USDT leverage=10", ["Unknown option `leverage`", "`stop_loss=`", "`take_profit=`"]),
        ("buy 0.01 BTC/USDT $where=1", ["Unknown option `$where`"]),
        ("buy 1e308 BTC/USDT", ["QTY must be at most"]),
        ("buy 0.01 BTC/USDT limit 1e308", ["PRICE must be at most"]),
        ("buy 0.01 BTC/USDT sl=inf", ["stop_loss must be a positive number"]),
        ("sell 0.01 BTC/USDT sl=40000", ["protect a buy"]),
        ("buy 0.01 BTC/USDT sl=", ["needs a value"]),
    ],
)
def test_bad_trade_options_are_refused_with_the_valid_ones(text: str, needles: list[str]) -> None:
    with pytest.raises(ParseError) as info:
        parse_trade(text)
    message = info.value.friendly()
    for needle in needles:
        assert needle in message, (needle, message)


def test_trade_options_parse() -> None:
    req = parse_trade("buy 0.01 btc/usdt limit 49000 sl=45000 tp=60000 venue=paper")
    assert (req.side, req.qty, req.symbol, req.limit_price, req.venue) == ("buy", 0.01, "BTC/USDT", 49000.0, "paper")
    assert (req.stop_loss, req.take_profit) == (45000.0, 60000.0)
    assert "stop-loss 45,000" in req.describe()


def _card(desk: SlackDesk, state_text: str) -> dict[str, Any]:
    # generous: the card waits for its forecast and news context, and the first one in a process loads models
    updates = desk.slack.wait_for("chat.update", 1, timeout=45.0, predicate=lambda p: state_text in blocks_text(p))
    return updates[-1]


def test_unknown_option_is_an_ephemeral_reply_and_proposes_nothing(slack_desk: Any) -> None:
    desk: SlackDesk = slack_desk()
    svc = desk.attach_trading()
    resp = desk.command("/trade", "buy 0.01 BTC/USDT stoploss=30000")
    body = resp.json()
    assert body["response_type"] == "ephemeral" and "did you mean `stop_loss=`" in body["text"].lower()
    assert svc.store.orders.count_documents({}) == 0


def test_extreme_limit_price_card_ends_in_a_rejection(slack_desk: Any) -> None:
    desk: SlackDesk = slack_desk()
    svc = desk.attach_trading()
    desk.command("/trade", "buy 0.01 BTC/USDT limit 0.001")
    card = _card(desk, "Rejected")
    assert "limit price" in blocks_text(card) and buttons(card) == []
    assert svc.store.orders.count_documents({"state": "proposed"}) == 0
    assert svc.store.orders.count_documents({"state": "rejected"}) == 1


def test_stop_loss_above_the_market_is_refused_on_the_card(slack_desk: Any) -> None:
    desk: SlackDesk = slack_desk()
    svc = desk.attach_trading()
    desk.command("/trade", "buy 0.01 BTC/USDT stop_loss=900000", user=TRADER)
    card = _card(desk, "Rejected")
    assert "stop_loss" in blocks_text(card)
    assert svc.store.orders.count_documents({"state": "rejected"}) == 1
