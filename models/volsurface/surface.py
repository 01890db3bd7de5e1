"""Volatility surface from an option chain: SVI per expiry (butterfly and calendar conditions enforced), SSVI across
expiries, arbitrage checks, interpolation to any strike and expiry, and fit quality against bid/ask implied vols.

Interpolation: total variance is linear in t between fitted expiries at fixed log-moneyness k = ln(K/F(t)) (which
keeps w non-decreasing in t), scaled by t/t_1 before the first expiry (scaling down keeps g >= 0: g is concave in
the scale) and shifted by the last ATM variance rate after the last (w_N + theta_N (t - t_N) / t_N); the forward
is interpolated log-linearly in t and held flat outside.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from models.volsurface.arbitrage import ArbitrageReport, check_surface
from models.volsurface.chain import OptionChain
from models.volsurface.correction import SmileCorrection, fit_correction
from models.volsurface.ssvi import SSVIParams, fit_ssvi
from models.volsurface.svi import SVIFit, SVIParams, fit_svi

FloatArray = npt.NDArray[np.float64]
MIN_SPREAD = 0.002  # vol floor on the bid/ask spread used as a weight
MARK_ONLY_SPREAD = (
    0.25  # notional spread given to quotes with only a mark IV (Deribit marks in the wings are extrapolations)
)
MIN_QUOTES = 5
SECOND_ORDER_BELOW = 0.9
BAND_ROUNDS = 1
COLD_STARTS = 2  # Nelder-Mead starts of a slice's first fit (the fallback refit uses all 3)
MAX_EVAL = 250


@dataclass(frozen=True)
class Slice:
    label: str
    t: float
    forward: float
    params: SVIParams
    n_quotes: int
    correction: SmileCorrection | None = None  # a local spline on top of SVI where SVI misses the spreads

    def total_variance(self, k: npt.ArrayLike) -> FloatArray:
        w = self.params.total_variance(k)
        if self.correction is not None:
            w = w + self.correction.w(k)
        return w


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
                res[sel] = self.slices[0].total_variance(kk) * tt / ts[0]
            elif j >= len(ts):
                # after the last expiry: a parallel shift at the last ATM variance rate (scaling w up by t/t_N
                # can break the butterfly condition; adding a constant keeps w increasing in t)
                last = self.slices[-1]
                rate = float(last.total_variance(np.zeros(1))[0]) / ts[-1]
                res[sel] = last.total_variance(kk) + rate * (tt - ts[-1])
            else:
                t0, t1 = ts[j - 1], ts[j]
                a = (tt - t0) / (t1 - t0)
                w0 = self.slices[j - 1].total_variance(kk)
                w1 = self.slices[j].total_variance(kk)
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
                {
                    "expiry": s.label,
                    "t": s.t,
                    "forward": s.forward,
                    "n_quotes": s.n_quotes,
                    "svi": s.params.as_dict(),
                    "correction": s.correction.as_dict() if s.correction is not None else None,
                }
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
    left_out: list[dict[str, str]] = field(default_factory=list)  # {"expiry", "reason"} per expiry not fitted
    correction_ms_per_slice: float = 0.0

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


@dataclass
class _SliceData:
    label: str
    t: float
    forward: float
    n2: int  # the first n2 quotes are two-sided, the rest one-sided
    k: FloatArray
    bid: FloatArray  # IV, NaN = none
    ask: FloatArray
    target_w: FloatArray
    weight: FloatArray


def _slice_data(
    chain: OptionChain,
    lab: str,
    sel2: npt.NDArray[np.bool_],
    sel1: npt.NDArray[np.bool_],
    bid_ok: npt.NDArray[np.bool_],
    ask_ok: npt.NDArray[np.bool_],
    k_all: FloatArray,
) -> _SliceData:
    n2 = int(sel2.sum())
    tq = float(np.median(chain.t[sel2]))
    k = np.concatenate([k_all[sel2], k_all[sel1]])
    bid = np.concatenate([chain.bid_iv[sel2], np.where(bid_ok[sel1], chain.bid_iv[sel1], np.nan)])
    ask = np.concatenate([chain.ask_iv[sel2], np.where(ask_ok[sel1], chain.ask_iv[sel1], np.nan)])
    lo_w, hi_w = bid * bid * tq, ask * ask * tq
    spread_w = np.maximum(hi_w[:n2] - lo_w[:n2], MIN_SPREAD * 2.0 * ask[:n2] * tq)
    # one-sided quotes start at their bound, with a quarter of the weight of the loosest two-sided quote
    bound = np.where(np.isfinite(hi_w[n2:]), hi_w[n2:], lo_w[n2:])
    target = np.concatenate([(0.5 * (bid[:n2] + ask[:n2])) ** 2 * tq, bound])
    weight = np.concatenate([1.0 / spread_w**2, np.full(bound.size, 0.25 / float(np.max(spread_w)) ** 2)])
    fwd = float(np.median(chain.forward[sel2]))
    return _SliceData(lab, tq, fwd, n2, k, bid, ask, target, weight)


def _fit_slice(
    d: _SliceData,
    grid: FloatArray,
    upper: SVIParams | None,
    floor: tuple[FloatArray, FloatArray] | None,
    start: SVIParams | None,
    lower: SVIParams | None,
) -> tuple[SVIParams | None, str | None]:
    """Band-objective SVI fit of one expiry; (None, reason) when no credible fit exists. `floor` = (k, w) adds
    lower-bound pseudo-quotes (a shorter expiry's fitted total variance at its quoted strikes)."""
    k, tw, wt = d.k, d.target_w, d.weight
    lo, hi = d.bid * d.bid * d.t, d.ask * d.ask * d.t
    if floor is not None:
        fk, fw = floor
        k = np.concatenate([k, fk])
        tw = np.concatenate([tw, fw])
        lo = np.concatenate([lo, fw])
        hi = np.concatenate([hi, np.full(fw.size, np.nan)])
        wt = np.concatenate([wt, np.full(fw.size, float(np.min(d.weight[: d.n2])))])
    n2 = d.n2
    kin = np.linspace(float(np.min(d.k[:n2])), float(np.max(d.k[:n2])), 25)

    def why(p: SVIParams) -> str | None:
        iv_q = np.sqrt(np.maximum(p.total_variance(d.k[:n2]), 0.0) / d.t)
        iv_g = np.sqrt(np.maximum(p.total_variance(kin), 0.0) / d.t)
        return _wild(iv_q, d.bid[:n2], d.ask[:n2], iv_g)

    def check(f: SVIFit) -> str | None:
        if not (f.butterfly_free and f.calendar_ok):
            return f"no arbitrage-free SVI within the bounds (min g {f.min_g:.2g}, calendar ok {f.calendar_ok})"
        return why(f.params)

    fit = fit_svi(
        k,
        tw,
        wt,
        grid=grid,
        prev=lower,
        upper=upper,
        band=(lo, hi),
        start=start,
        band_rounds=BAND_ROUNDS,
        cold_starts=COLD_STARTS,
        max_eval=MAX_EVAL,
    )
    reason = check(fit)
    if reason is None:
        return fit.params, None
    alt = fit_svi(d.k[:n2], d.target_w[:n2], d.weight[:n2], grid=grid, prev=lower, upper=upper)
    if check(alt) is None:
        return alt.params, None
    return None, reason


def _correct(slices: list[Slice], by_label: dict[str, _SliceData], grid: FloatArray) -> None:
    """Add a spline correction to each slice (in place), shortest first, each kept between its final shorter
    neighbour and its longer neighbour (see correction.py)."""
    for i, sl in enumerate(slices):
        d = by_label[sl.label]
        n2 = d.n2
        corr = fit_correction(
            sl.params,
            d.k[:n2],
            d.bid[:n2] ** 2 * d.t,
            d.ask[:n2] ** 2 * d.t,
            d.weight[:n2],
            grid,
            lower=slices[i - 1].total_variance if i > 0 else None,
            upper=slices[i + 1].total_variance if i + 1 < len(slices) else None,
        )
        if corr is not None:
            slices[i] = Slice(sl.label, sl.t, sl.forward, sl.params, sl.n_quotes, corr)


def _wild(fitted_iv: FloatArray, bid: FloatArray, ask: FloatArray, grid_iv: FloatArray) -> str | None:
    """Why a slice fit is not credible, or None: far from its two-sided quotes, or absurd inside their range."""
    mid = 0.5 * (bid + ask)
    spread = np.median(ask - bid)
    err = np.abs(fitted_iv - mid)
    if not np.all(np.isfinite(fitted_iv)):
        return "the fit is not finite at the quotes"
    if float(np.median(err)) > max(3.0 * spread, 0.03):
        return f"median error {np.median(err) * 100:.1f} vol pts against spreads of {spread * 100:.1f}"
    if not np.all(np.isfinite(grid_iv)) or float(np.max(grid_iv)) > 3.0 * float(np.max(ask)) + 0.5:
        return "the smile explodes between the quotes"
    if float(np.min(grid_iv)) < 0.3 * float(np.min(bid)):
        return "the smile collapses between the quotes"
    return None


def fit_surface(
    chain: OptionChain, *, with_ssvi: bool = True, warm: VolSurface | None = None, correct: bool = True
) -> SurfaceFit:
    """Calibrate SVI slices and SSVI to a chain, free of butterfly and calendar arbitrage by construction.

    Quotes: out-of-the-money, with a bid and an ask IV (two-sided), plus one-sided quotes as bounds only (an ask
    caps the smile, a bid floors it). Objective: the distance of the fitted total variance to each quote's bid/ask
    band, weighted by 1 / spread^2 (in IV, which is vega / spread in price), see `fit_svi(band=...)`.
    Order: longest expiry first, each shorter slice capped by the longer one on the strike grid (calendar), each
    with Durrleman's g >= 0 on the grid (butterfly); a short-dated slice with steep wings can then never lift the
    long end. `warm`, a surface of an earlier snapshot, seeds each expiry's (m, sigma) search.
    Fallback: a slice with fewer than MIN_QUOTES two-sided quotes, or whose fit is not credible (see `_wild`) even
    after a cold restart without the band, is left out (listed in `left_out` with the reason); its quotes are then
    read off the interpolated surface.
    """
    if len(chain) == 0:
        raise ValueError("empty option chain")
    k_all = chain.log_moneyness
    target, _spread = targets(chain)
    labels = np.array(chain.expiry_label)
    otm = otm_mask(chain)
    fin_k = np.isfinite(k_all)
    two = chain.has_both & otm & fin_k
    bid_ok = np.isfinite(chain.bid_iv) & (chain.bid_iv > 0)
    ask_ok = np.isfinite(chain.ask_iv) & (chain.ask_iv > 0)
    one = otm & fin_k & (bid_ok ^ ask_ok)
    if not two.any():
        raise ValueError("no out-of-the-money quote in the chain has both a bid and an ask implied volatility")
    kq = k_all[two]
    lo, hi = float(np.min(kq)), float(np.max(kq))
    span = hi - lo
    grid = np.linspace(lo - 0.5 * span - 0.5, hi + 0.5 * span + 0.5, 161)
    fit_grid = grid
    warm_params = {s.label: s.params for s in warm.slices} if warm is not None else {}
    left_out: list[dict[str, str]] = []
    t0 = time.perf_counter()
    data: list[_SliceData] = []
    for lab, _t in chain.expiries():
        sel2 = (labels == lab) & two
        n2 = int(sel2.sum())
        if n2 < MIN_QUOTES:
            left_out.append({"expiry": lab, "reason": f"{n2} two-sided out-of-the-money quotes (< {MIN_QUOTES})"})
            continue
        data.append(_slice_data(chain, lab, sel2, (labels == lab) & one, bid_ok, ask_ok, k_all))
    # calendar order: shortest first (each slice floored by the shorter one); when that drops an expiry or leaves
    # more than 1 - SECOND_ORDER_BELOW of the quotes outside their spread after the correction, longest first too
    # (each capped by the longer one). Both are calendar-free by construction; the one with more quotes inside
    # the spread wins.
    best: tuple[int, list[Slice], list[dict[str, str]]] | None = None
    n_two = sum(d.n2 for d in data)
    by_label = {d.label: d for d in data}
    svi_s, corr_s = time.perf_counter() - t0, 0.0  # the quote preparation counts as SVI time
    for forward_in_time in (True, False):
        if best is not None and not best[2] and best[0] >= SECOND_ORDER_BELOW * n_two:
            break
        t1 = time.perf_counter()
        fits: list[Slice] = []
        dropped: list[dict[str, str]] = []
        bound: SVIParams | None = None
        for d in data if forward_in_time else data[::-1]:
            lo_b, hi_b = (bound, None) if forward_in_time else (None, bound)
            p, reason = _fit_slice(d, fit_grid, hi_b, None, warm_params.get(d.label), lo_b)
            if p is None:
                dropped.append({"expiry": d.label, "reason": f"no credible SVI fit: {reason}"})
                continue
            fits.append(Slice(d.label, d.t, d.forward, p, d.n2))
            bound = p
        fits.sort(key=lambda x: x.t)
        t2 = time.perf_counter()
        svi_s += t2 - t1
        if correct:
            _correct(fits, by_label, grid)
        corr_s += time.perf_counter() - t2
        inside = 0
        for sl in fits:
            d = by_label[sl.label]
            iv = np.sqrt(np.maximum(sl.total_variance(d.k[: d.n2]), 0.0) / d.t)
            inside += int(np.sum((iv >= d.bid[: d.n2]) & (iv <= d.ask[: d.n2])))
        if best is None or inside > best[0] or (inside == best[0] and len(dropped) < len(best[2])):
            best = (inside, fits, dropped)
    assert best is not None
    slices = best[1]
    left_out.extend(best[2])
    if not slices:
        reasons = "; ".join(f"{x['expiry']}: {x['reason']}" for x in left_out[:5])
        raise ValueError(f"no expiry could be fitted ({reasons})")
    surface = VolSurface(slices)
    fitted = np.full(len(chain), np.nan)
    ok_t = fin_k & (chain.t > 0)
    fitted[ok_t] = surface.implied_vol_k(k_all[ok_t], chain.t[ok_t])
    q = quality(chain, fitted, target, otm)
    q_all = quality(chain, fitted, target)
    ssvi_ms = float("nan")
    ssvi_q: FitQuality | None = None
    usable = np.isfinite(target) & (target > 0) & fin_k & otm
    if with_ssvi and len(slices) >= 2:
        theta = np.array([s.total_variance(np.zeros(1))[0] for s in slices])
        keep = two & np.isin(labels, [s.label for s in slices]) & usable
        mid = 0.5 * (chain.bid_iv + chain.ask_iv)
        spr = np.maximum(chain.ask_iv - chain.bid_iv, MIN_SPREAD)
        t1 = time.perf_counter()
        sfit = fit_ssvi(
            k_all[keep],
            chain.t[keep],
            mid[keep] ** 2 * chain.t[keep],
            surface.t,
            theta,
            1.0 / (mid[keep] * spr[keep] * chain.t[keep]) ** 2,
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
        correction_ms_per_slice=corr_s * 1000.0 / len(slices),
        ssvi_ms=ssvi_ms,
        skipped=[x["expiry"] for x in left_out],
        chain=chain,
        fitted_iv=fitted,
        target_iv=target,
        left_out=left_out,
    )
