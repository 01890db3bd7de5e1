"""HTTP view of the scheduler and the briefing schedules (read scope); installs the Slack/scheduler hooks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from agent.api.auth import require_scope
from agent.slack.briefings import BriefingStore
from agent.slack.install import install as install
from core.cache import TTLCache

router = APIRouter(tags=["scheduler"])


class SchedulerView(BaseModel):
    leader: bool
    owner: str
    holder: str | None
    jobs: list[dict[str, Any]]
    briefings: list[dict[str, Any]]


@router.get("/v1/scheduler", response_model=SchedulerView, dependencies=[Depends(require_scope("read"))])
async def scheduler_status(request: Request) -> SchedulerView:
    """Leader status, the jobs in the job store (leader only) and the briefing schedules (at most 2 s old)."""
    scheduler = getattr(request.app.state, "scheduler", None)
    db = request.app.state.db

    def load() -> SchedulerView:
        status = scheduler.status().to_dict() if scheduler is not None else {
            "leader": False, "owner": "", "holder": None, "jobs": []
        }
        briefings = [
            {**{k: v for k, v in doc.items() if k != "_id"}, "id": doc["_id"]} for doc in BriefingStore(db).all()
        ]
        return SchedulerView(**status, briefings=briefings)

    cache = getattr(request.app.state, "scheduler_view_cache", None)
    if cache is None:
        cache = request.app.state.scheduler_view_cache = TTLCache(2.0)
    view: SchedulerView = await cache.aget_or_compute("view", load)
    return view
