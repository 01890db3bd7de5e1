"""Leader election through one lock document in Mongo with an expiry.

APScheduler 3 does not support two schedulers sharing a job store, so only the instance holding the lock runs one.
The holder renews the lock well inside its expiry; if it dies, another instance takes over after the expiry.
Every step is a single guarded `find_one_and_update` (or an insert that a unique `_id` makes exclusive).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from core.clock import now_ms

Doc = dict[str, Any]


def instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderLock:
    def __init__(
        self,
        db: Database[Doc],
        name: str = "scheduler",
        *,
        ttl_s: float = 30.0,
        owner: str | None = None,
        clock: Callable[[], int] = now_ms,
        collection: str = "scheduler_locks",
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.col = db[collection]
        self.name = name
        self.ttl_ms = int(ttl_s * 1000)
        self.owner = owner or instance_id()
        self.clock = clock

    def try_acquire(self) -> bool:
        """Take the lock if it is free or expired, or extend it if we hold it. True when we hold it afterwards."""
        now = self.clock()
        try:
            doc = self.col.find_one_and_update(
                {"_id": self.name, "$or": [{"owner": self.owner}, {"expires_ms": {"$lte": now}}]},
                {"$set": {"owner": self.owner, "expires_ms": now + self.ttl_ms, "renewed_ms": now}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # someone else holds an unexpired lock: the upsert's insert collided
            return False
        return doc is not None and doc.get("owner") == self.owner

    renew = try_acquire

    def release(self) -> bool:
        res = self.col.delete_one({"_id": self.name, "owner": self.owner})
        return bool(res.deleted_count)

    def holder(self) -> Doc | None:
        return self.col.find_one({"_id": self.name})
