"""Conversation and usage writes behind the answer: order, read-your-writes, backpressure, retries, shutdown flush."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure

from agent.llm.usage import DailyUsageLedger, Usage
from agent.memory import ConversationStore, session_filter
from agent.writebehind import WriteBacklogFull, WriteBehind
from tests.fakes.openai_server import FakeOpenAI, Reply


class Gate:
    """Holds the writer's worker inside a write until opened."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()

    def hold(self) -> None:
        self.entered.set()
        assert self.open.wait(10), "the gate was never opened"


def _wait(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_writes_apply_in_order_and_settle_once() -> None:
    writer = WriteBehind("t")
    applied: list[int] = []
    settled: list[int] = []
    for i in range(200):
        writer.submit(f"w{i}", partial(applied.append, i), partial(settled.append, i))
    assert writer.flush(5)
    assert applied == list(range(200)) and settled == list(range(200))
    assert writer.close() == 0


def test_history_and_transcript_see_a_turn_before_it_is_written(mongo_db: Database[dict[str, Any]]) -> None:
    writer = WriteBehind("t")
    gate = Gate()
    writer.submit("hold", gate.hold, lambda: None)
    assert gate.entered.wait(5)
    memory = ConversationStore(mongo_db, writer)
    memory.append("s1", "How is BTC?", "Up 2%.", {"user": "u"}, owner="o")
    memory.append("s1", "And ETH?", "Flat.", {"user": "u"}, owner="o")
    memory.append("s2", "Other thread", "x", {"user": "u"}, owner="o")
    assert mongo_db["conversations"].count_documents({}) == 0  # nothing written yet
    assert [m.content for m in memory.history("s1", "o")] == ["How is BTC?", "Up 2%.", "And ETH?", "Flat."]
    assert [t["question"] for t in memory.turns("s1", "o")] == ["How is BTC?", "And ETH?"]
    assert all("_id" not in t for t in memory.turns("s1", "o"))
    gate.open.set()
    assert writer.flush(5)
    # Written once each, and still seen once each (the database and memory no longer both hold them).
    assert mongo_db["conversations"].count_documents({"session_id": "s1"}) == 2
    assert [m.content for m in memory.history("s1", "o")] == ["How is BTC?", "Up 2%.", "And ETH?", "Flat."]
    assert memory._pending == {}
    # A store with no pending turns (another replica, or after a restart) reads the same from the database.
    assert [t["question"] for t in ConversationStore(mongo_db).turns("s1", "o")] == ["How is BTC?", "And ETH?"]
    writer.close()


def test_history_merges_stored_and_pending_turns_newest_last(mongo_db: Database[dict[str, Any]]) -> None:
    writer = WriteBehind("t")
    memory = ConversationStore(mongo_db, writer)
    for i in range(14):
        memory.append("s", f"q{i}", f"a{i}", {}, owner="o")
    assert writer.flush(5)
    gate = Gate()
    writer.submit("hold", gate.hold, lambda: None)
    assert gate.entered.wait(5)
    memory.append("s", "q14", "a14", {}, owner="o")
    questions = [m.content for m in memory.history("s", "o", limit=3)][::2]
    assert questions == ["q12", "q13", "q14"]
    gate.open.set()
    writer.close()


def test_session_query_is_served_by_the_index(mongo_db: Database[dict[str, Any]]) -> None:
    ConversationStore(mongo_db).append("s", "q", "a", {}, owner="o")
    for query in (session_filter("s"), session_filter("s", "o")):  # every owner's turns (admin), one owner's
        plan = mongo_db.command(
            "explain", {"find": "conversations", "filter": query, "sort": {"created_at": -1}, "limit": 12}
        )
        text = str(plan["queryPlanner"]["winningPlan"])
        assert "INDEX" in text.upper() or "IXSCAN" in text, text  # nx-27017 ("SEARCH ... USING INDEX") or MongoDB
        assert "SCAN conversations" not in text, text


def test_a_full_backlog_refuses_instead_of_growing() -> None:
    writer = WriteBehind("t", max_pending=2, put_timeout_s=0.2)
    gate = Gate()
    writer.submit("hold", gate.hold, lambda: None)
    assert gate.entered.wait(5)
    writer.submit("second", lambda: None, lambda: None)
    started = time.monotonic()
    with pytest.raises(WriteBacklogFull):
        writer.submit("third", lambda: None, lambda: None)
    assert time.monotonic() - started >= 0.19
    gate.open.set()
    assert writer.flush(5)
    writer.submit("room again", lambda: None, lambda: None)
    assert writer.close() == 0


def test_a_write_is_retried_while_the_database_is_unreachable() -> None:
    writer = WriteBehind("t")
    attempts: list[int] = []
    settled: list[bool] = []

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise AutoReconnect("connection refused")

    writer.submit("flaky", flaky, lambda: settled.append(True))
    assert writer.flush(5)
    assert len(attempts) == 3 and settled == [True]
    assert writer.close() == 0


def test_a_duplicate_key_is_an_earlier_attempt_applied(mongo_db: Database[dict[str, Any]]) -> None:
    writer = WriteBehind("t")
    mongo_db["c"].insert_one({"_id": 1})

    def insert() -> None:
        mongo_db["c"].insert_one({"_id": 1})

    writer.submit("dup", insert, lambda: None)
    assert writer.close() == 0
    with pytest.raises(DuplicateKeyError):  # the inline path after close swallows it the same way
        insert()
    writer.submit("dup inline", insert, lambda: None)


def test_an_error_retrying_cannot_cure_is_logged_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    writer = WriteBehind("t")
    settled: list[bool] = []

    def bad() -> None:
        raise OperationFailure("document too large")

    with caplog.at_level(logging.ERROR, logger="agent.writebehind"):
        writer.submit("bad write", bad, lambda: settled.append(True))
        writer.submit("good write", lambda: None, lambda: settled.append(True))
        assert writer.flush(5)
    assert settled == [True, True]
    assert any("bad write" in r.getMessage() for r in caplog.records)
    assert writer.close() == 1


def test_close_with_the_database_down_ends_by_its_deadline_and_reports_the_loss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = WriteBehind("t")
    settled: list[str] = []

    def down() -> None:
        raise AutoReconnect("connection refused")

    writer.submit("turn a", down, lambda: settled.append("a"))
    writer.submit("turn b", lambda: None, lambda: settled.append("b"))
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="agent.writebehind"):
        lost = writer.close(timeout_s=0.3)
    assert time.monotonic() - started < 3
    assert lost >= 1 and "a" in settled
    assert any("turn a" in r.getMessage() for r in caplog.records)
    # Closed: later writes run inline and their errors reach the caller.
    with pytest.raises(AutoReconnect):
        writer.submit("inline", down, lambda: settled.append("inline"))
    assert settled[-1] == "inline"


def test_usage_is_one_write_per_interval_and_the_budget_counts_it_before(
    mongo_db: Database[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DailyUsageLedger, "FLUSH_S", 60.0)  # only close() hands the spend over in this test
    writer = WriteBehind("t")
    ledger = DailyUsageLedger(mongo_db, writer)
    ledger.record(Usage(1000, 200, 2), 0.01)
    ledger.record(Usage(500, 100, 1), 0.005)
    assert writer.pending == 0 and mongo_db["llm_usage"].count_documents({}) == 0  # summed in memory
    assert ledger.today_tokens() == 1800
    ledger._known = None
    assert ledger.today_tokens() == 1800  # a refresh from the database adds what is not written yet
    assert writer.close() == 0
    doc = mongo_db["llm_usage"].find_one({})
    assert doc is not None and (doc["prompt_tokens"], doc["completion_tokens"], doc["calls"]) == (1500, 300, 3)
    assert doc["cost_usd"] == pytest.approx(0.015)
    assert writer._applied == 1  # one write for both requests
    ledger._known = None
    assert ledger.today_tokens() == 1800  # written now, and not counted twice
    ledger.record(Usage(10, 0, 1), 0.0)  # the writer is closed: written at once
    assert mongo_db["llm_usage"].find_one({})["prompt_tokens"] == 1510  # type: ignore[index]


def test_usage_is_handed_over_by_the_timer(mongo_db: Database[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DailyUsageLedger, "FLUSH_S", 0.05)
    writer = WriteBehind("t")
    gate = Gate()
    writer.submit("hold", gate.hold, lambda: None)
    assert gate.entered.wait(5)
    ledger = DailyUsageLedger(mongo_db, writer)
    ledger.record(Usage(1000, 200, 2), 0.01)
    _wait(lambda: writer.pending == 2)  # the timer queued it; the worker is held
    ledger._known = None
    assert ledger.today_tokens() == 1200  # queued, not written: still counted
    gate.open.set()
    _wait(lambda: mongo_db["llm_usage"].count_documents({}) == 1)
    _wait(lambda: ledger._unwritten == {})
    ledger._known = None
    assert ledger.today_tokens() == 1200
    writer.close()


def test_shutdown_writes_every_answered_turn(
    make_client: Any, fake_llm: FakeOpenAI, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    """An answered turn whose write is still queued when the app stops is in the database after the stop."""
    fake_llm.script(Reply(content="BTC is strong.", reasoning="r"))
    client, key = make_client(llm=fake_llm)
    desk = client.app.state.desk  # type: ignore[attr-defined]
    db = mongo_client[client.app.state.db.name]  # type: ignore[attr-defined]  # the app's client closes with it
    conversations = desk.memory.col
    slow = threading.Event()

    class SlowCollection:
        """The conversations collection with inserts that take a while (a stalled database)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(conversations, name)

        def insert_one(self, doc: dict[str, Any]) -> Any:
            slow.set()
            time.sleep(0.5)
            return conversations.insert_one(doc)

    desk.memory.col = SlowCollection()
    answer = client.post(
        "/v1/ask", json={"question": "How is BTC?", "session_id": "t1"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200 and "BTC is strong." in answer.json()["answer"]
    assert slow.wait(5)
    assert db["conversations"].count_documents({"session_id": "t1"}) == 0  # still queued when the app stops
    client.__exit__(None, None, None)
    assert db["conversations"].count_documents({"session_id": "t1"}) == 1
    assert db["llm_usage"].count_documents({}) == 1  # the usage batch was handed over at shutdown
    assert desk.writes.pending == 0
