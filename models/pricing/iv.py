"""Implied volatility (Black-76 on the forward, or BSM on spot) for arrays of any shape.

Method: the price is normalised to b = undiscounted price / sqrt(F K) with x = ln(F/K); in-the-money prices are
turned into the out-of-the-money option of the other type through put-call parity, so every solve is an OTM call
with x <= 0. The starting point is the tangent at the inflection point s_c = sqrt(-2x), improved by the
asymptotic expansions of either wing; third-order Householder steps then work on ln b below s_c and on
ln(b_max - b) above it (the objective transformations of Jäckel's "Let's be rational"), which converges to machine
precision in two to three steps over the whole domain.

Prices outside the no-arbitrage bounds return NaN with a reason code (see `IVCode`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from models.pricing import _kernels
from models.pricing.black import Backend, FloatArray, _prepare, _use_numba, option_sign


class IVCode(IntEnum):
    OK = _kernels.IV_OK
    BELOW_INTRINSIC = _kernels.IV_BELOW_INTRINSIC
    ABOVE_MAX = _kernels.IV_ABOVE_MAX
    BAD_INPUT = _kernels.IV_BAD_INPUT
    NO_CONVERGENCE = _kernels.IV_NO_CONVERGENCE
    NO_TIME_VALUE = _kernels.IV_NO_TIME_VALUE


REASONS: dict[int, str] = {
    IVCode.OK: "ok",
    IVCode.BELOW_INTRINSIC: "price below intrinsic value (violates the no-arbitrage lower bound)",
    IVCode.ABOVE_MAX: "price at or above the no-arbitrage upper bound (discounted forward for a call, "
    "discounted strike for a put)",
    IVCode.BAD_INPUT: "invalid input (non-positive or non-finite forward, strike, expiry or price, or bad type)",
    IVCode.NO_CONVERGENCE: "iteration did not converge",
    IVCode.NO_TIME_VALUE: "price equals intrinsic value: no time value, volatility undetermined",
}

MAX_ITER = 20


@dataclass(frozen=True)
class IVResult:
    vol: FloatArray
    code: npt.NDArray[np.int8]

    def reason(self, index: int | tuple[int, ...] = ()) -> str:
        return REASONS[int(self.code[index])]

    def reason_counts(self) -> dict[str, int]:
        codes, counts = np.unique(self.code, return_counts=True)
        return {IVCode(int(c)).name.lower(): int(n) for c, n in zip(codes, counts, strict=True)}


def _normalised_vol_numpy(beta: FloatArray, x: FloatArray, max_iter: int = MAX_ITER) -> FloatArray:
    """Vectorised NumPy version of `_kernels.normalised_vol` (x <= 0, 0 < beta < exp(x/2))."""
    with np.errstate(all="ignore"):
        ex2 = np.exp(0.5 * x)
        emx2 = 1.0 / ex2
        xx = x * x
        sc = np.sqrt(-2.0 * x)
        bc = 0.5 * ex2 - emx2 * ndtr(-sc)
        vc = ex2 * _kernels.INV_SQRT_2PI
        lower = beta < bc
        s = np.where(lower, sc - (bc - beta) / vc, sc + (beta - bc) / vc)
        lb = np.log(beta)
        # lower wing
        u = -lb
        sa = np.zeros_like(beta)
        for _ in range(3):
            s2 = xx / (2.0 * u)
            w = xx / s2 - 0.25 * s2
            un = -lb - 0.125 * s2 + 0.5 * np.log(s2) - np.log(w) - _kernels.LN_SQRT_2PI + 0.5 * x
            good = (w > 0) & (un > 0)
            u = np.where(good, un, u)
            sa = np.where(good, np.sqrt(xx / (2.0 * u)), sa)
        use = lower & (sa > 0) & ((s <= 0) | (sa < s))
        s = np.where(use, sa, s)
        s = np.where(lower & (s <= 0), 0.5 * sc, s)
        # upper wing
        lc = np.log(ex2 - beta)
        k0 = np.log(2.0 * (ex2 + emx2)) - _kernels.LN_SQRT_2PI - lc
        sa = np.sqrt(8.0 * np.maximum(k0, 0.0))
        for _ in range(3):
            q = k0 - np.log(sa)
            sa = np.where(q > 0, np.sqrt(8.0 * np.maximum(q, 0.0)), 0.0)
        s = np.where(~lower & (k0 > 1.0) & (sa > s), sa, s)
        target = np.where(lower, lb, lc)
        active = np.isfinite(s) & (s > 0)
        done = np.zeros(beta.shape, dtype=bool)
        for _ in range(max_iter):
            d1 = x / s + 0.5 * s
            d2 = d1 - s
            b1 = ex2 * np.exp(-0.5 * d1 * d1) * _kernels.INV_SQRT_2PI
            s2 = s * s
            t = xx / (s2 * s) - 0.25 * s
            b2 = b1 * t
            b3 = b1 * (t * t - 3.0 * xx / (s2 * s2) - 0.25)
            b = ex2 * ndtr(d1) - emx2 * ndtr(d2)
            c = ex2 * ndtr(-d1) + emx2 * ndtr(d2)
            u_ = np.where(lower, b, c)
            sign = np.where(lower, 1.0, -1.0)
            r1 = b1 / u_
            g = np.log(u_) - target
            g1 = sign * r1
            g2 = sign * b2 / u_ - r1 * r1
            g3 = sign * b3 / u_ - 3.0 * r1 * b2 / u_ + sign * 2.0 * r1 * r1 * r1
            nu = -g / g1
            h2 = g2 / g1
            h3 = g3 / g1
            den = 1.0 + nu * (h2 + h3 * nu / 6.0)
            step = nu * (1.0 + 0.5 * h2 * nu) / den
            step = np.where((den > 0.25) & (np.abs(step) <= 4.0 * np.abs(nu)), step, nu)
            bad_u = ~(u_ > 0)
            step = np.where(bad_u, np.where(lower, 0.5 * s, -0.25 * s), step)
            step = np.where(done | ~active, 0.0, step)
            sn = s + step
            sn = np.where(sn <= 0, 0.5 * s, sn)
            done = done | (~bad_u & (np.abs(step) <= _kernels.SMALL_STEP * s))
            s = sn
            if np.all(done | ~active):
                break
        return np.where(done & active, s, np.nan)


def _iv_numpy(
    price: FloatArray, fwd: FloatArray, k: FloatArray, t: FloatArray, df: FloatArray, cp: FloatArray
) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    code = np.full(price.shape, IVCode.OK, dtype=np.int8)
    with np.errstate(all="ignore"):
        valid = (
            (fwd > 0)
            & (k > 0)
            & (t > 0)
            & (df > 0)
            & np.isfinite(price)
            & np.isfinite(fwd)
            & np.isfinite(k)
            & np.isfinite(t)
            & ((cp == 1.0) | (cp == -1.0))
        )
        beta = price / df / np.sqrt(fwd * k)
        x = np.log(fwd / k)
        ex2 = np.exp(0.5 * x)
        intrinsic = cp * (ex2 - 1.0 / ex2)
        tol = np.where(intrinsic > 0, 2e-15 * (ex2 + 1.0 / ex2), 0.0)
        beta = np.where(intrinsic > 0, beta - intrinsic, beta)
        bmax = np.exp(-0.5 * np.abs(x))
    code[beta >= bmax] = IVCode.ABOVE_MAX
    code[np.abs(beta) <= tol] = IVCode.NO_TIME_VALUE
    code[beta < -tol] = IVCode.BELOW_INTRINSIC
    code[~valid] = IVCode.BAD_INPUT
    ok = code == IVCode.OK
    vol = np.full(price.shape, np.nan)
    s = _normalised_vol_numpy(beta[ok], -np.abs(x[ok]))
    vol[ok] = s / np.sqrt(t[ok])
    failed = np.zeros(price.shape, dtype=bool)
    failed[ok] = ~np.isfinite(s)
    code[failed] = IVCode.NO_CONVERGENCE
    return vol, code


def _solve(price: Any, fwd: Any, k: Any, t: Any, df: Any, is_call: Any, backend: Backend) -> IVResult:
    cp_in = option_sign(is_call)
    shape, (p_, f_, k_, t_, d_, cp_) = _prepare(price, fwd, k, t, df, cp_in)
    if _use_numba(backend):
        vol = np.empty(p_.size)
        code = np.empty(p_.size, dtype=np.int8)
        _kernels.iv_kernel(p_, f_, k_, t_, d_, cp_, MAX_ITER, vol, code)
    else:
        vol, code = _iv_numpy(p_, f_, k_, t_, d_, cp_)
    return IVResult(vol.reshape(shape), code.reshape(shape))


def implied_vol_black76(
    price: Any, F: Any, K: Any, T: Any, r: Any = 0.0, is_call: Any = True, *, backend: Backend = "auto"
) -> IVResult:
    """Black-76 implied volatility of discounted option prices on the forward F."""
    df = np.exp(-np.asarray(r, dtype=np.float64) * np.asarray(T, dtype=np.float64))
    return _solve(price, F, K, T, df, is_call, backend)


def implied_vol_bsm(
    price: Any, S: Any, K: Any, T: Any, r: Any = 0.0, q: Any = 0.0, is_call: Any = True, *, backend: Backend = "auto"
) -> IVResult:
    """Black-Scholes-Merton implied volatility (spot S, rate r, yield q)."""
    t = np.asarray(T, dtype=np.float64)
    r_ = np.asarray(r, dtype=np.float64)
    fwd = np.asarray(S, dtype=np.float64) * np.exp((r_ - np.asarray(q, dtype=np.float64)) * t)
    return _solve(price, fwd, K, T, np.exp(-r_ * t), is_call, backend)


def implied_vol(
    price: Any,
    underlying: Any,
    K: Any,
    T: Any,
    r: Any = 0.0,
    q: Any = 0.0,
    is_call: Any = True,
    *,
    model: Literal["black76", "bsm"] = "black76",
    backend: Backend = "auto",
) -> IVResult:
    """Implied vol under `model`: `underlying` is the forward for black76 (q ignored) and the spot for bsm."""
    if model == "black76":
        return implied_vol_black76(price, underlying, K, T, r, is_call, backend=backend)
    if model == "bsm":
        return implied_vol_bsm(price, underlying, K, T, r, q, is_call, backend=backend)
    raise ValueError(f"unknown model {model!r}: use 'black76' or 'bsm'")


def normalised_black_call(x: float, s: float) -> float:
    """Undiscounted Black call divided by sqrt(F K) with x = ln(F/K), s = sigma sqrt(T) (scalar helper)."""
    return float(math.exp(0.5 * x) * ndtr(x / s + 0.5 * s) - math.exp(-0.5 * x) * ndtr(x / s - 0.5 * s))
