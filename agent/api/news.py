"""News HTTP routes: search, sentiment (per-symbol index, or score given texts), events, impact (scope read); ingest
(admin).

Search, text scoring and ingest are sync `def` (FastAPI runs them in a worker thread): embedding and Chroma calls
block. Events, the sentiment index and impact are polled by dashboards with the same few parameter sets: they are
`async def` and answer from a shared snapshot (`NEWS_SNAPSHOT_TTL_S`) on the event loop; only a miss runs the
database work in a worker thread. An ingest through this API clears the snapshot before and after it runs; items
ingested elsewhere (the scheduler, the CLI, another replica) show within the TTL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from pydantic import Field

from agent.api.auth import require_scope
from core.cache import TTLCache
from core.strict import StrictModel
from knowledge.events import EVENT_TYPES
from knowledge.impact import ImpactError
from knowledge.service import NewsService, set_service
from knowledge.text import base_asset
from tools.news import IMPACT_TIMEFRAMES, impact_view

router = APIRouter(tags=["news"])

# News changes when an ingest runs (minutes apart); a few seconds of staleness costs nothing to a reader.
NEWS_SNAPSHOT_TTL_S = 5.0


def install(app: FastAPI) -> None:
    """Build the news service on the app's settings and database at start-up (tools share it)."""

    async def _start(app: FastAPI) -> None:
        service = NewsService(app.state.settings, db=app.state.db)
        app.state.news = service
        set_service(service)

    app.state.startup_hooks.append(_start)


def _service(request: Request) -> NewsService:
    svc = getattr(request.app.state, "news", None)
    if svc is None:
        svc = NewsService(getattr(request.app.state, "settings", None), db=getattr(request.app.state, "db", None))
        request.app.state.news = svc
    return svc


def _snapshots(request: Request) -> TTLCache[dict[str, Any]]:
    """Per-app snapshot of the news read routes, keyed by route and normalised parameters."""
    cache: TTLCache[dict[str, Any]] | None = getattr(request.app.state, "news_snapshots", None)
    if cache is None:
        cache = request.app.state.news_snapshots = TTLCache(NEWS_SNAPSHOT_TTL_S)
    return cache


async def _invalidate(request: Request) -> AsyncIterator[None]:
    _snapshots(request).clear()
    yield
    _snapshots(request).clear()


def _csv(value: str | None, *, upper: bool = False) -> list[str] | None:
    if not value:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if len(items) > 20:
        raise HTTPException(400, "at most 20 comma-separated values")
    if not upper:
        return items
    syms = [base_asset(v) for v in items]
    bad = [s for s in syms if not s.isascii() or not s.isalnum() or len(s) > 12]
    if bad:
        raise HTTPException(400, f"bad symbol(s) {bad}: use coin codes like BTC or pairs like BTC/USDT")
    return syms


@router.get("/v1/news/search", dependencies=[Depends(require_scope("read"))])
def news_search(
    request: Request,
    q: str = Query(min_length=2, max_length=300, description="query text"),
    symbols: str | None = Query(default=None, description="comma-separated coins, e.g. BTC,ETH"),
    since_hours: float | None = Query(default=None, gt=0, le=24 * 3650),
    sources: str | None = Query(default=None, description="comma-separated outlet names"),
    events: str | None = Query(default=None, description=f"comma-separated event types: {', '.join(EVENT_TYPES)}"),
    k: int = Query(default=10, ge=1, le=100),
    hybrid: bool = True,
) -> dict[str, Any]:
    ev = _csv(events)
    if ev and (bad := [e for e in ev if e not in EVENT_TYPES]):
        raise HTTPException(400, f"unknown event type(s) {bad}; valid: {', '.join(EVENT_TYPES)}")
    hits = _service(request).search(q, k=k, symbols=_csv(symbols, upper=True), since_hours=since_hours,
                                    sources=_csv(sources), events=ev, hybrid=hybrid)
    return {"query": q, "count": len(hits), "results": [h.as_dict() for h in hits]}


class SentimentRequest(StrictModel):
    texts: list[str] = Field(min_length=1, max_length=200)
    offline: bool | None = Field(default=None, description="force the offline model; default: LLM when configured")


@router.post("/v1/news/sentiment", dependencies=[Depends(require_scope("read"))])
def news_sentiment_texts(request: Request, body: SentimentRequest) -> dict[str, Any]:
    if any(len(t) > 10_000 for t in body.texts):
        raise HTTPException(400, "each text must be at most 10,000 characters")
    results = _service(request).score_texts(body.texts, offline=body.offline)
    return {"results": [r.as_dict() for r in results]}


@router.get("/v1/news/sentiment", dependencies=[Depends(require_scope("read"))])
async def news_sentiment_index(
    request: Request,
    symbols: str = Query(min_length=1, description="comma-separated coins, e.g. BTC,ETH"),
    half_life_hours: float = Query(default=24.0, gt=0, le=24 * 30),
    window_hours: float = Query(default=168.0, gt=0, le=24 * 90),
) -> dict[str, Any]:
    syms = _csv(symbols, upper=True) or []
    svc = _service(request)

    def compute() -> dict[str, Any]:
        pairs = svc.sentiment_with_signals(syms, half_life_hours=half_life_hours, window_hours=window_hours)
        return {"symbols": [{**i.as_dict(), "signal": round(sig.signal, 4), "events": sig.events}
                            for i, sig in pairs]}

    return await _snapshots(request).aget_or_compute(("sentiment", tuple(syms), half_life_hours, window_hours),
                                                     compute)


@router.get("/v1/news/events", dependencies=[Depends(require_scope("read"))])
async def news_events(
    request: Request,
    symbols: str | None = Query(default=None),
    types: str | None = Query(default=None, description=f"comma-separated: {', '.join(EVENT_TYPES)}"),
    since_hours: float | None = Query(default=None, gt=0, le=24 * 3650, description="only the last N hours "
                                      "(default: any age; the newest `limit` events)"),
    limit: int = Query(default=50, ge=1, le=500),
) -> dict[str, Any]:
    ev = _csv(types)
    if ev and (bad := [e for e in ev if e not in EVENT_TYPES]):
        raise HTTPException(400, f"unknown event type(s) {bad}; valid: {', '.join(EVENT_TYPES)}")
    syms = _csv(symbols, upper=True)
    svc = _service(request)

    def compute() -> dict[str, Any]:
        items = svc.events(symbols=syms, types=ev, since_hours=since_hours, limit=limit)
        return {"count": len(items), "events": items}

    key = ("events", tuple(syms or ()), tuple(ev or ()), since_hours, limit)
    return await _snapshots(request).aget_or_compute(key, compute)


@router.get("/v1/news/impact", dependencies=[Depends(require_scope("read"))])
async def news_impact(
    request: Request,
    event_type: str | None = Query(default=None, description=f"one of: {', '.join(EVENT_TYPES)}; default all"),
    symbol: str | None = Query(default=None, max_length=20, description="a coin, e.g. SOL or SOL/USDT"),
    since_hours: float | None = Query(default=None, gt=0, le=24 * 3650, description="default: all history"),
    timeframe: str = Query(default="1h", description=f"candles: {', '.join(IMPACT_TIMEFRAMES)}"),
) -> dict[str, Any]:
    """Event study: abnormal returns of the named coins 1h/4h/24h after each event type (benchmark BTC/USDT),
    from the stored candles (`crypto-agent data download`). 404 when the candles are missing, saying how to get
    them."""
    # event type and timeframe are checked by `impact_view` (its ValueError is the 400 below), as for the CLI
    if symbol and "," in symbol:
        raise HTTPException(400, "symbol takes one coin, e.g. SOL or SOL/USDT")
    coins = _csv(symbol, upper=True) if symbol else None
    sym = coins[0] if coins else None
    svc = _service(request)

    def compute() -> dict[str, Any]:
        return impact_view(svc, event_type=event_type, symbol=sym, since_hours=since_hours, timeframe=timeframe)

    try:
        # Errors (missing candles, bad input) are not cached: the next request tries again.
        return await _snapshots(request).aget_or_compute(("impact", event_type, sym, since_hours, timeframe),
                                                         compute)
    except ImpactError as exc:
        raise HTTPException(404, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc


class IngestRequest(StrictModel):
    query: str | None = Field(default=None, max_length=200, description="optional keyword filter / Google query")
    lookback_hours: float = Field(default=48.0, gt=0, le=24 * 30)
    retention_days: int | None = Field(default=180, ge=1, le=3650)


@router.post("/v1/news/ingest", dependencies=[Depends(require_scope("admin")), Depends(_invalidate)])
def news_ingest(request: Request, body: IngestRequest) -> dict[str, Any]:
    return _service(request).ingest(query=body.query, lookback_hours=body.lookback_hours,
                                    retention_days=body.retention_days)
