"""Option tools: price + Greeks, implied volatility, and the volatility surface of a chain.

The same payload functions back the HTTP endpoints (agent/api/options.py) and the CLI (agent/cli/options.py).
Units in results: vol as a fraction and in %, vega per 1 vol point, theta per calendar day, rho per 1 % rate.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from core.settings import get_settings
from core.strict import StrictModel
from models.pricing import black76_greeks, bsm_greeks, coin_greeks, implied_vol
from models.pricing.iv import REASONS, IVCode
from models.volsurface import (
    ChainScore,
    OptionChain,
    SurfaceFit,
    evaluate_chain,
    fit_surface,
    parse_chains,
    read_chain,
    read_chains,
    summarise,
)
from models.volsurface.readers import pick_currency
from tools.registry import ToolError, tool

Model = Literal["black76", "bsm"]
OptionType = Literal["call", "put"]
DAYS_PER_YEAR = 365.0


def _r(x: float, digits: int = 10) -> float | None:
    return float(f"{x:.{digits}g}") if math.isfinite(x) else None


class OptionContract(StrictModel):
    model: Model = Field(default="black76", description="black76: underlying is the forward (Deribit); bsm: spot")
    option_type: OptionType = Field(description="call or put")
    underlying: float = Field(gt=0, le=1e9, description="forward (black76) or spot (bsm) price in USD")
    strike: float = Field(gt=0, le=1e9)
    expiry_days: float = Field(gt=0, le=36_500, description="calendar days to expiry")
    rate: float = Field(default=0.0, ge=-0.5, le=1.0, description="continuously compounded discount rate")
    dividend_yield: float = Field(default=0.0, ge=-1.0, le=1.0, description="bsm only: yield / borrow rate q")

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        # pydantic coerces true/false to 1.0/0.0 for float fields: a boolean premium or strike is a client bug
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                if info.annotation is float and isinstance(data.get(name), bool):
                    raise ValueError(f"{name} must be a number, not {str(data[name]).lower()}")
        return data

    @property
    def t(self) -> float:
        return self.expiry_days / DAYS_PER_YEAR


class PriceOptionArgs(OptionContract):
    vol: float = Field(gt=0, le=20.0, description="annualised volatility as a fraction (0.8 = 80 %)")
    inverse: bool = Field(default=False, description="also give coin-settled (Deribit inverse) premium and delta")


class ImpliedVolArgs(OptionContract):
    price: float = Field(ge=0, le=1e9, description="option premium")
    price_in: Literal["usd", "coin"] = Field(
        default="usd", description="'coin' for inverse premiums quoted in the underlying coin (Deribit BTC/ETH)"
    )


def price_payload(a: PriceOptionArgs) -> dict[str, Any]:
    cp = a.option_type == "call"
    if a.model == "black76":
        g = black76_greeks(a.underlying, a.strike, a.t, a.vol, a.rate, cp)
    else:
        g = bsm_greeks(a.underlying, a.strike, a.t, a.vol, a.rate, a.dividend_yield, cp)
    vals = {k: float(v) for k, v in g.as_dict().items()}
    if not all(math.isfinite(v) for v in vals.values()):
        raise ValueError("pricing produced a non-finite value for these inputs")
    out: dict[str, Any] = {
        "model": a.model,
        "option_type": a.option_type,
        "price": _r(vals["price"]),
        "delta": _r(vals["delta"]),
        "gamma": _r(vals["gamma"]),
        "vega_per_vol_pt": _r(vals["vega"] / 100.0),
        "theta_per_day": _r(vals["theta"] / DAYS_PER_YEAR),
        "rho_per_pct": _r(vals["rho"] / 100.0),
        "vanna": _r(vals["vanna"]),
        "volga_per_vol_pt2": _r(vals["volga"] / 1e4),
        "raw": {k: _r(v) for k, v in vals.items()},
        "units": "theta_per_day, vega_per_vol_pt, rho_per_pct and every coin figure: per calendar day, per vol "
        "point, per 1 % rate; raw greeks: vega/volga per unit vol, theta per year, rho per unit rate; delta/gamma vs "
        "underlying",
    }
    if a.inverse:
        cg = coin_greeks(g, a.underlying)
        out["coin"] = {k: _r(float(v)) for k, v in cg.items()}
    return out


def iv_payload(a: ImpliedVolArgs) -> dict[str, Any]:
    price = a.price * a.underlying if a.price_in == "coin" else a.price
    res = implied_vol(
        price, a.underlying, a.strike, a.t, a.rate, a.dividend_yield, a.option_type == "call", model=a.model
    )
    code = int(res.code)
    vol = float(res.vol)
    return {
        "model": a.model,
        "implied_vol": _r(vol) if code == IVCode.OK else None,
        "implied_vol_pct": _r(vol * 100, 8) if code == IVCode.OK else None,
        "ok": code == IVCode.OK,
        "reason": REASONS[code],
        "reason_code": IVCode(code).name.lower(),
        "price_usd": _r(price),
    }


class VolQuery(StrictModel):
    strike: float = Field(gt=0, le=1e9)
    expiry_days: float = Field(gt=0, le=36_500)


def surface_payload(fit: SurfaceFit, queries: list[VolQuery] | None = None, *, full: bool = False) -> dict[str, Any]:
    s = fit.summary()
    per_expiry = {pe["expiry"]: pe for pe in s["per_expiry"]}
    out: dict[str, Any] = {
        "arbitrage_free": s["arbitrage_free"],
        "within_spread_frac": _r(s["within_spread_frac"], 6),
        "within_spread_frac_all": _r(s["within_spread_frac_all"], 6),
        "rmse_vol_pts": _r(s["rmse_vol_pts"], 6),
        "max_abs_err_vol_pts": _r(s["max_abs_err_vol_pts"], 6),
        "quotes_scope": s["quotes_scope"],
        "n_with_both": s["n_with_both"],
        "n_expiries": s["n_expiries"],
        "skipped_expiries": s["skipped_expiries"],
        "left_out": fit.left_out,
        "format": fit.chain.meta.get("format"),
        "currency": fit.chain.underlying,
        "svi_ms_per_slice": _r(s["svi_ms_per_slice"], 4),
        "ssvi_ms": _r(s["ssvi_ms"], 4),
        "butterfly_ok": fit.arbitrage.butterfly_ok,
        "calendar_ok": fit.arbitrage.calendar_ok,
        "ssvi_arbitrage_free": s.get("ssvi_arbitrage_free"),
        "ssvi_rmse_vol_pts": _r(s.get("ssvi_rmse_vol_pts", float("nan")), 6),
        "ssvi_within_spread_frac": _r(s.get("ssvi_within_spread_frac", float("nan")), 6),
        "expiries": [
            {
                "expiry": sl.label,
                "days": _r(sl.t * DAYS_PER_YEAR, 6),
                "forward": _r(sl.forward, 8),
                "atm_vol_pct": _r(math.sqrt(max(float(sl.total_variance(np.zeros(1))[0]), 0.0) / sl.t) * 100, 6),
                "corrected": sl.correction is not None,
                "within_spread_frac": pe["within_spread_frac"],
                "rmse_vol_pts": _r(pe["rmse_vol_pts"], 6) if pe["rmse_vol_pts"] is not None else None,
                **({"svi": {k: _r(v, 8) for k, v in sl.params.as_dict().items()}} if full else {}),
                **({"correction": sl.correction.as_dict() if sl.correction else None} if full else {}),
            }
            for sl in fit.surface.slices
            for pe in [per_expiry[sl.label]]
        ],
    }
    if full:
        out["arbitrage"] = fit.arbitrage.as_dict()
        out["ssvi"] = fit.surface.ssvi.as_dict() if fit.surface.ssvi is not None else None
    if queries:
        strikes = np.array([q.strike for q in queries])
        ts = np.array([q.expiry_days for q in queries]) / DAYS_PER_YEAR
        iv = fit.surface.implied_vol(strikes, ts)
        out["queries"] = [
            {"strike": q.strike, "expiry_days": q.expiry_days, "implied_vol_pct": _r(float(v) * 100, 8)}
            for q, v in zip(queries, iv, strict=True)
        ]
    return out


def fit_chain_csv(path: str | Path, currency: str | None = None) -> SurfaceFit:
    """Fit a chain export in any supported format (see models/volsurface/readers.py); `currency` picks one of a
    multi-currency file (default: the only one, else BTC)."""
    return fit_surface(read_chain(Path(path), currency))


def fit_chain_text(text: str, currency: str | None = None) -> SurfaceFit:
    return fit_surface(pick_currency(parse_chains(text), currency, "chain"))


def chain_files(paths: list[str]) -> list[Path]:
    """CSV files named directly or found (sorted) in the named directories."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(x for x in p.iterdir() if x.suffix.lower() == ".csv" and x.is_file())
            if not found:
                raise ValueError(f"no .csv chain files in {p}")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"chain file not found: {p}")
    return out


def evaluate_chain_files(paths: list[str]) -> tuple[list[ChainScore], dict[str, Any]]:
    """Fit every chain (each currency of each file) and score it; unreadable files raise ValueError."""
    scores: list[ChainScore] = []
    for f in chain_files(paths):
        for chain in read_chains(f):
            scores.append(evaluate_chain(chain, name=f.name))
    return scores, summarise(scores)


def score_row(s: ChainScore) -> dict[str, Any]:
    d = s.as_dict()
    for key in (
        "within_spread",
        "mark_within_spread",
        "rmse_vol_pts",
        "max_abs_err_vol_pts",
        "fit_ms",
        "svi_ms_per_slice",
        "ssvi_ms",
    ):
        v = d[key]
        d[key] = _r(float(v), 6) if v is not None else None
    return d


def fit_live_chain(exchange_id: str, currency: str) -> SurfaceFit:
    """Live chain through ccxt (network). Only exchanges with fetchOptionChain (Deribit) work."""
    import ccxt

    from models.volsurface import chain_from_ccxt

    cls = getattr(ccxt, exchange_id, None)
    if cls is None:
        raise ValueError(f"unknown ccxt exchange {exchange_id!r}")
    ex = cls({"enableRateLimit": True})
    try:
        chain: OptionChain = chain_from_ccxt(ex, currency)
    except ccxt.BaseError as exc:
        raise ValueError(f"{exchange_id}: could not fetch the {currency} option chain: {exc}") from exc
    return fit_surface(chain)


# ------------------------------------------------------------------------------------------------------ tools


@tool(
    name="price_option",
    description="Price a European option (Black-76 on the forward, Deribit style, or Black-Scholes-Merton on spot) "
    "with delta, gamma, vega, theta, rho, vanna, volga; optionally the coin-settled (inverse) premium and delta.",
    args=PriceOptionArgs,
)
def price_option(args: PriceOptionArgs) -> dict[str, Any]:
    try:
        return price_payload(args)
    except ValueError as exc:
        raise ToolError(str(exc)) from exc


@tool(
    name="implied_vol",
    description="Implied volatility of an option premium (USD, or coin for Deribit inverse options); prices outside "
    "the no-arbitrage bounds return ok=false with the reason.",
    args=ImpliedVolArgs,
)
def implied_vol_tool(args: ImpliedVolArgs) -> dict[str, Any]:
    return iv_payload(args)


class VolSurfaceArgs(StrictModel):
    chain_csv: str | None = Field(
        default=None,
        max_length=500,
        description="chain CSV in the flat Deribit format: a path inside the desk's data directory (DATA_DIR), "
        "relative to it",
    )
    live_exchange: Literal["deribit"] | None = Field(default=None, description="fetch a live chain instead (network)")
    currency: str = Field(default="BTC", pattern=r"^[A-Z]{2,6}$")
    queries: list[VolQuery] = Field(default_factory=list, max_length=50, description="strikes/expiries to read off")

    @model_validator(mode="after")
    def _one_source(self) -> VolSurfaceArgs:
        if (self.chain_csv is None) == (self.live_exchange is None):
            raise ValueError("give exactly one of chain_csv or live_exchange")
        return self


def model_chain_path(raw: str, data_dir: Path) -> Path:
    """A chain path the model supplied, confined to the data directory.

    The model's arguments are untrusted (they may echo planted text), so it must not make the desk open arbitrary
    files: relative paths are taken from `data_dir`, and the resolved path (symlinks followed) must lie inside it.
    """
    root = data_dir.expanduser().resolve()
    given = Path(raw).expanduser()
    candidate = (given if given.is_absolute() else root / given).resolve()
    if not candidate.is_relative_to(root):
        raise ToolError(
            f"chain_csv {raw!r} is outside the data directory (DATA_DIR); only chain files inside it can be read, "
            "given relative to it, e.g. 'chains/btc.csv'"
        )
    return candidate


@tool(
    name="vol_surface",
    description="Fit an arbitrage-checked volatility surface (SVI per expiry, SSVI across) to an option chain; "
    "returns fit quality vs bid/ask IVs, arbitrage checks, ATM vol per expiry and implied vols at queried points.",
    args=VolSurfaceArgs,
)
def vol_surface(args: VolSurfaceArgs) -> dict[str, Any]:
    try:
        if args.chain_csv is not None:
            fit = fit_chain_csv(model_chain_path(args.chain_csv, Path(get_settings().data_dir)))
        else:
            fit = fit_live_chain(str(args.live_exchange), args.currency)
        return surface_payload(fit, args.queries)
    except (ValueError, FileNotFoundError) as exc:
        raise ToolError(str(exc)) from exc
