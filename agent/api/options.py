"""HTTP: POST /v1/options/price, /v1/options/iv, /v1/options/surface (scope read)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import Field

from agent.api.auth import require_scope
from core.strict import StrictModel
from tools.options import (
    ImpliedVolArgs,
    PriceOptionArgs,
    VolQuery,
    fit_chain_text,
    iv_payload,
    price_payload,
    surface_payload,
)

router = APIRouter(tags=["options"])


class SurfaceRequest(StrictModel):
    chain_csv_text: str = Field(
        min_length=10,
        max_length=5_000_000,
        description="the chain as CSV text: flat Deribit tickers (snapshot_ts_ms, option_type, strike, expiry_ts_ms, "
        "underlying_price, bid_iv, ask_iv, mark_iv; IVs in percent), a Deribit book summary (bid/ask in coin with "
        "futures_price) or bid/ask IVs with Greeks; format and currency are detected (BTC when several)",
    )
    queries: list[VolQuery] = Field(default_factory=list, max_length=1_000)
    full: bool = Field(default=False, description="include SVI/SSVI parameters and arbitrage details")


@router.post("/v1/options/price", dependencies=[Depends(require_scope("read"))])
def option_price(body: PriceOptionArgs) -> dict[str, Any]:
    """Price and Greeks of one European option (vega per vol point, theta per day, rho per 1 %)."""
    try:
        return price_payload(body)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc


@router.post("/v1/options/iv", dependencies=[Depends(require_scope("read"))])
def option_iv(body: ImpliedVolArgs) -> dict[str, Any]:
    """Implied volatility; `ok=false` with a reason for prices outside the no-arbitrage bounds."""
    return iv_payload(body)


@router.post("/v1/options/surface", dependencies=[Depends(require_scope("read"))])
def option_surface(body: SurfaceRequest) -> dict[str, Any]:
    """Fit SVI/SSVI to a chain: fit quality vs bid/ask IVs, arbitrage checks and implied vols at `queries`."""
    try:
        fit = fit_chain_text(body.chain_csv_text)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    return surface_payload(fit, body.queries, full=body.full)
