"""Token and cost accounting per request and per day, and the daily budget that stops a runaway spend."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database

from agent.writebehind import WriteBehind
from core.clock import utcnow


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, prompt: int, completion: int) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.calls += 1

    def cost_usd(self, price_in_per_mtok: float, price_out_per_mtok: float) -> float:
        return (self.prompt_tokens * price_in_per_mtok + self.completion_tokens * price_out_per_mtok) / 1e6

    def as_dict(self, price_in: float, price_out: float) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "llm_calls": self.calls,
            "cost_usd": round(self.cost_usd(price_in, price_out), 6),
        }


class DailyUsageLedger:
    """One document per UTC day in `llm_usage`, incremented atomically.

    The day's total is remembered from the last read (plus this process's own spend since) for a few seconds, so
    that the budget check before each request does not cost a database round trip; other replicas' spend is picked
    up on the next refresh.

    With a write-behind writer (the desk's) the increment is queued; until it is written its tokens are added to
    what a refresh reads, so the budget never forgets this process's own spend.
    """

    REFRESH_S = 5.0

    def __init__(self, db: Database[dict[str, Any]], writer: WriteBehind | None = None) -> None:
        self.col = db["llm_usage"]
        self._known: tuple[str, int, float] | None = None  # (day, tokens, monotonic time read)
        self._lock = threading.Lock()  # requests run on several threads; an increment must not be lost
        self._writer = writer
        self._unwritten: dict[str, int] = {}  # day -> tokens queued and not yet written

    @staticmethod
    def _day() -> str:
        return utcnow().strftime("%Y-%m-%d")

    def record(self, usage: Usage, cost_usd: float) -> None:
        """Add a request's spend to the day's document: one `$inc` upsert, no read back (queued when there is a
        writer, else acknowledged before this returns).

        The remembered total grows by this request's tokens but keeps the time it was read, so the next refresh
        (other replicas' spend) is as due as before; with nothing remembered the next check reads the database.
        """
        day = self._day()
        increment = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "calls": usage.calls,
            "cost_usd": cost_usd,
        }
        tokens = usage.total_tokens

        def write() -> None:
            self.col.update_one({"_id": day}, {"$inc": increment}, upsert=True)

        if self._writer is None:
            write()
        else:
            with self._lock:
                self._unwritten[day] = self._unwritten.get(day, 0) + tokens
            self._writer.submit(f"llm usage {day} +{tokens} tokens", write, lambda: self._settled(day, tokens))
        with self._lock:
            if self._known is not None and self._known[0] == day:
                self._known = (day, self._known[1] + tokens, self._known[2])

    def _settled(self, day: str, tokens: int) -> None:
        with self._lock:
            left = self._unwritten.get(day, 0) - tokens
            if left > 0:
                self._unwritten[day] = left
            else:
                self._unwritten.pop(day, None)

    def today_tokens(self) -> int:
        day = self._day()
        if self._known and self._known[0] == day and time.monotonic() - self._known[2] < self.REFRESH_S:
            return self._known[1]
        # Queued tokens are read before the database: one written in between is counted twice (for one refresh
        # interval, erring towards the budget), never not at all.
        with self._lock:
            unwritten = self._unwritten.get(day, 0)
        tokens = _tokens(self.col.find_one({"_id": day}) or {}) + unwritten
        self._known = (day, tokens, time.monotonic())
        return tokens


def _tokens(doc: dict[str, Any]) -> int:
    return int(doc.get("prompt_tokens", 0)) + int(doc.get("completion_tokens", 0))
