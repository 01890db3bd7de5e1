"""FastAPI application factory: the HTTP front door over the desk service."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from langchain_core.language_models import BaseChatModel
from pymongo.database import Database

from agent.api import ROUTER_MODULES
from agent.api.auth import ApiKeyStore
from agent.api.errors import install_error_handlers
from agent.api.middleware import ServiceMiddleware
from agent.api.responses import document_common_responses
from agent.desk import Desk
from agent.readiness import Readiness, StoreHealth
from agent.slack.app import build_slack_app
from core import storage
from core.ratelimit import FailureLimiter, RateLimiter
from core.settings import Settings, get_settings, register_secrets

log = logging.getLogger(__name__)


def _chroma_check(settings: Settings) -> tuple[bool, str]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        client: Any = chromadb.HttpClient(
            host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
        )
        client.heartbeat()
        return True, f"server {settings.chroma_host}:{settings.chroma_port}"
    path = settings.data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    client.heartbeat()
    return True, f"embedded at {path}"


def _exchange_check(desk: Desk, settings: Settings) -> tuple[bool, str]:
    out = desk.call_tool("get_ticker", {"symbol": settings.symbols[0] if settings.symbols else "BTC/USDT"})
    if not out.get("ok"):
        return False, str(out.get("error"))
    result = out["result"]
    if result.get("simulated"):
        return True, f"simulated exchange answering ({settings.exchange_id} not reachable or disabled)"
    return True, f"{result.get('exchange')} reachable"


def _reset_domain_services() -> None:
    from knowledge.service import set_service
    from trading.oms.factory import set_trading_service

    set_trading_service(None)
    set_service(None)


async def _start_market_streams(settings: Settings, database: Database[dict[str, Any]]) -> Any:
    """MARKET_STREAMS: websocket streams for SYMBOLS on the default venue feed the trading service's books, so that
    stops are watched from the stream (the service's REST poll stays as the fallback). Built eagerly here: the feed
    needs the service. A failure is logged and the desk runs on the poll alone."""
    import asyncio

    from trading.exchanges.factory import get_market_source
    from trading.market_data.live import start_market_streams
    from trading.oms import factory

    try:
        service = await asyncio.to_thread(factory.get_trading_service, settings, database)
        source = await asyncio.to_thread(get_market_source, settings)
        return await factory.arun(start_market_streams(source.adapter, service, symbols=settings.symbols))
    except Exception as exc:
        log.error("market streams not started (stops are watched by the REST poll only): %s", exc)
        return None


async def _start_trading_service(settings: Settings, database: Database[dict[str, Any]]) -> None:
    """Build the trading service before the first request: it reconciles with the venues and prices the held
    symbols (a restarted desk is restored before anyone reads it). A failure is logged; the first trading request
    then tries again."""
    from trading.oms import factory

    try:
        await asyncio.to_thread(factory.get_trading_service, settings, database)
    except Exception as exc:
        log.error("trading service not started at startup (the first trading request retries): %s", exc)


async def _stop_trading_service() -> None:
    from trading.oms import factory

    service = factory._service  # only stop one that was actually built
    if service is not None:
        try:
            await factory.arun(service.stop())
        except Exception as exc:  # shutting down: report, do not raise
            log.warning("trading service did not stop cleanly: %s", exc)


def _slack_signature_ok(settings: Settings, headers: Any, body: str) -> bool:
    from slack_sdk.signature import SignatureVerifier

    if settings.slack_signing_secret is None:
        return False
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not timestamp.isdigit() or not signature:
        return False
    verifier = SignatureVerifier(settings.slack_signing_secret.get_secret_value())
    return bool(verifier.is_valid(body=body, timestamp=timestamp, signature=signature))


def create_app(
    settings: Settings | None = None,
    *,
    db: Database[dict[str, Any]] | None = None,
    model: BaseChatModel | None = None,
    start_trading: bool = False,
) -> FastAPI:
    """`start_trading` (what `crypto-agent serve` passes) builds, reconciles and prices the trading service at
    startup instead of at the first trading request."""
    settings = settings or get_settings()
    register_secrets(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = db if db is not None else storage.retain(settings)
        desk = Desk(settings, database, model=model)
        app.state.settings = settings
        app.state.db = database
        app.state.desk = desk
        app.state.api_keys = ApiKeyStore(database)
        app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
        app.state.auth_failures = FailureLimiter(settings.auth_failure_limit, settings.auth_failure_window_s)
        readiness = Readiness(settings)
        readiness.add("chroma", lambda: _chroma_check(settings), required=False)
        readiness.add("exchange", lambda: _exchange_check(desk, settings), required=False)
        app.state.readiness = readiness
        app.state.store_health = StoreHealth(database)
        app.state.slack = build_slack_app(settings, desk)
        # Process-wide domain services are bound to one database: start each app with fresh ones so that they
        # are built on this app's settings and database on first use.
        _reset_domain_services()
        app.state.market_streams = await _start_market_streams(settings, database) if settings.market_streams else None
        if start_trading:
            await _start_trading_service(settings, database)
        for hook in list(getattr(app.state, "startup_hooks", [])):
            await hook(app)
        try:
            yield
        finally:
            for hook in list(getattr(app.state, "shutdown_hooks", [])):
                await hook(app)
            if app.state.market_streams is not None:
                from trading.oms import factory

                await factory.arun(app.state.market_streams.stop())
            await _stop_trading_service()
            _reset_domain_services()
            # The desk's queued conversation and usage writes go out while the client is still open.
            await asyncio.to_thread(desk.close)
            if db is None:
                storage.release()

    app = FastAPI(
        title="Crypto Quant Agent",
        version="0.1.0",
        description="A chat-driven crypto trading desk. Authenticate with `Authorization: Bearer <api key>` "
        "(create keys with `crypto-agent apikey create --scopes read,trade`).",
        lifespan=lifespan,
        # /docs and /redoc are served by agent.api.web from assets shipped in a package (no CDN)
        docs_url=None,
        redoc_url=None,
    )
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    install_error_handlers(app)
    app.add_middleware(ServiceMiddleware, max_body_bytes=settings.max_request_bytes)
    for name in ROUTER_MODULES:
        module = importlib.import_module(name)
        app.include_router(module.router)
        if hasattr(module, "install"):
            module.install(app)
    document_common_responses(app)  # 401/403/429/503 for scoped routes, 413/422 for bodies, in the OpenAPI document

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Any:
        bolt = request.app.state.slack
        if bolt is None:
            return JSONResponse(
                {"detail": "Slack is not configured (set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN)"}, 404
            )
        # Check the signature before anything parses the body: a forged or malformed request is a 401, whatever it
        # carries (bolt would otherwise try to parse it first, and trip on a non-numeric timestamp).
        body = (await request.body()).decode("utf-8", errors="replace")
        if not _slack_signature_ok(settings, request.headers, body):
            return JSONResponse({"detail": "invalid Slack signature or stale request"}, 401)
        from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler

        return await AsyncSlackRequestHandler(bolt).handle(request)

    return app
