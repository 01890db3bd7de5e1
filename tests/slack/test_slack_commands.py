"""Slash commands, mentions and DMs: instant acks, progress messages edited in place, friendly failures, thread
memory, retries of events, and a burst of 50 commands."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.slack.conftest import TRADER, SlackDesk, blocks_text


def _update(desk: SlackDesk, *needles: str) -> dict[str, Any]:
    """The chat.update (a progress message edited in place) whose text contains every needle."""
    def match(p: dict[str, Any]) -> bool:
        return all(n in blocks_text(p) for n in needles)

    return desk.slack.wait_for("chat.update", predicate=match)[-1]


def test_mentions_and_dms_reach_the_agent_with_thread_memory(slack_desk: Any, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(Reply(content="BTC is calm today."), Reply(content="Still calm, as I said."),
                    Reply(content="Hello from the DM."), Reply(content="Hello again."))
    desk: SlackDesk = slack_desk(llm_api_key="sk-test-key-0123456789abcdef", llm_base_url=fake_llm.base_url,
                                 llm_max_retries="0")
    root = "1700000500.000100"
    mention = {"type": "app_mention", "user": TRADER, "text": "<@UBOT> how is BTC/USDT?", "ts": root,
               "channel": "C1", "event_ts": root}
    assert desk.event(mention, event_id="EvA").status_code == 200
    first = desk.slack.wait_for("chat.update", predicate=lambda p: "BTC is calm" in blocks_text(p))
    progress = desk.slack.calls_of("chat.postMessage")[0]
    assert progress["thread_ts"] == root and progress["channel"] == "C1" and first[0]["channel"] == "C1"
    # Slack retries the same event: dropped, the agent is not asked twice
    assert desk.event(mention, event_id="EvA", **{"X-Slack-Retry-Num": "1"}).status_code == 200
    follow = {"type": "app_mention", "user": TRADER, "text": "<@UBOT> and now?", "ts": "1700000600.000100",
              "thread_ts": root, "channel": "C1", "event_ts": "1700000600.000100"}
    desk.event(follow, event_id="EvB")
    desk.slack.wait_for("chat.update", predicate=lambda p: "Still calm" in blocks_text(p))
    assert len(fake_llm.requests) == 2
    replayed = [m.get("content") for m in fake_llm.requests[1]["messages"]]
    assert "how is BTC/USDT?" in replayed and "BTC is calm today." in replayed  # same thread, same memory
    assert all(p.get("thread_ts") == root for p in desk.slack.calls_of("chat.postMessage"))

    dm = {"type": "message", "channel_type": "im", "user": TRADER, "text": "hi there", "ts": "1700000700.000100",
          "channel": "D1", "event_ts": "1700000700.000100"}
    desk.event(dm, event_id="EvC")
    answer = desk.slack.wait_for("chat.update", predicate=lambda p: "Hello from the DM" in blocks_text(p))
    assert answer[0]["channel"] == "D1"
    assert "how is BTC/USDT?" not in [m.get("content") for m in fake_llm.requests[2]["messages"]]
    # our own posts and channel chatter never reach the agent
    desk.event({**dm, "bot_id": "BBOT", "text": "echo"}, event_id="EvD")
    desk.event({"type": "message", "channel_type": "channel", "user": TRADER, "text": "lunch?", "ts": "1.0",
                "channel": "C1"}, event_id="EvE")
    assert desk.event(dm | {"text": "again"}, event_id="EvF").status_code == 200
    desk.slack.wait_for("chat.update", predicate=lambda p: "Hello again" in blocks_text(p))
    assert len(fake_llm.requests) == 4 and len(desk.slack.calls_of("chat.postMessage")) == 4


def test_commands_edit_progress_in_place_and_fail_friendly(slack_desk: Any, fake_exchange: Any) -> None:
    fake_exchange.set_price("BTC/USDT", 64_000.0)
    desk: SlackDesk = slack_desk()
    desk.attach_trading()
    usage = desk.command("/forecast", "BTC/USDT soon").json()
    assert usage["response_type"] == "ephemeral" and "Usage: `/forecast SYMBOL" in usage["text"]
    assert "`/option call|put" in desk.command("/option", "call BTC/USDT").json()["text"]
    assert "What should I search for" in desk.command("/news", "").json()["text"]

    assert desk.command("/forecast", "BTC/USDT 12").text == ""  # empty ack; the work goes on in the background
    desk.slack.wait_for("chat.postMessage", predicate=lambda p: "Forecasting BTC/USDT (12×1h)" in p["text"])
    _update(desk, ":warning:", "forecast for BTC/USDT")
    told = desk.slack.wait_for("chat.postEphemeral", predicate=lambda p: "Usage: `/forecast" in p.get("text", ""))
    assert told[0]["user"] == TRADER

    desk.command("/news", "bitcoin ETF")
    desk.slack.wait_for("chat.postMessage", predicate=lambda p: "Searching news for _bitcoin ETF_" in p["text"])
    news = desk.slack.wait_for("chat.update", 2)[-1]
    assert "No news found for _bitcoin ETF_" in blocks_text(news)  # the test's knowledge base is empty

    desk.command("/option", "call BTC/USDT 70000 30d vol 55")
    text = blocks_text(_update(desk, "Premium"))
    assert "Premium" in text and "spot 64,000" in text and "vol 55.0% (given)" in text and "delta" in text

    desk.command("/positions")
    _update(desk, "*Positions*", "Equity")
    desk.command("/risk")
    _update(desk, "*Risk*", "Desk *active*")

    desk.command("/ask", "how is BTC/USDT doing?")
    _update(desk, "asked: _how is BTC/USDT doing?_", "64,000.00")


def test_fifty_commands_at_once_are_all_acknowledged(slack_desk: Any) -> None:
    desk: SlackDesk = slack_desk()
    desk.attach_trading()
    desk.command("/risk")  # warm-up (bolt's first auth.test)
    desk.slack.wait_for("chat.update")

    def one(i: int) -> tuple[int, str, float]:
        started = time.monotonic()
        name, text = [("/risk", ""), ("/positions", ""), ("/trade", "buy lots"), ("/briefing", "list")][i % 4]
        resp = desk.command(name, text, user=f"U{i:03d}")
        return resp.status_code, resp.text, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    assert [status for status, _, _ in results] == [200] * 50
    assert all("Usage" in body for i, (_, body, _) in enumerate(results) if i % 4 == 2)
    assert all("No scheduled briefings" in body for i, (_, body, _) in enumerate(results) if i % 4 == 3)
    slowest = max(seconds for _, _, seconds in results)
    assert slowest < 3.0, f"slowest ack took {slowest:.2f} s"  # Slack's deadline; typically well under 1 s here
    # and the background work of every accepted command completes: 25 progress messages edited in place
    desk.slack.wait_for("chat.update", 1 + 25, timeout=30)


def test_analyze_edits_its_progress_message_in_place(slack_desk: Any, fake_exchange: Any) -> None:
    fake_exchange.set_price("ETH/USDT", 3_456.78)
    desk: SlackDesk = slack_desk()
    desk.attach_trading()
    ack = desk.command("/analyze", "ETH/USDT")
    assert ack.status_code == 200 and ack.text == ""
    [progress] = desk.slack.wait_for("chat.postMessage", predicate=lambda p: "analysis of ETH/USDT" in p["text"])
    done = desk.slack.wait_for("chat.update", timeout=60,  # the full desk report: forecast, news, risk
                               predicate=lambda p: "Analysis of ETH/USDT" in blocks_text(p)
                               and "3,456.78" in blocks_text(p))[-1]
    assert done["channel"] == "C1" and done["ts"] == progress.get("ts", done["ts"])
    assert len(desk.slack.calls_of("chat.postMessage")) == 1, "the answer edits the progress message, no new post"
    assert "Usage" in desk.command("/analyze", "").json()["text"]
