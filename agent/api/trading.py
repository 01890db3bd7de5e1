"""HTTP for the money path: proposals, approvals, orders, positions, risk, desk halt/resume/kill.

Scopes: trade (propose), approve (approve/reject), read (orders, positions, risk), admin (halt, resume, kill).
Authorisation is the API key's scope, looked up by its key id; the key's name is only the label the desk records
(SLACK_APPROVERS and SLACK_ADMINS list Slack user ids and apply to Slack).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import Field

from agent.api.auth import Principal, require_scope
from core.cache import TTLCache
from core.strict import StrictModel
from tools.registry import ToolError
from tools.trading import ProposeOrderArgs, SizePositionArgs, compute_size
from trading.oms.factory import arun, get_trading_service
from trading.oms.service import MarketDataUnavailable, TradingError, TradingService

router = APIRouter(tags=["trading"])
SNAPSHOT_TTL_S = 1.0


def _svc(request: Request) -> TradingService:
    """The app's service (tests install one on app.state.trading), else the process-wide one."""
    svc = getattr(request.app.state, "trading", None)
    if isinstance(svc, TradingService):
        return svc
    svc = get_trading_service(getattr(request.app.state, "settings", None), getattr(request.app.state, "db", None))
    request.app.state.trading = svc
    return svc


def _who(p: Principal) -> str:
    return p.actor


class DecisionBody(StrictModel):
    reason: str = Field(default="", max_length=500)


class DeskBody(StrictModel):
    reason: str = Field(default="", max_length=500)
    reset_baselines: bool = Field(default=False, description="resume only: accept the current loss as new baseline")


async def _invalidate(request: Request) -> AsyncIterator[None]:
    _snapshots(request).clear()
    yield
    _snapshots(request).clear()


_STATUS_CODES = {"not_found": 404, "forbidden": 403}


def _result(res: Any) -> dict[str, Any]:
    body = res.to_dict()
    code = _STATUS_CODES.get(res.status)
    if code:
        raise HTTPException(status_code=code, detail="; ".join(res.reasons) or res.status)
    return dict(body)


@router.post(
    "/v1/proposals",
    status_code=201,
    dependencies=[Depends(_invalidate)],
    responses={422: {"description": "invalid request, or no fresh market data / the desk refused to record it"}},
)
async def create_proposal(
    body: ProposeOrderArgs, request: Request, p: Principal = Depends(require_scope("trade"))
) -> dict[str, Any]:
    svc = _svc(request)
    try:
        res = await arun(svc.propose_async(body.to_request(), _who(p), source="api"))
    except (MarketDataUnavailable, TradingError) as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    return _result(res)


_NO_ORDER: dict[int | str, dict[str, Any]] = {404: {"description": "no order with this id"}}
_ACTION: dict[int | str, dict[str, Any]] = {
    **_NO_ORDER,
    403: {"description": "the key lacks the scope, or four-eyes: the requester cannot approve their own order"},
}


@router.post("/v1/approvals/{order_id}/approve", dependencies=[Depends(_invalidate)], responses=_ACTION)
async def approve(order_id: str, request: Request, p: Principal = Depends(require_scope("approve"))) -> dict[str, Any]:
    return _result(await arun(_svc(request).approve(order_id, _who(p), preauthorised=True)))


@router.post("/v1/approvals/{order_id}/reject", dependencies=[Depends(_invalidate)], responses=_ACTION)
async def reject(
    order_id: str, request: Request, body: DecisionBody | None = None, p: Principal = Depends(require_scope("approve"))
) -> dict[str, Any]:
    reason = (body.reason if body else "") or "rejected by approver"
    return _result(_svc(request).reject(order_id, _who(p), reason, preauthorised=True))


@router.get("/v1/orders")
async def list_orders(
    request: Request,
    state: str | None = Query(default=None, max_length=30),
    symbol: str | None = Query(default=None, max_length=30),
    limit: int = Query(default=50, ge=1, le=500),
    _p: Principal = Depends(require_scope("read")),
) -> dict[str, Any]:
    svc = _svc(request)
    return await _snapshots(request).aget_or_compute(
        ("orders", state, symbol, limit), lambda: {"orders": svc.list_orders(state, symbol, limit)}
    )


@router.get("/v1/orders/{order_id}", responses=_NO_ORDER)
def get_order(order_id: str, request: Request, _p: Principal = Depends(require_scope("read"))) -> dict[str, Any]:
    doc = _svc(request).get_order(order_id)
    if doc is None:
        raise HTTPException(status_code=404, detail=f"no order {order_id}")
    return doc


@router.post("/v1/orders/{order_id}/cancel", dependencies=[Depends(_invalidate)], responses=_NO_ORDER)
async def cancel(order_id: str, request: Request, p: Principal = Depends(require_scope("trade"))) -> dict[str, Any]:
    return _result(await arun(_svc(request).cancel_order(order_id, _who(p))))


def _snapshots(request: Request) -> TTLCache[dict[str, Any]]:
    """Order lists, positions and risk (marked to market on every call): readers polling them share one snapshot
    for up to a second. Every change made through this API clears it, before and after the change (`_invalidate`)."""
    cache = getattr(request.app.state, "trading_snapshots", None)
    if cache is None:
        cache = request.app.state.trading_snapshots = TTLCache(SNAPSHOT_TTL_S)
    return cache


@router.get("/v1/positions")
async def positions(
    request: Request, by_venue: bool = False, _p: Principal = Depends(require_scope("read"))
) -> dict[str, Any]:
    svc = _svc(request)
    return await _snapshots(request).aget_or_compute(("positions", by_venue), lambda: svc.positions(by_venue=by_venue))


@router.get("/v1/risk")
async def risk(request: Request, _p: Principal = Depends(require_scope("read"))) -> dict[str, Any]:
    svc = _svc(request)
    return await _snapshots(request).aget_or_compute(("risk",), svc.risk_status)


@router.post("/v1/desk/halt", dependencies=[Depends(_invalidate)])
def halt(
    request: Request, body: DeskBody | None = None, p: Principal = Depends(require_scope("admin"))
) -> dict[str, Any]:
    return _svc(request).halt(_who(p), (body.reason if body else "") or "halted via API")


@router.post("/v1/desk/resume", dependencies=[Depends(_invalidate)])
def resume(
    request: Request, body: DeskBody | None = None, p: Principal = Depends(require_scope("admin"))
) -> dict[str, Any]:
    return _svc(request).resume(
        _who(p), (body.reason if body else "") or "resumed via API", reset_baselines=bool(body and body.reset_baselines)
    )


@router.post("/v1/desk/kill", dependencies=[Depends(_invalidate)])
async def kill(
    request: Request, body: DeskBody | None = None, p: Principal = Depends(require_scope("admin"))
) -> dict[str, Any]:
    return await arun(_svc(request).kill(_who(p), (body.reason if body else "") or "kill switch via API"))


@router.post("/v1/risk/size")
def size_position(body: SizePositionArgs, _p: Principal = Depends(require_scope("read"))) -> dict[str, Any]:
    """Position size from the desk's sizing functions (the `size_position` tool's); it proposes nothing."""
    try:
        return compute_size(body)
    except ToolError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
