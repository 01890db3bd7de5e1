"""Conversation memory per Slack thread or API session, in Mongo (`conversations`).

Every turn records its `owner`, the principal whose conversation it is: `key:<key id>` for an HTTP API key, `slack`
for the Slack door (its session ids carry the channel and the user or thread), `cli` for the command line. A
conversation is read and continued only by its owner: the same session id under another owner is another
conversation, so nobody can read or append to someone else's by guessing its id. `turns(session_id, None)` reads
every owner's turns (the HTTP route allows that to admin keys). Turns stored before owners were recorded have none and
are visible to that all-owners read only.

Only the visible turns are replayed to the model (questions and final answers); tool traffic stays in the record
for audit but is not replayed, so no provider-specific fields have to survive between turns.

With a write-behind writer (the desk's), `append` queues the insert and keeps the turn in memory until it is
written: `history` and `turns` merge those turns with what the database returns, so the next turn of a
conversation always sees the previous one, written yet or not.

`aturns` (the HTTP transcript route, polled by UIs) answers from a one-second snapshot per session that this store's
own `append` clears, so a turn written through this process shows at once; a turn written by another replica shows
within `TURNS_SNAPSHOT_TTL_S`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from agent.writebehind import WriteBehind
from core.cache import TTLCache
from core.clock import utcnow
from core.queries import eq

MAX_TURNS_REPLAYED = 12
MAX_CHARS_PER_TURN = 4_000
TURNS_SNAPSHOT_TTL_S = 1.0


def session_filter(session_id: str, owner: str | None = None) -> dict[str, Any]:
    """The query for one conversation (of one owner; None: of every owner), served by the (session_id, created_at)
    index on the embedded server too (a bare equality scanned the whole collection there: about 1 ms per 1,000 stored
    turns; see `core.queries.eq`)."""
    return eq(session_id=session_id) if owner is None else eq(session_id=session_id, owner=owner)


def _order(doc: dict[str, Any]) -> datetime:
    """`created_at` comparable across the database's copy (naive unless the client is tz-aware, milliseconds) and
    the pending one (aware, microseconds)."""
    at: datetime = doc["created_at"]
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def _merge(stored: list[dict[str, Any]], pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored and pending turns, oldest first, each once (a turn written between the two reads is in both)."""
    seen = {doc["_id"] for doc in stored}
    return sorted([*stored, *(doc for doc in pending if doc["_id"] not in seen)], key=_order)


class ConversationStore:
    def __init__(self, db: Database[dict[str, Any]], writer: WriteBehind | None = None) -> None:
        self.col = db["conversations"]
        self.col.create_index([("session_id", ASCENDING), ("created_at", ASCENDING)])
        self._turns: TTLCache[list[dict[str, Any]]] = TTLCache(TURNS_SNAPSHOT_TTL_S)
        self._writer = writer
        # (owner, session) -> turns queued and not yet written
        self._pending: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _pending_turns(self, session_id: str, owner: str | None) -> list[dict[str, Any]]:
        with self._lock:
            if owner is not None:
                return list(self._pending.get((owner, session_id), ()))
            return [doc for (_, sid), docs in self._pending.items() if sid == session_id for doc in docs]

    def history(self, session_id: str, owner: str, limit: int = MAX_TURNS_REPLAYED) -> list[BaseMessage]:
        # Pending turns are read before the database: a turn written in between is then in both (and deduplicated),
        # never in neither.
        pending = self._pending_turns(session_id, owner)
        docs = list(
            self.col.find(session_filter(session_id, owner), {"question": 1, "answer": 1, "created_at": 1})
            .sort("created_at", DESCENDING)
            .limit(limit)
        )
        docs.reverse()
        if pending:
            docs = _merge(docs, pending)[-limit:]
        out: list[BaseMessage] = []
        for doc in docs:
            out.append(HumanMessage(str(doc["question"])[:MAX_CHARS_PER_TURN]))
            out.append(AIMessage(str(doc["answer"])[:MAX_CHARS_PER_TURN]))
        return out

    def append(self, session_id: str, question: str, answer: str, meta: dict[str, Any], *, owner: str) -> None:
        doc = {
            "_id": ObjectId(),
            "session_id": session_id,
            "owner": owner,
            "question": question,
            "answer": answer,
            "created_at": utcnow(),
            **meta,
        }
        if self._writer is None:
            self.col.insert_one(doc)
        else:
            with self._lock:
                self._pending.setdefault((owner, session_id), []).append(doc)
            self._writer.submit(
                f"conversation turn {session_id}",
                lambda: self.col.insert_one(doc),
                lambda: self._settled((owner, session_id), doc),
            )
        self._turns.clear()

    def _settled(self, key: tuple[str, str], doc: dict[str, Any]) -> None:
        with self._lock:
            turns = self._pending.get(key, [])
            turns[:] = [turn for turn in turns if turn is not doc]
            if not turns:
                self._pending.pop(key, None)

    def turns(self, session_id: str, owner: str | None) -> list[dict[str, Any]]:
        """The conversation's turns, oldest first: `owner`'s only, or every owner's with None."""
        pending = self._pending_turns(session_id, owner)
        docs = list(self.col.find(session_filter(session_id, owner)).sort("created_at", ASCENDING))
        if pending:
            docs = _merge(docs, pending)
        return [{k: v for k, v in doc.items() if k != "_id"} for doc in docs]

    async def aturns(self, session_id: str, owner: str | None) -> list[dict[str, Any]]:
        """`turns` from the event loop: a fresh snapshot at once, else the query in a worker thread. Callers must
        not mutate the list (it is shared)."""
        return await self._turns.aget_or_compute((owner, session_id), lambda: self.turns(session_id, owner))
