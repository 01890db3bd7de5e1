"""Token and cost accounting per request and per day, and the daily budget that stops a runaway spend."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from agent.writebehind import WriteBehind
from core.clock import utcnow

log = logging.getLogger(__name__)


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

    With a write-behind writer (the desk's) requests' spend is summed in memory and handed to the writer as one
    increment per day at most every `FLUSH_S` (and when the writer closes): one write per second of traffic instead
    of one per request. Until it is written, this process's own spend is added to what a refresh reads, so the
    budget never forgets it; other replicas see it at most `FLUSH_S` later than before, on top of their own
    `REFRESH_S`.
    """

    REFRESH_S = 5.0
    FLUSH_S = 1.0

    def __init__(self, db: Database[dict[str, Any]], writer: WriteBehind | None = None) -> None:
        self.col = db["llm_usage"]
        self._known: tuple[str, int, float] | None = None  # (day, tokens, monotonic time read)
        self._lock = threading.Lock()  # requests run on several threads; an increment must not be lost
        self._writer = writer
        self._batch: dict[str, dict[str, float]] = {}  # day -> spend recorded and not yet handed to the writer
        self._unwritten: dict[str, int] = {}  # day -> tokens recorded and not yet written
        self._timer: threading.Timer | None = None
        if writer is not None:
            writer.before_close(self.hand_over)

    @staticmethod
    def _day() -> str:
        return utcnow().strftime("%Y-%m-%d")

    def record(self, usage: Usage, cost_usd: float) -> None:
        """Add a request's spend to the day's document: one `$inc` upsert, no read back (batched when there is an
        open writer, else acknowledged before this returns).

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
        if self._writer is None or self._writer.closed:
            self._write(day, increment)
        else:
            with self._lock:
                batch = self._batch.setdefault(day, dict.fromkeys(increment, 0))
                for key, value in increment.items():
                    batch[key] += value
                self._unwritten[day] = self._unwritten.get(day, 0) + tokens
                if self._timer is None:
                    self._timer = threading.Timer(self.FLUSH_S, self.hand_over)
                    self._timer.daemon = True
                    self._timer.start()
        with self._lock:
            if self._known is not None and self._known[0] == day:
                self._known = (day, self._known[1] + tokens, self._known[2])

    def _write(self, day: str, increment: dict[str, Any]) -> None:
        self.col.update_one({"_id": day}, {"$inc": increment}, upsert=True)

    def hand_over(self) -> None:
        """Queue the spend summed so far with the writer (from the timer, and when the writer closes)."""
        with self._lock:
            batches, self._batch = self._batch, {}
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()  # closing: the timer must not fire later (a no-op when this is the timer)
        if self._writer is None:
            return
        for day, increment in batches.items():
            tokens = int(increment["prompt_tokens"] + increment["completion_tokens"])
            try:
                self._writer.submit(
                    f"llm usage {day} +{tokens} tokens",
                    partial(self._write, day, increment),
                    partial(self._settled, day, tokens),
                )
            except PyMongoError as exc:  # the backlog is full: keep the spend and try again on the next tick
                log.warning("llm usage not queued yet (%s); retrying in %.0f s", exc, self.FLUSH_S)
                with self._lock:
                    batch = self._batch.setdefault(day, dict.fromkeys(increment, 0))
                    for key, value in increment.items():
                        batch[key] += value
                    if self._timer is None:
                        self._timer = threading.Timer(self.FLUSH_S, self.hand_over)
                        self._timer.daemon = True
                        self._timer.start()

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
        # Unwritten tokens are read before the database: some written in between are counted twice (for one refresh
        # interval, erring towards the budget), never not at all.
        with self._lock:
            unwritten = self._unwritten.get(day, 0)
        tokens = _tokens(self.col.find_one({"_id": day}) or {}) + unwritten
        self._known = (day, tokens, time.monotonic())
        return tokens


def _tokens(doc: dict[str, Any]) -> int:
    return int(doc.get("prompt_tokens", 0)) + int(doc.get("completion_tokens", 0))
