"""Score a fitted surface against a chain's own quotes, side by side with the exchange's mark IV.

The scoring set is every out-of-the-money quote (calls K >= F, puts K < F) with both a bid and an ask IV, over all
expiries of the chain: quotes of an expiry the fit left out count as misses. "Inside spread" means the IV lies in
[bid IV, ask IV]. The mark's fraction is measured on the same quotes (those that also carry a mark IV).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from models.volsurface.chain import OptionChain
from models.volsurface.surface import SurfaceFit, fit_surface, otm_mask


@dataclass(frozen=True)
class ChainScore:
    name: str
    currency: str
    format: str
    n_expiries: int
    n_fitted_expiries: int
    n_quotes: int  # OTM quotes with bid and ask IV
    within_spread: float
    mark_within_spread: float | None  # None when the chain carries no mark IV
    n_mark_quotes: int
    rmse_vol_pts: float
    max_abs_err_vol_pts: float
    arbitrage_free: bool
    butterfly_ok: bool
    calendar_ok: bool
    fit_ms: float
    svi_ms_per_slice: float
    ssvi_ms: float
    left_out: list[dict[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_fit(fit: SurfaceFit, *, name: str = "chain", fit_ms: float = float("nan")) -> ChainScore:
    chain: OptionChain = fit.chain
    both = chain.has_both & otm_mask(chain)
    fitted = fit.fitted_iv
    inside = both & np.isfinite(fitted) & (fitted >= chain.bid_iv - 1e-9) & (fitted <= chain.ask_iv + 1e-9)
    n = int(both.sum())
    mid = 0.5 * (chain.bid_iv + chain.ask_iv)
    ok = both & np.isfinite(fitted)
    err = (fitted - mid)[ok] * 100.0
    # only a mark the exchange published counts (a mark recovered from Greeks, see readers, is not the exchange's)
    exchange_mark = "mark_from" not in chain.meta
    has_mark = both & np.isfinite(chain.mark_iv) & exchange_mark
    nm = int(has_mark.sum())
    mark_in = has_mark & (chain.mark_iv >= chain.bid_iv - 1e-9) & (chain.mark_iv <= chain.ask_iv + 1e-9)
    return ChainScore(
        name=name,
        currency=chain.underlying,
        format=str(chain.meta.get("format", "")),
        n_expiries=len(chain.expiries()),
        n_fitted_expiries=len(fit.surface.slices),
        n_quotes=n,
        within_spread=float(inside.sum() / n) if n else float("nan"),
        mark_within_spread=float(mark_in.sum() / nm) if nm else None,
        n_mark_quotes=nm,
        rmse_vol_pts=float(np.sqrt(np.mean(err**2))) if err.size else float("nan"),
        max_abs_err_vol_pts=float(np.max(np.abs(err))) if err.size else float("nan"),
        arbitrage_free=fit.arbitrage.arbitrage_free,
        butterfly_ok=fit.arbitrage.butterfly_ok,
        calendar_ok=fit.arbitrage.calendar_ok,
        fit_ms=fit_ms,
        svi_ms_per_slice=fit.svi_ms_per_slice,
        ssvi_ms=fit.ssvi_ms,
        left_out=[dict(x) for x in fit.left_out],
    )


def evaluate_chain(chain: OptionChain, *, name: str = "chain") -> ChainScore:
    t0 = time.perf_counter()
    fit = fit_surface(chain)
    return score_fit(fit, name=name, fit_ms=(time.perf_counter() - t0) * 1000.0)


def summarise(scores: list[ChainScore]) -> dict[str, Any]:
    """Aggregate over chains: the benchmark's keys."""
    if not scores:
        return {"chains": 0}
    ws = np.array([s.within_spread for s in scores])
    marks = [s.mark_within_spread for s in scores if s.mark_within_spread is not None]
    ours_on_mark_chains = [s.within_spread for s in scores if s.mark_within_spread is not None]
    return {
        "chains": len(scores),
        "within_spread_min": float(np.nanmin(ws)),
        "within_spread_median": float(np.nanmedian(ws)),
        "mark_within_spread_median": float(np.median(marks)) if marks else None,
        "mark_chains": len(marks),
        # ours over the same chains as the mark median (chains whose file carries the exchange's mark)
        "within_spread_median_mark_chains": float(np.median(ours_on_mark_chains)) if marks else None,
        "arbitrage_free_frac": float(np.mean([s.arbitrage_free for s in scores])),
        "rmse_vol_pts_max": float(np.nanmax([s.rmse_vol_pts for s in scores])),
        "svi_ms_per_slice_median": float(np.median([s.svi_ms_per_slice for s in scores])),
        "ssvi_ms_median": float(np.nanmedian([s.ssvi_ms for s in scores])),
    }
