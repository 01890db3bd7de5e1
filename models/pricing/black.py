"""Vectorised Black-Scholes-Merton and Black-76 prices and analytic Greeks for arrays of any shape.

Conventions (the same for both models and both backends):
- theta is dV/dt per year of calendar time (divide by 365 for a per-day figure);
- vega and volga are per unit of volatility (0.01 = one vol point), rho per unit of rate;
- BSM rho moves r with the dividend/borrow yield q fixed; Black-76 rho moves r with the forward fixed (-T V);
- vanna = d(delta)/d(sigma), volga = d(vega)/d(sigma).
Inputs broadcast against each other; `is_call` may be a bool, an array of bools, +1/-1, or "call"/"put"/"c"/"p".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from models.pricing import _kernels
from models.pricing._jit import HAVE_NUMBA

Backend = Literal["auto", "numba", "numpy"]
FloatArray = npt.NDArray[np.float64]

GREEK_NAMES = ("price", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga")


@dataclass(frozen=True)
class Greeks:
    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    rho: FloatArray
    vanna: FloatArray | None = None
    volga: FloatArray | None = None

    def as_dict(self) -> dict[str, FloatArray]:
        return {n: v for n in GREEK_NAMES if (v := getattr(self, n)) is not None}


def option_sign(is_call: Any) -> FloatArray:
    """+1.0 for calls and -1.0 for puts from bools, +/-1 numbers or 'call'/'put'/'c'/'p' strings."""
    arr = np.asarray(is_call)
    if arr.dtype.kind in "US":
        low = np.char.lower(arr.astype(str))
        calls = np.isin(low, ("call", "c"))
        puts = np.isin(low, ("put", "p"))
        if not np.all(calls | puts):
            bad = sorted(set(np.asarray(low)[~(calls | puts)].ravel().tolist()))[:3]
            raise ValueError(f"option type must be 'call' or 'put', got {bad}")
        return np.where(calls, 1.0, -1.0)
    if arr.dtype == bool:
        # 2b - 1 in place: exact, and several times faster than np.where on large arrays
        out = arr.astype(np.float64)
        np.multiply(out, 2.0, out=out)
        np.subtract(out, 1.0, out=out)
        return out
    # Numeric types pass through unchecked: the kernels return NaN for anything but +1/-1.
    return arr.astype(np.float64, copy=False)


def _prepare(*arrays: Any) -> tuple[tuple[int, ...], list[FloatArray]]:
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    flat = [np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=np.float64), shape)).reshape(-1) for a in arrays]
    return shape, flat


def _use_numba(backend: Backend) -> bool:
    if backend == "numba" and not HAVE_NUMBA:
        raise RuntimeError("numba backend requested but numba is not installed")
    return backend == "numba" or (backend == "auto" and HAVE_NUMBA)


def _greeks_numpy(
    s: FloatArray,
    k: FloatArray,
    t: FloatArray,
    r: FloatArray,
    b: FloatArray,
    vol: FloatArray,
    cp: FloatArray,
    black76: bool,
    second_order: bool,
) -> FloatArray:
    rows = 8 if second_order else 6
    out = np.full((rows, s.size), np.nan)
    valid = (s > 0) & (k > 0) & (t >= 0) & (vol >= 0) & ~np.isnan(r) & ~np.isnan(b) & (np.abs(cp) == 1.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        dfr = np.exp(-r * t)
        dfc = np.exp((b - r) * t)
        sqt = np.sqrt(t)
        v = vol * sqt
        sdf = s * dfc
        kdf = k * dfr
        fk = sdf / kdf
        d1 = np.log(fk) / v + 0.5 * v
        d2 = d1 - v
        n1 = ndtr(cp * d1)
        n2 = ndtr(cp * d2)
        pdf = np.exp(-0.5 * d1 * d1) / np.sqrt(2.0 * np.pi)
        a = sdf * n1
        bk = kdf * n2
        price = cp * (a - bk)
        vega = sdf * pdf * sqt
        res = [
            price,
            cp * dfc * n1,
            dfc * pdf / (s * v),
            vega,
            -0.5 * vega * vol / t - cp * ((b - r) * a + r * bk),
            -t * price if black76 else cp * kdf * t * n2,
        ]
        if second_order:
            res += [-dfc * pdf * d2 / vol, vega * d1 * d2 / vol]
        zero = v == 0.0
        if np.any(zero & valid):
            itm = cp * (fk - 1.0) > 0.0
            px0 = np.where(itm, cp * (sdf - kdf), 0.0)
            res[0] = np.where(zero, px0, res[0])
            res[1] = np.where(zero, np.where(itm, cp * dfc, 0.0), res[1])
            res[2] = np.where(zero, 0.0, res[2])
            res[3] = np.where(zero, 0.0, res[3])
            res[4] = np.where(zero, np.where(itm, -cp * (b - r) * sdf - cp * r * kdf, 0.0), res[4])
            rho0 = -t * px0 if black76 else np.where(itm, cp * kdf * t, 0.0)
            res[5] = np.where(zero, rho0, res[5])
            for j in range(6, rows):
                res[j] = np.where(zero, 0.0, res[j])
    for j in range(rows):
        out[j] = np.where(valid, res[j], np.nan)
    return out


def _generalised(
    s: Any,
    k: Any,
    t: Any,
    vol: Any,
    r: Any,
    carry: Any,
    is_call: Any,
    *,
    black76: bool,
    second_order: bool,
    backend: Backend,
) -> Greeks:
    cp_in = option_sign(is_call)
    shape, (s_, k_, t_, r_, b_, v_, cp_) = _prepare(s, k, t, r, carry, vol, cp_in)
    if _use_numba(backend):
        n = s_.size
        bufs = [np.empty(n) for _ in range(6)]
        extra = [np.empty(n), np.empty(n)] if second_order else [np.empty(0), np.empty(0)]
        _kernels.greeks_kernel(s_, k_, t_, r_, b_, v_, cp_, black76, second_order, *bufs, *extra)
        rows = [b.reshape(shape) for b in (bufs + extra if second_order else bufs)]
    else:
        out = _greeks_numpy(s_, k_, t_, r_, b_, v_, cp_, black76, second_order)
        rows = [out[j].reshape(shape) for j in range(out.shape[0])]
    return Greeks(*rows)


def bsm_greeks(
    S: Any,
    K: Any,
    T: Any,
    sigma: Any,
    r: Any = 0.0,
    q: Any = 0.0,
    is_call: Any = True,
    *,
    second_order: bool = True,
    backend: Backend = "auto",
) -> Greeks:
    """Black-Scholes-Merton on spot S with continuous yield q: price and Greeks (see module conventions)."""
    carry = np.asarray(r, dtype=np.float64) - np.asarray(q, dtype=np.float64)
    return _generalised(S, K, T, sigma, r, carry, is_call, black76=False, second_order=second_order, backend=backend)


def black76_greeks(
    F: Any,
    K: Any,
    T: Any,
    sigma: Any,
    r: Any = 0.0,
    is_call: Any = True,
    *,
    second_order: bool = True,
    backend: Backend = "auto",
) -> Greeks:
    """Black-76 on the forward F (discounted with r): price and Greeks; delta and gamma are w.r.t. F."""
    return _generalised(F, K, T, sigma, r, 0.0, is_call, black76=True, second_order=second_order, backend=backend)


def _price(s: Any, k: Any, t: Any, vol: Any, r: Any, carry: Any, is_call: Any, backend: Backend) -> FloatArray:
    cp_in = option_sign(is_call)
    shape, (s_, k_, t_, r_, b_, v_, cp_) = _prepare(s, k, t, r, carry, vol, cp_in)
    if _use_numba(backend):
        out = np.empty(s_.size)
        _kernels.price_kernel(s_, k_, t_, r_, b_, v_, cp_, out)
        return out.reshape(shape)
    return _greeks_numpy(s_, k_, t_, r_, b_, v_, cp_, True, False)[0].reshape(shape)


def bsm_price(
    S: Any, K: Any, T: Any, sigma: Any, r: Any = 0.0, q: Any = 0.0, is_call: Any = True, *, backend: Backend = "auto"
) -> FloatArray:
    carry = np.asarray(r, dtype=np.float64) - np.asarray(q, dtype=np.float64)
    return _price(S, K, T, sigma, r, carry, is_call, backend)


def black76_price(
    F: Any, K: Any, T: Any, sigma: Any, r: Any = 0.0, is_call: Any = True, *, backend: Backend = "auto"
) -> FloatArray:
    return _price(F, K, T, sigma, r, 0.0, is_call, backend)


def forward(S: Any, T: Any, r: Any = 0.0, q: Any = 0.0) -> FloatArray:
    """Forward price S exp((r - q) T)."""
    return np.asarray(S, dtype=np.float64) * np.exp(
        (np.asarray(r, dtype=np.float64) - np.asarray(q, dtype=np.float64)) * np.asarray(T, dtype=np.float64)
    )
