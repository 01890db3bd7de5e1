"""Volatility surface from an option chain: SVI per expiry (butterfly and calendar conditions enforced), SSVI across
expiries, arbitrage checks, interpolation to any strike and expiry, and fit quality against bid/ask implied vols.

Interpolation: total variance is linear in t between fitted expiries at fixed log-moneyness k = ln(K/F(t)) (which
keeps w non-decreasing in t), scaled by t/t_1 before the first expiry and by t/t_N after the last; the forward is
interpolated log-linearly in t and held flat outside.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from models.volsurface.arbitrage import ArbitrageReport, check_surface
from models.volsurface.chain import OptionChain
from models.volsurface.ssvi import SSVIParams, fit_ssvi
from models.volsurface.svi import SVIParams, fit_svi

FloatArray = npt.NDArray[np.float64]
MIN_SPREAD = 0.002  # vol floor on the bid/ask spread used as a weight
MARK_ONLY_SPREAD = (
    0.25  # notional spread given to quotes with only a mark IV (Deribit marks in the wings are extrapolations)
)
MIN_QUOTES = 5


@dataclass(frozen=True)
class Slice:
    label: str
    t: float
    forward: float
    params: SVIParams
    n_quotes: int


@dataclass
class VolSurface:
    slices: list[Slice]
    ssvi: SSVIParams | None = None

    @property
    def t(self) -> FloatArray:
        return np.array([s.t for s in self.slices])

    def forward(self, t: npt.ArrayLike) -> FloatArray:
        tt = np.asarray(t, dtype=np.float64)
        lf = np.log([s.forward for s in self.slices])
        return np.asarray(np.exp(np.interp(tt, self.t, lf)), dtype=np.float64)

    def total_variance(self, k: npt.ArrayLike, t: npt.ArrayLike, model: Literal["svi", "ssvi"] = "svi") -> FloatArray:
        """w(k, t) for arrays k and t (broadcast)."""
        k_, t_ = np.broadcast_arrays(np.asarray(k, dtype=np.float64), np.asarray(t, dtype=np.float64))
        if model == "ssvi":
            if self.ssvi is None:
                raise ValueError("surface has no SSVI fit")
            return self.ssvi.total_variance(k_, t_)
        ts = self.t
        out = np.empty(k_.shape)
        flat_k = k_.reshape(-1)
        flat_t = t_.reshape(-1)
        res = out.reshape(-1)
        idx = np.searchsorted(ts, flat_t, side="left")
        for j in np.unique(idx):
            sel = idx == j
            kk = flat_k[sel]
            tt = flat_t[sel]
            if j == 0:
                res[sel] = self.slices[0].params.total_variance(kk) * tt / ts[0]
            elif j >= len(ts):
                res[sel] = self.slices[-1].params.total_variance(kk) * tt / ts[-1]
            else:
                t0, t1 = ts[j - 1], ts[j]
                a = (tt - t0) / (t1 - t0)
                w0 = self.slices[j - 1].params.total_variance(kk)
                w1 = self.slices[j].params.total_variance(kk)
                res[sel] = (1 - a) * w0 + a * w1
        return out

    def implied_vol(self, strike: npt.ArrayLike, t: npt.ArrayLike, model: Literal["svi", "ssvi"] = "svi") -> FloatArray:
        """Black implied vol at absolute strikes and expiries (years)."""
        t_ = np.asarray(t, dtype=np.float64)
        if np.any(t_ <= 0):
            raise ValueError("expiry must be positive")
        k = np.log(np.asarray(strike, dtype=np.float64) / self.forward(t_))
        return np.asarray(np.sqrt(np.maximum(self.total_variance(k, t_, model), 0.0) / t_), dtype=np.float64)

    def implied_vol_k(self, k: npt.ArrayLike, t: npt.ArrayLike, model: Literal["svi", "ssvi"] = "svi") -> FloatArray:
        t_ = np.asarray(t, dtype=np.float64)
        return np.asarray(np.sqrt(np.maximum(self.total_variance(k, t_, model), 0.0) / t_), dtype=np.float64)

    def check_arbitrage(self, k: FloatArray | None = None, model: Literal["svi", "ssvi"] = "svi") -> ArbitrageReport:
        grid = np.linspace(-1.5, 1.5, 301) if k is None else k
        ts = self.t
        # the fitted expiries plus points between them (interpolated surface)
        mids = 0.5 * (ts[:-1] + ts[1:])
        tgrid = np.unique(np.concatenate([ts, mids, [0.5 * ts[0], ts[-1] * 1.5]]))
        return check_surface(lambda kk, tt: self.total_variance(kk, tt, model), tgrid, grid)

    def as_dict(self) -> dict[str, Any]:
        return {
            "slices": [
                {"expiry": s.label, "t": s.t, "forward": s.forward, "n_quotes": s.n_quotes, "svi": s.params.as_dict()}
                for s in self.slices
            ],
            "ssvi": self.ssvi.as_dict() if self.ssvi is not None else None,
        }


@dataclass
class FitQuality:
    n_quotes: int
    n_with_both: int
    within_spread_frac: float
    rmse_vol_pts: float
    max_abs_err_vol_pts: float
    per_expiry: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SurfaceFit:
    surface: VolSurface
    quality: FitQuality  # out-of-the-money quotes: the calibration set
    quality_all: FitQuality  # every quote, in-the-money ones included
    ssvi_quality: FitQuality | None
    arbitrage: ArbitrageReport
    svi_ms_per_slice: float
    ssvi_ms: float
    skipped: list[str]
    chain: OptionChain
    fitted_iv: FloatArray
    target_iv: FloatArray

    def summary(self) -> dict[str, Any]:
        q = self.quality
        out: dict[str, Any] = {
            "arbitrage_free": self.arbitrage.arbitrage_free,
            "within_spread_frac": q.within_spread_frac,
            "rmse_vol_pts": q.rmse_vol_pts,
            "max_abs_err_vol_pts": q.max_abs_err_vol_pts,
            "n_quotes": q.n_quotes,
            "n_with_both": q.n_with_both,
            "quotes_scope": "out-of-the-money quotes (calls K>=F, puts K<F), the calibration set",
            "within_spread_frac_all": self.quality_all.within_spread_frac,
            "n_with_both_all": self.quality_all.n_with_both,
            "n_expiries": len(self.surface.slices),
            "skipped_expiries": self.skipped,
            "svi_ms_per_slice": self.svi_ms_per_slice,
            "ssvi_ms": self.ssvi_ms,
            "arbitrage": self.arbitrage.as_dict(),
            "per_expiry": q.per_expiry,
            "surface": self.surface.as_dict(),
        }
        if self.ssvi_quality is not None:
            out["ssvi_within_spread_frac"] = self.ssvi_quality.within_spread_frac
            out["ssvi_rmse_vol_pts"] = self.ssvi_quality.rmse_vol_pts
            out["ssvi_arbitrage_free"] = bool(self.surface.ssvi is not None and self.surface.ssvi.arbitrage_free())
        return out


def targets(chain: OptionChain) -> tuple[FloatArray, FloatArray]:
    """Target IV per quote (mid of bid/ask IV, else mark IV) and the spread used to weight it."""
    both = chain.has_both
    mid = np.where(both, 0.5 * (chain.bid_iv + chain.ask_iv), chain.mark_iv)
    spread = np.where(both, np.maximum(chain.ask_iv - chain.bid_iv, MIN_SPREAD), MARK_ONLY_SPREAD)
    return np.asarray(mid, dtype=np.float64), np.asarray(spread, dtype=np.float64)


def otm_mask(chain: OptionChain) -> npt.NDArray[np.bool_]:
    """Out-of-the-money quotes (calls at K >= F, puts at K < F): the liquid side, used for calibration."""
    return np.asarray(np.where(chain.is_call, chain.strike >= chain.forward, chain.strike < chain.forward), dtype=bool)


def quality(
    chain: OptionChain, fitted: FloatArray, target: FloatArray, subset: npt.NDArray[np.bool_] | None = None
) -> FitQuality:
    """Share of quotes with both bid and ask IV whose fitted IV lies inside [bid, ask], and the error of the fit
    against the mid IV of those quotes (vol points), over `subset` (default: all quotes)."""
    both = chain.has_both if subset is None else chain.has_both & subset
    ok = np.isfinite(target) & np.isfinite(fitted)
    inside = both & ok & (fitted >= chain.bid_iv - 1e-9) & (fitted <= chain.ask_iv + 1e-9)
    err = (fitted - target)[ok & both] * 100.0
    per: list[dict[str, Any]] = []
    labels = np.array(chain.expiry_label)
    for lab, t in chain.expiries():
        sel = labels == lab
        e = (fitted - target)[sel & ok & both] * 100.0
        nb = int(np.sum(both[sel] & ok[sel]))
        per.append(
            {
                "expiry": lab,
                "t": t,
                "n_quotes": int(np.sum(sel & ok)),
                "n_with_both": nb,
                "within_spread_frac": float(np.sum(inside[sel]) / nb) if nb else None,
                "rmse_vol_pts": float(np.sqrt(np.mean(e**2))) if e.size else None,
            }
        )
    nboth = int(np.sum(both & ok))
    return FitQuality(
        n_quotes=int((ok if subset is None else ok & subset).sum()),
        n_with_both=nboth,
        within_spread_frac=float(inside.sum() / nboth) if nboth else float("nan"),
        rmse_vol_pts=float(np.sqrt(np.mean(err**2))) if err.size else float("nan"),
        max_abs_err_vol_pts=float(np.max(np.abs(err))) if err.size else float("nan"),
        per_expiry=per,
    )


def fit_surface(chain: OptionChain, *, with_ssvi: bool = True) -> SurfaceFit:
    """Calibrate SVI slices (shortest expiry first, each no lower than the previous on the check grid) and SSVI."""
    if len(chain) == 0:
        raise ValueError("empty option chain")
    k_all = chain.log_moneyness
    target, spread = targets(chain)
    labels = np.array(chain.expiry_label)
    otm = otm_mask(chain)
    usable = np.isfinite(target) & (target > 0) & np.isfinite(k_all) & otm
    if not usable.any():
        raise ValueError("no quote in the chain has an implied volatility")
    kq = k_all[usable]
    lo, hi = float(np.min(kq)), float(np.max(kq))
    span = hi - lo
    grid = np.linspace(lo - 0.5 * span - 0.5, hi + 0.5 * span + 0.5, 161)
    slices: list[Slice] = []
    skipped: list[str] = []
    prev: SVIParams | None = None
    t0 = time.perf_counter()
    for lab, t in chain.expiries():
        sel = (labels == lab) & usable
        if sel.sum() < MIN_QUOTES:
            skipped.append(lab)
            continue
        k = k_all[sel]
        iv = target[sel]
        w = iv * iv * t
        wt = 1.0 / (iv * spread[sel]) ** 2
        fit = fit_svi(k, w, wt, grid=grid, prev=prev)
        prev = fit.params
        fwd = float(np.median(chain.forward[sel]))
        slices.append(Slice(lab, t, fwd, fit.params, int(sel.sum())))
    svi_s = time.perf_counter() - t0
    if not slices:
        raise ValueError(f"no expiry has at least {MIN_QUOTES} quotes with an implied volatility")
    surface = VolSurface(slices)
    fitted = np.full(len(chain), np.nan)
    ts = surface.t
    for i, s in enumerate(slices):
        sel = labels == s.label
        fitted[sel] = np.sqrt(np.maximum(s.params.total_variance(k_all[sel]), 0.0) / ts[i])
    q = quality(chain, fitted, target, otm)
    q_all = quality(chain, fitted, target)
    ssvi_ms = float("nan")
    ssvi_q: FitQuality | None = None
    if with_ssvi and len(slices) >= 2:
        theta = np.array([s.params.total_variance(np.zeros(1))[0] for s in slices])
        keep = usable & np.isin(labels, [s.label for s in slices])
        t1 = time.perf_counter()
        sfit = fit_ssvi(
            k_all[keep],
            chain.t[keep],
            target[keep] ** 2 * chain.t[keep],
            ts,
            theta,
            1.0 / (target[keep] * spread[keep] * chain.t[keep]) ** 2,
        )
        ssvi_ms = (time.perf_counter() - t1) * 1000.0
        surface.ssvi = sfit.params
        fitted_ssvi = np.full(len(chain), np.nan)
        fitted_ssvi[keep] = np.sqrt(sfit.params.total_variance(k_all[keep], chain.t[keep]) / chain.t[keep])
        ssvi_q = quality(chain, fitted_ssvi, target, otm)
    report = surface.check_arbitrage(grid)
    return SurfaceFit(
        surface=surface,
        quality=q,
        quality_all=q_all,
        ssvi_quality=ssvi_q,
        arbitrage=report,
        svi_ms_per_slice=svi_s * 1000.0 / len(slices),
        ssvi_ms=ssvi_ms,
        skipped=skipped,
        chain=chain,
        fitted_iv=fitted,
        target_iv=target,
    )
