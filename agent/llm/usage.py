"""Token and cost accounting per request and per day, and the daily budget that stops a runaway spend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database

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
    """One document per UTC day in `llm_usage`, incremented atomically."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.col = db["llm_usage"]

    @staticmethod
    def _day() -> str:
        return utcnow().strftime("%Y-%m-%d")

    def record(self, usage: Usage, cost_usd: float) -> dict[str, Any]:
        doc = self.col.find_one_and_update(
            {"_id": self._day()},
            {
                "$inc": {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "calls": usage.calls,
                    "cost_usd": cost_usd,
                }
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return dict(doc or {})

    def today_tokens(self) -> int:
        doc = self.col.find_one({"_id": self._day()}) or {}
        return int(doc.get("prompt_tokens", 0)) + int(doc.get("completion_tokens", 0))
