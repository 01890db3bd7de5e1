"""Append-only audit log (`audit_log`): who did what, when, through which door, with what outcome.

Records are inserted, never updated or deleted by the application. Secrets never go in: callers pass ids and
summaries, and `record` drops keys that look like credentials.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

from core.clock import utcnow
from core.logging import redact

_SECRET_HINTS = ("secret", "password", "token", "api_key", "apikey", "signature", "authorization")


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("***" if any(h in str(k).lower() for h in _SECRET_HINTS) else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


class AuditLog:
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.col = db["audit_log"]
        self.col.create_index([("at", ASCENDING)])
        self.col.create_index([("action", ASCENDING)])

    @staticmethod
    def entry(action: str, actor: str, *, source: str, outcome: str = "ok", **details: Any) -> dict[str, Any]:
        return {
            "at": utcnow(),
            "action": action,
            "actor": actor,
            "source": source,
            "outcome": outcome,
            "details": _scrub(details),
        }

    def record(self, action: str, actor: str, *, source: str, outcome: str = "ok", **details: Any) -> None:
        self.col.insert_one(self.entry(action, actor, source=source, outcome=outcome, **details))

    def record_many(self, entries: list[dict[str, Any]]) -> None:
        """Several entries in one round trip (built with `entry`)."""
        if entries:
            self.col.insert_many(entries, ordered=True)

    def find(self, action: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        query = {"action": action} if action else {}
        return list(self.col.find(query, {"_id": 0}).sort("at", ASCENDING).limit(limit))
