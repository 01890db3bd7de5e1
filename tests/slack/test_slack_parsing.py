"""Pure pieces: command parsing, delivery keys, news/sentiment extraction and the proposal card in each state."""

from __future__ import annotations

import pytest

from agent.slack.cards import APPROVE, REJECT, render_card
from agent.slack.deliveries import delivery_key
from agent.slack.parsing import (
    ParseError,
    normalise_symbol,
    parse_briefing,
    parse_forecast,
    parse_option,
    parse_trade,
)
from agent.slack.rendering import news_items, pick_sentiment, risk_text, sentiment_line
from knowledge.safety import fence_articles


def test_symbols_and_trades() -> None:
    assert [normalise_symbol(t) for t in ("btc/usdt", "ETH-USDT", "SOLUSDT", "BTC", "hello!")] == [
        "BTC/USDT", "ETH/USDT", "SOL/USDT", "BTC/USDT", None]
    t = parse_trade("sell 0.5 eth/usdt limit 3,500 binance")
    assert (t.side, t.qty, t.symbol, t.limit_price, t.venue) == ("sell", 0.5, "ETH/USDT", 3500.0, "binance")
    assert parse_trade("buy 0.01 BTCUSDT").limit_price is None
    for bad, why in (("hold 1 BTC/USDT", "`buy` or `sell`"), ("buy -1 BTC/USDT", "positive"),
                     ("buy 1 BTC/USDT limit", "needs a price"), ("buy 1", "side, a quantity"),
                     ("buy 1 BTC/USDT limit 10 binance extra", "do not understand")):
        with pytest.raises(ParseError, match=why) as err:
            parse_trade(bad)
        assert "Usage: `/trade buy|sell QTY SYMBOL" in err.value.friendly()


def test_forecast_option_briefing_parsing() -> None:
    f = parse_forecast("eth 12 4h")
    assert (f.symbol, f.horizon, f.timeframe) == ("ETH/USDT", 12, "4h")
    with pytest.raises(ParseError, match="between 1 and 500"):
        parse_forecast("BTC/USDT 9999")
    o = parse_option("put ETH/USDT 3000 30d iv 55%")
    assert (o.kind, o.strike, o.days(), o.vol_pct) == ("put", 3000.0, 30.0, 55.0)
    assert parse_option("call BTC/USDT 70000 2030-03-29").days() is None
    with pytest.raises(ParseError, match="EXPIRY"):
        parse_option("call BTC/USDT 70000 soon")
    b = parse_briefing("schedule daily 08:00 UTC <#C0123|markets> BTC/USDT,ETH/USDT")
    assert b.action == "schedule" and b.channel is not None and b.channel.id == "C0123"
    assert b.channel.label == "#markets" and b.symbols == ["BTC/USDT", "ETH/USDT"]
    assert b.cadence is not None and b.cadence.text == "daily 08:00 UTC"
    now = parse_briefing("now #desk sol")
    assert now.channel is not None and now.channel.id == "#desk" and now.symbols == ["SOL/USDT"]
    assert parse_briefing("cancel b12ab34").schedule_id == "b12ab34"
    with pytest.raises(ParseError, match="Unknown action"):
        parse_briefing("explode")


def test_delivery_keys_are_stable_across_retries_and_distinct_across_clicks() -> None:
    assert delivery_key({"event_id": "Ev1", "event": {}}) == "event:Ev1"
    click = {"type": "block_actions", "user": {"id": "U1"}, "trigger_id": "t1",
             "actions": [{"action_id": APPROVE, "action_ts": "1.1"}]}
    again = {**click, "actions": [{"action_id": APPROVE, "action_ts": "1.2"}], "trigger_id": "t2"}
    assert delivery_key(click) == delivery_key(dict(click)) != delivery_key(again)
    assert delivery_key({"command": "/risk", "trigger_id": "t9"}) == "command:t9"
    assert delivery_key({"type": "url_verification"}) is None


def test_news_citations_get_their_titles_and_sentiment_is_picked() -> None:
    arts = [{"title": "ETF inflows hit a record", "summary": "s", "source": "CoinDesk",
             "published": "2030-01-01T08:00", "url": "https://example.com/a"}]
    result = {"count": 1, "untrusted_content": fence_articles(arts),
              "citations": [{"n": 1, "source": "CoinDesk", "published": "2030-01-01T08:00",
                             "url": "https://example.com/a", "sentiment": 0.6}]}
    [item] = news_items(result)
    assert item["title"] == "ETF inflows hit a record" and item["url"] == "https://example.com/a"
    sent = {"symbols": [{"symbol": "ETH", "index": -0.4, "n_docs": 3, "positive": 0, "negative": 2},
                        {"symbol": "BTC", "index": 0.3, "n_docs": 5, "positive": 4, "negative": 1,
                         "signal": 0.12}]}
    btc = pick_sentiment(sent, "BTC/USDT")
    assert btc is not None and btc["index"] == 0.3
    assert sentiment_line(btc) == "positive, index 0.3, 5 (4 positive, 1 negative) articles, signal 0.12"
    assert pick_sentiment(sent, "SOL/USDT") is None


def _order(state: str, **extra: object) -> dict[str, object]:
    return {"_id": "o1", "state": state, "requester": "U0007", "expires_ms": 1_900_000_000_000,
            "request": {"symbol": "BTC/USDT", "side": "buy", "qty": 0.01, "type": "market"},
            "proposed_qty": 0.01, "limit_price": 50_010.0, "headroom": "passed; tightest check x with 50.0% headroom",
            "decision": {"approved": True, "notional": 500.1, "checks": [
                {"name": "order_notional", "passed": True, "margin": 0.975, "detail": "500 of 20000"}]}, **extra}


def test_card_in_each_state() -> None:
    text, blocks = render_card(_order("pending_approval"), {"forecast_note": "no model", "sentiment_note": "n/a"})
    flat = str(blocks)
    assert "pending approval" in text and APPROVE in flat and REJECT in flat and "97.5% headroom" in flat
    assert "<@U0007>" in flat and "<!date^1900000000^" in flat and "≈ 500.10 notional" in flat
    _, filled = render_card(_order("filled", approved_by="U0008", filled_qty=0.01, avg_price=50_012.5, fee_quote=0.5),
                            {"fills": [{"qty": 0.01, "price": 50_012.5, "venue": "paper"}]})
    assert APPROVE not in str(filled) and "*Executed*" in str(filled) and "approved by <@U0008>" in str(filled)
    assert "0.01 @ 50,012.50 on paper" in str(filled)
    _, rejected = render_card(_order("rejected", rejected_by="risk", reasons=["desk is halted"]))
    assert "rejected by risk" in str(rejected) and "desk is halted" in str(rejected)
    _, working = render_card(_order("pending_approval"), working="approved by U8: sending")
    assert APPROVE not in str(working) and "sending" in str(working)


def test_risk_text_says_who_holds_each_stop() -> None:
    text = risk_text({
        "desk_state": "active",
        "stops": [
            {"symbol": "BTC/USDT", "kind": "stop_loss", "trigger": 60_000.0, "qty": 0.1, "held_by": ["venue:binance"]},
            {"symbol": "BTC/USDT", "kind": "take_profit", "trigger": 70_000.0, "qty": 0.1, "held_by": ["desk"]},
        ],
    })
    assert "BTC/USDT stop loss at 60,000" in text and "held by venue:binance" in text
    assert "take profit at 70,000" in text and "held by desk" in text
