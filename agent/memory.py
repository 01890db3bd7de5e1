"""Conversation memory per Slack thread or API session, in Mongo (`conversations`).

Only the visible turns are replayed to the model (questions and final answers); tool traffic stays in the record
for audit but is not replayed, so no provider-specific fields have to survive between turns.

`aturns` (the HTTP transcript route, polled by UIs) answers from a one-second snapshot per session that this store's
own `append` clears, so a turn written through this process shows at once; a turn written by another replica shows
within `TURNS_SNAPSHOT_TTL_S`.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from core.cache import TTLCache
from core.clock import utcnow

MAX_TURNS_REPLAYED = 12
MAX_CHARS_PER_TURN = 4_000
TURNS_SNAPSHOT_TTL_S = 1.0


class ConversationStore:
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.col = db["conversations"]
        self.col.create_index([("session_id", ASCENDING), ("created_at", ASCENDING)])
        self._turns: TTLCache[list[dict[str, Any]]] = TTLCache(TURNS_SNAPSHOT_TTL_S)

    def history(self, session_id: str, limit: int = MAX_TURNS_REPLAYED) -> list[BaseMessage]:
        docs = list(
            self.col.find({"session_id": session_id}, {"_id": 0, "question": 1, "answer": 1})
            .sort("created_at", DESCENDING)
            .limit(limit)
        )
        out: list[BaseMessage] = []
        for doc in reversed(docs):
            out.append(HumanMessage(str(doc["question"])[:MAX_CHARS_PER_TURN]))
            out.append(AIMessage(str(doc["answer"])[:MAX_CHARS_PER_TURN]))
        return out

    def append(self, session_id: str, question: str, answer: str, meta: dict[str, Any]) -> None:
        self.col.insert_one(
            {"session_id": session_id, "question": question, "answer": answer, "created_at": utcnow(), **meta}
        )
        self._turns.clear()

    def turns(self, session_id: str) -> list[dict[str, Any]]:
        return list(self.col.find({"session_id": session_id}, {"_id": 0}).sort("created_at", ASCENDING))

    async def aturns(self, session_id: str) -> list[dict[str, Any]]:
        """`turns` from the event loop: a fresh snapshot at once, else the query in a worker thread. Callers must
        not mutate the list (it is shared)."""
        return await self._turns.aget_or_compute(session_id, lambda: self.turns(session_id))
