"""Idempotency under Slack retries: each delivery is recorded once (unique key in Mongo); a repeat is acknowledged
and dropped before any handler runs.

Slack re-sends an event (with `X-Slack-Retry-Num`) when it did not see a 200 in 3 s; a proxy or a flaky network
can also repeat a command or a button payload. The key is what Slack keeps the same across repeats: `event_id`
for events, `trigger_id` for commands and actions (plus the action's `action_ts`). Two separate clicks are two
deliveries; the money path's guarded transitions make the second one change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from core.clock import wall_utcnow

log = logging.getLogger(__name__)
Doc = dict[str, Any]
RETENTION_S = 3 * 24 * 3600


def delivery_key(body: Doc) -> str | None:
    if not isinstance(body, dict):
        return None
    if body.get("event_id"):
        return f"event:{body['event_id']}"
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions") or [{}]
        first = actions[0] if isinstance(actions[0], dict) else {}
        user = (body.get("user") or {}).get("id")
        return f"action:{user}:{first.get('action_id')}:{first.get('action_ts')}:{body.get('trigger_id')}"
    if kind in ("view_submission", "shortcut", "message_action"):
        return f"{kind}:{body.get('trigger_id')}"
    if body.get("command") and body.get("trigger_id"):
        return f"command:{body['trigger_id']}"
    return None


class DeliveryLog:
    def __init__(self, db: Database[Doc]) -> None:
        self.col = db["slack_deliveries"]
        self.col.create_index([("at", ASCENDING)], expireAfterSeconds=RETENTION_S)

    def first_time(self, key: str, retry_num: str | None) -> bool:
        try:
            # the database expires this document by ITS wall clock (TTL index), so the stamp is wall time, not the
            # desk's injectable clock
            self.col.insert_one({"_id": key, "at": wall_utcnow(), "retry_num": retry_num})
        except DuplicateKeyError:
            return False
        except PyMongoError:  # Mongo trouble must not block Slack: process (handlers are idempotent anyway)
            log.exception("delivery log unavailable; processing %s without dedupe", key)
        return True

    def seen(self, key: str) -> bool:
        return self.col.count_documents({"_id": key}, limit=1) > 0


def dedupe_middleware(
    log_: DeliveryLog,
) -> Callable[[AsyncBoltRequest, BoltResponse, Callable[[], Awaitable[BoltResponse]]], Awaitable[BoltResponse]]:
    async def middleware(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        key = delivery_key(req.body)
        if key is not None:
            retries = req.headers.get("x-slack-retry-num") or []
            retry = retries[0] if retries else None
            # one small indexed insert: fast enough to stay on the loop, and no queue to wait in
            if not log_.first_time(key, retry):
                log.info("dropping repeated Slack delivery %s (retry %s)", key, retry)
                return BoltResponse(status=200, body="", headers={"x-slack-no-retry": ["1"]})
        return await next()

    return middleware
