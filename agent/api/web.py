"""The web desk and offline API docs.

- `GET /` serves the desk page (agent/web/static/index.html); its scripts, styles and icon are under `/ui/`.
- `GET /docs` and `GET /redoc` serve Swagger UI and ReDoc from assets shipped in the `fastapi-standalone-docs`
  package (MIT; Swagger UI Apache-2.0, ReDoc MIT) under `/docs-assets/`, so the docs render without internet.
- `GET /v1/whoami` (read): the calling key's identity and scopes, and the desk settings a page needs to draw its
  controls (symbols, four-eyes, mode).
- `GET /v1/desk/equity` (read): the desk's equity curve (one mark per UTC day, as the risk gate records it) and the
  equity marked now.

The page reads everything else from the existing routes, sending the key in the Authorization header.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from agent.api.auth import Principal, require_scope
from agent.web import INDEX_HTML, STATIC_DIR

router = APIRouter()

# The desk page loads only its own files and talks only to this origin: no inline script, no third-party host.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def docs_assets_dir() -> Path:
    """Swagger UI and ReDoc bundles shipped inside the `fastapi-standalone-docs` wheel."""
    return Path(str(resources.files("fastapi_standalone_docs"))) / "static"


def install(app: FastAPI) -> None:
    app.mount("/ui", StaticFiles(directory=STATIC_DIR), name="ui")
    app.mount("/docs-assets", StaticFiles(directory=docs_assets_dir()), name="docs-assets")


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/", include_in_schema=False)
async def desk_page() -> FileResponse:
    return FileResponse(INDEX_HTML, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)


@router.get("/docs", include_in_schema=False)
async def swagger_docs(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}/docs-assets/swagger/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs-assets/swagger/swagger-ui.css",
        swagger_favicon_url=f"{root}/ui/favicon.svg",
    )


@router.get("/redoc", include_in_schema=False)
async def redoc_docs(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}/docs-assets/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{root}/ui/favicon.svg",
        with_google_fonts=False,
    )


@router.get("/v1/whoami", tags=["desk"])
async def whoami(request: Request, p: Principal = Depends(require_scope("read"))) -> dict[str, Any]:
    """The calling key (name, id, scopes; `admin` implies every scope) and the desk settings a client needs to
    draw its controls."""
    settings = request.app.state.settings
    return {
        "actor": p.actor,
        "key_id": p.key_id,
        "scopes": sorted(p.scopes),
        "can": {scope: p.has(scope) for scope in ("read", "trade", "approve", "admin")},
        "four_eyes": bool(settings.four_eyes),
        "symbols": list(settings.symbols),
        "mode": "live" if settings.live_trading else "paper",
    }


@router.get("/v1/desk/equity", tags=["trading"])
async def desk_equity(request: Request, _p: Principal = Depends(require_scope("read"))) -> dict[str, Any]:
    """The equity curve the risk gate records (the last mark of each UTC day) and the equity marked to market
    now; the page adds its own live samples between days."""
    import asyncio

    from agent.api.trading import _svc

    svc = _svc(request)

    def load() -> dict[str, Any]:
        doc = svc.store.risk_state.find_one({"_id": "curve"}) or {}
        points = [{"day": day, "equity": float(v)} for day, v in sorted((doc.get("p") or {}).items())]
        return {"points": points, "equity": svc.positions()["equity"]}

    return await asyncio.to_thread(load)
