"""Compiled (numba) kernels: normal CDF, fused price + Greeks, and normalised Black implied volatility.

Everything here is scalar code in loops so that numba compiles it to tight machine code; without numba the same
functions still run (slowly) as plain Python, which the tests use to check both paths agree.

Normal CDF: W. J. Cody's rational Chebyshev approximations (as used by R's `pnorm`), written so that the caller
passes exp(-x^2/2): the Black formula needs that Gaussian factor anyway (for gamma and vega), and
n(d2) = n(d1) * F/K, so one `exp` serves both N(d1) and N(d2).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from models.pricing._jit import bits_float, float_bits, njit, prange

SQRT_2PI = math.sqrt(2.0 * math.pi)
INV_SQRT_2PI = 1.0 / SQRT_2PI
SQRT32 = math.sqrt(32.0)

# Cody (1969/1993) coefficients.
A0, A1, A2, A3, A4 = (
    2.2352520354606839287,
    161.02823106855587881,
    1067.6894854603709582,
    18154.981253343561249,
    0.065682337918207449113,
)
B0, B1, B2, B3 = 47.20258190468824187, 976.09855173777669322, 10260.932208618978205, 45507.789335026729956
C0, C1, C2, C3, C4, C5, C6, C7, C8 = (
    0.39894151208813466764,
    8.8831497943883759412,
    93.506656132177855979,
    597.27027639480026226,
    2494.5375852903726711,
    6848.1904505362823326,
    11602.651437647350124,
    9842.7148383839780218,
    1.0765576773720192317e-8,
)
D0, D1, D2, D3, D4, D5, D6, D7 = (
    22.266688044328115691,
    235.38790178262499861,
    1519.377599407554805,
    6485.558298266760755,
    18615.571640885098091,
    34900.952721145977266,
    38912.003286093271411,
    19685.429676859990727,
)
P0, P1, P2, P3, P4, P5 = (
    0.21589853405795699,
    0.1274011611602473639,
    0.022235277870649807,
    0.001421619193227893466,
    2.9112874951168792e-5,
    0.02307344176494017303,
)
Q0, Q1, Q2, Q3, Q4 = (
    1.28426009614491121,
    0.468238212480865118,
    0.0659881378689285515,
    0.00378239633202758244,
    7.29751555083966205e-5,
)

# Result codes shared with iv.py
IV_OK = 0
IV_BELOW_INTRINSIC = 1
IV_ABOVE_MAX = 2
IV_BAD_INPUT = 3
IV_NO_CONVERGENCE = 4
IV_NO_TIME_VALUE = 5


@njit(inline=True)
def ncdf_e(x: float, e: float) -> float:
    """N(x) given e = exp(-x*x/2). Full relative precision in the lower tail down to x = -37.5."""
    y = abs(x)
    if y <= 0.67448975:
        xsq = x * x
        xnum = A4 * xsq
        xden = xsq
        xnum = (xnum + A0) * xsq
        xden = (xden + B0) * xsq
        xnum = (xnum + A1) * xsq
        xden = (xden + B1) * xsq
        xnum = (xnum + A2) * xsq
        xden = (xden + B2) * xsq
        return 0.5 + x * (xnum + A3) / (xden + B3)
    if y <= SQRT32:
        xnum = C8 * y
        xden = y
        xnum = (xnum + C0) * y
        xden = (xden + D0) * y
        xnum = (xnum + C1) * y
        xden = (xden + D1) * y
        xnum = (xnum + C2) * y
        xden = (xden + D2) * y
        xnum = (xnum + C3) * y
        xden = (xden + D3) * y
        xnum = (xnum + C4) * y
        xden = (xden + D4) * y
        xnum = (xnum + C5) * y
        xden = (xden + D5) * y
        xnum = (xnum + C6) * y
        xden = (xden + D6) * y
        tail = e * (xnum + C7) / (xden + D7)
    elif y < 37.5193:
        xsq = 1.0 / (x * x)
        xnum = P5 * xsq
        xden = xsq
        xnum = (xnum + P0) * xsq
        xden = (xden + Q0) * xsq
        xnum = (xnum + P1) * xsq
        xden = (xden + Q1) * xsq
        xnum = (xnum + P2) * xsq
        xden = (xden + Q2) * xsq
        xnum = (xnum + P3) * xsq
        xden = (xden + Q3) * xsq
        t = xsq * (xnum + P4) / (xden + Q4)
        tail = e * (INV_SQRT_2PI - t) / y
    else:
        tail = 0.0
    if x < 0.0:
        return tail
    return 1.0 - tail


@njit(inline=True)
def ncdf(x: float) -> float:
    """Standard normal CDF."""
    if x != x:
        return x
    return ncdf_e(x, math.exp(-0.5 * x * x))


# Inline exp/log for the vectorised pass: arithmetic and integer bit operations only, so that LLVM can vectorise
# the loop that calls them (libm calls are scalar). Both are within one ulp (checked against mpmath in the tests).
_SHIFTER = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer held in the low mantissa bits
_SHIFTER_BITS = 0x4338000000000000
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of ln 2
_LN2_LO = 1.90821492927058770002e-10
# fdlibm __ieee754_log minimax coefficients
_LG1, _LG2, _LG3, _LG4, _LG5, _LG6, _LG7 = (
    6.666666666666735130e-01,
    3.999999999940941908e-01,
    2.857142874366239149e-01,
    2.222219843214978396e-01,
    1.818357216161805012e-01,
    1.531383769920937332e-01,
    1.479819860511658591e-01,
)


@njit(inline=True)
def fast_exp(x: float) -> float:
    """exp(x) for -708 < x < 709 (callers check the range): Cody-Waite reduction, degree-13 Taylor polynomial."""
    t = x * _LOG2E + _SHIFTER
    n = t - _SHIFTER
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r * r + r
    ni = float_bits(t) - _SHIFTER_BITS
    # the scale 2^n in two halves, so that results in the subnormal range are still scaled exactly
    h = ni >> 1
    return ((1.0 + p) * bits_float((h + 1023) << 52)) * bits_float((ni - h + 1023) << 52)


@njit(inline=True)
def fast_log(x: float) -> float:
    """ln(x) for positive normal finite x (callers check the range): fdlibm's algorithm without branches."""
    bits = float_bits(x)
    mb = bits & 0xFFFFFFFFFFFFF
    # mantissa into [sqrt(2)/2, sqrt(2)), exponent adjusted to match
    j = (mb + 0x95F6400000000) & 0x10000000000000
    e = (bits >> 52) - 1023 + (j >> 52)
    f = bits_float(mb | (j ^ 0x3FF0000000000000)) - 1.0
    dk = bits_float(_SHIFTER_BITS + e) - _SHIFTER  # int -> float without a (scalarised) AVX2 conversion
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    hfsq = 0.5 * f * f
    return dk * _LN2_HI - ((hfsq - (s * (hfsq + (t2 + t1)) + dk * _LN2_LO)) - f)


@njit(inline=True)
def _ncdf_central(x: float, e: float) -> float:
    """ncdf_e for |x| <= sqrt(32) without branches: both regions evaluated, one division, the same arithmetic."""
    y = abs(x)
    xsq = x * x
    xnum = A4 * xsq
    xden = xsq
    xnum = (xnum + A0) * xsq
    xden = (xden + B0) * xsq
    xnum = (xnum + A1) * xsq
    xden = (xden + B1) * xsq
    xnum = (xnum + A2) * xsq
    xden = (xden + B2) * xsq
    cnum = x * (xnum + A3)
    cden = xden + B3
    xnum = C8 * y
    xden = y
    xnum = (xnum + C0) * y
    xden = (xden + D0) * y
    xnum = (xnum + C1) * y
    xden = (xden + D1) * y
    xnum = (xnum + C2) * y
    xden = (xden + D2) * y
    xnum = (xnum + C3) * y
    xden = (xden + D3) * y
    xnum = (xnum + C4) * y
    xden = (xden + D4) * y
    xnum = (xnum + C5) * y
    xden = (xden + D5) * y
    xnum = (xnum + C6) * y
    xden = (xden + D6) * y
    central = y <= 0.67448975
    q = (cnum if central else e * (xnum + C7)) / (cden if central else xden + D7)
    tail = q if x < 0.0 else 1.0 - q
    return 0.5 + q if central else tail


@njit(inline=True)
def _greeks_exact(
    i: int,
    s: npt.NDArray[np.float64],
    k: npt.NDArray[np.float64],
    t: npt.NDArray[np.float64],
    r: npt.NDArray[np.float64],
    carry: npt.NDArray[np.float64],
    vol: npt.NDArray[np.float64],
    cp: npt.NDArray[np.float64],
    black76: bool,
    second_order: bool,
    o_price: npt.NDArray[np.float64],
    o_delta: npt.NDArray[np.float64],
    o_gamma: npt.NDArray[np.float64],
    o_vega: npt.NDArray[np.float64],
    o_theta: npt.NDArray[np.float64],
    o_rho: npt.NDArray[np.float64],
    o_vanna: npt.NDArray[np.float64],
    o_volga: npt.NDArray[np.float64],
) -> None:
    """Option i on the general path: every input (NaN, zero vol or time, far tails, huge/tiny F/K), libm exp/log."""
    si = s[i]
    ki = k[i]
    ti = t[i]
    ri = r[i]
    bi = carry[i]
    sig = vol[i]
    c = cp[i]
    nan = math.nan
    if not (si > 0.0 and ki > 0.0 and ti >= 0.0 and sig >= 0.0 and (c == 1.0 or c == -1.0)) or (ri != ri or bi != bi):
        o_price[i] = nan
        o_delta[i] = nan
        o_gamma[i] = nan
        o_vega[i] = nan
        o_theta[i] = nan
        o_rho[i] = nan
        if second_order:
            o_vanna[i] = nan
            o_volga[i] = nan
        return
    dfr = math.exp(-ri * ti)
    dfc = dfr if bi == 0.0 else (1.0 if bi == ri else math.exp((bi - ri) * ti))
    sqt = math.sqrt(ti)
    v = sig * sqt
    if v == 0.0:
        fwd = si * dfc / dfr
        itm = c * (fwd - ki) > 0.0
        px = c * (si * dfc - ki * dfr) if itm else 0.0
        o_price[i] = px
        o_delta[i] = c * dfc if itm else 0.0
        o_gamma[i] = 0.0
        o_vega[i] = 0.0
        o_theta[i] = (-c * (bi - ri) * si * dfc - c * ri * ki * dfr) if itm else 0.0
        o_rho[i] = (-ti * px if black76 else c * ki * ti * dfr) if itm else 0.0
        if second_order:
            o_vanna[i] = 0.0
            o_volga[i] = 0.0
        return
    sdf = si * dfc
    kdf = ki * dfr
    fk = sdf / kdf
    iv = 1.0 / v
    d1 = math.log(fk) * iv + 0.5 * v
    d2 = d1 - v
    e1 = math.exp(-0.5 * d1 * d1)
    if e1 > 1e-250 and fk < 1e250:
        e2 = e1 * fk
    else:
        e2 = math.exp(-0.5 * d2 * d2)
    n1 = ncdf_e(c * d1, e1)
    n2 = ncdf_e(c * d2, e2)
    pdf = e1 * INV_SQRT_2PI
    a = sdf * n1
    bk = kdf * n2
    px = c * (a - bk)
    o_price[i] = px
    o_delta[i] = c * dfc * n1
    sdfpdf = sdf * pdf
    o_gamma[i] = sdfpdf * iv / (si * si)
    vega = sdfpdf * sqt
    o_vega[i] = vega
    o_theta[i] = -0.5 * sdfpdf * sig * sig * iv - c * ((bi - ri) * a + ri * bk)
    if black76:
        o_rho[i] = -ti * px
    else:
        o_rho[i] = c * kdf * ti * n2
    if second_order:
        o_vanna[i] = -dfc * pdf * d2 / sig
        o_volga[i] = vega * d1 * d2 / sig


@njit(inline=True)
def _fast_one(
    i: int,
    s: npt.NDArray[np.float64],
    k: npt.NDArray[np.float64],
    t: npt.NDArray[np.float64],
    r: npt.NDArray[np.float64],
    carry: npt.NDArray[np.float64],
    vol: npt.NDArray[np.float64],
    cp: npt.NDArray[np.float64],
    black76: bool,
    o_price: npt.NDArray[np.float64],
    o_delta: npt.NDArray[np.float64],
    o_gamma: npt.NDArray[np.float64],
    o_vega: npt.NDArray[np.float64],
    o_theta: npt.NDArray[np.float64],
    o_rho: npt.NDArray[np.float64],
    o_vanna: npt.NDArray[np.float64],
    o_volga: npt.NDArray[np.float64],
    second: bool,
) -> None:
    """Option i on the vectorisable first pass (see greeks_kernel); `second` is a literal at each call site, so
    LLVM folds the branch away (a runtime branch in the loop stops it from vectorising)."""
    si = s[i]
    ki = k[i]
    ti = t[i]
    ri = r[i]
    bi = carry[i]
    sig = vol[i]
    c = cp[i]
    rt = ri * ti
    ct = (bi - ri) * ti  # exp(ct) = 1 exactly when b = r and = exp(-rt) exactly when b = 0, as on the exact path
    ok = (si > 0.0) & (ki > 0.0) & (ti >= 0.0) & (sig >= 0.0) & ((c == 1.0) | (c == -1.0))
    ok = ok & (abs(rt) < 700.0) & (abs(ct) < 700.0)
    dfr = fast_exp(-rt)
    dfc = fast_exp(ct)
    sqt = math.sqrt(ti)
    v = sig * sqt
    sdf = si * dfc
    kdf = ki * dfr
    fk = sdf / kdf
    iv = 1.0 / v
    ok = ok & (v > 0.0) & (v < 1e300) & (fk > 1e-300) & (fk < 1e250)
    d1 = fast_log(fk) * iv + 0.5 * v
    d2 = d1 - v
    ok = ok & (abs(d1) <= SQRT32) & (abs(d2) <= SQRT32)
    e1 = fast_exp(-0.5 * d1 * d1)
    n1 = _ncdf_central(c * d1, e1)
    n2 = _ncdf_central(c * d2, e1 * fk)  # n(d2) = n(d1) F/K
    pdf = e1 * INV_SQRT_2PI
    a = sdf * n1
    bk = kdf * n2
    px = c * (a - bk)
    o_price[i] = px if ok else math.nan
    o_delta[i] = c * dfc * n1
    sdfpdf = sdf * pdf
    o_gamma[i] = sdfpdf * iv / (si * si)
    vega = sdfpdf * sqt
    o_vega[i] = vega
    o_theta[i] = -0.5 * sdfpdf * sig * sig * iv - c * ((bi - ri) * a + ri * bk)
    o_rho[i] = -ti * px if black76 else c * kdf * ti * n2
    if second:
        o_vanna[i] = -dfc * pdf * d2 / sig
        o_volga[i] = vega * d1 * d2 / sig


def _fast_pass(second: bool) -> Callable[..., None]:
    """The first pass's parallel loop, compiled once per value of `second`: numba freezes the closure's `second` as
    a constant, so `_fast_one` gets it as a literal and the loop stays vectorisable."""

    @njit(parallel=True)
    def run(
        s: npt.NDArray[np.float64],
        k: npt.NDArray[np.float64],
        t: npt.NDArray[np.float64],
        r: npt.NDArray[np.float64],
        carry: npt.NDArray[np.float64],
        vol: npt.NDArray[np.float64],
        cp: npt.NDArray[np.float64],
        black76: bool,
        second_order: bool,
        o_price: npt.NDArray[np.float64],
        o_delta: npt.NDArray[np.float64],
        o_gamma: npt.NDArray[np.float64],
        o_vega: npt.NDArray[np.float64],
        o_theta: npt.NDArray[np.float64],
        o_rho: npt.NDArray[np.float64],
        o_vanna: npt.NDArray[np.float64],
        o_volga: npt.NDArray[np.float64],
    ) -> None:
        for i in prange(s.shape[0]):
            _fast_one(
                i, s, k, t, r, carry, vol, cp, black76,
                o_price, o_delta, o_gamma, o_vega, o_theta, o_rho, o_vanna, o_volga, second,
            )

    return run


_fast_pass_1 = _fast_pass(False)  # price + 5 Greeks
_fast_pass_2 = _fast_pass(True)  # plus vanna and volga


@njit(parallel=True)
def _exact_pass(
    s: npt.NDArray[np.float64],
    k: npt.NDArray[np.float64],
    t: npt.NDArray[np.float64],
    r: npt.NDArray[np.float64],
    carry: npt.NDArray[np.float64],
    vol: npt.NDArray[np.float64],
    cp: npt.NDArray[np.float64],
    black76: bool,
    second_order: bool,
    o_price: npt.NDArray[np.float64],
    o_delta: npt.NDArray[np.float64],
    o_gamma: npt.NDArray[np.float64],
    o_vega: npt.NDArray[np.float64],
    o_theta: npt.NDArray[np.float64],
    o_rho: npt.NDArray[np.float64],
    o_vanna: npt.NDArray[np.float64],
    o_volga: npt.NDArray[np.float64],
) -> None:
    n = s.shape[0]
    for i in prange(n):
        if o_price[i] != o_price[i]:
            _greeks_exact(
                i,
                s,
                k,
                t,
                r,
                carry,
                vol,
                cp,
                black76,
                second_order,
                o_price,
                o_delta,
                o_gamma,
                o_vega,
                o_theta,
                o_rho,
                o_vanna,
                o_volga,
            )


def greeks_kernel(
    s: npt.NDArray[np.float64],
    k: npt.NDArray[np.float64],
    t: npt.NDArray[np.float64],
    r: npt.NDArray[np.float64],
    carry: npt.NDArray[np.float64],
    vol: npt.NDArray[np.float64],
    cp: npt.NDArray[np.float64],
    black76: bool,
    second_order: bool,
    o_price: npt.NDArray[np.float64],
    o_delta: npt.NDArray[np.float64],
    o_gamma: npt.NDArray[np.float64],
    o_vega: npt.NDArray[np.float64],
    o_theta: npt.NDArray[np.float64],
    o_rho: npt.NDArray[np.float64],
    o_vanna: npt.NDArray[np.float64],
    o_volga: npt.NDArray[np.float64],
) -> None:
    """Generalised Black-Scholes with cost of carry b (BSM: b = r - q; Black-76: S = F and b = 0).

    Outputs are separate 1-d arrays (vanna/volga only written when second_order); separate buffers of a few MB are
    recycled by the allocator between calls, where one large block would be a fresh, page-faulting mapping.
    Theta is dV/dt per year (calendar time), vega and volga per unit of volatility, rho per unit of rate
    (Black-76: forward held fixed, rho = -T V).

    Two passes. The first is branch-free (selects only, inline exp/log, both central Cody regions evaluated) so that
    LLVM vectorises it (4 options per AVX2 instruction); it writes NaN as the price of every option outside its
    domain (invalid input, zero total vol, |d1| or |d2| beyond sqrt(32), F/K or rate*T out of range). The second
    pass recomputes exactly those options with the general scalar code, which gives them their NaN or special-case
    values.
    """
    args = (s, k, t, r, carry, vol, cp, black76, second_order, o_price, o_delta, o_gamma, o_vega, o_theta, o_rho)
    (_fast_pass_2 if second_order else _fast_pass_1)(*args, o_vanna, o_volga)
    _exact_pass(*args, o_vanna, o_volga)


@njit(parallel=True)
def price_kernel(
    s: npt.NDArray[np.float64],
    k: npt.NDArray[np.float64],
    t: npt.NDArray[np.float64],
    r: npt.NDArray[np.float64],
    carry: npt.NDArray[np.float64],
    vol: npt.NDArray[np.float64],
    cp: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
) -> None:
    """Price only (same conventions as greeks_kernel)."""
    n = s.shape[0]
    for i in prange(n):
        si = s[i]
        ki = k[i]
        ti = t[i]
        ri = r[i]
        bi = carry[i]
        sig = vol[i]
        c = cp[i]
        if not (si > 0.0 and ki > 0.0 and ti >= 0.0 and sig >= 0.0 and (c == 1.0 or c == -1.0)) or (
            ri != ri or bi != bi
        ):
            out[i] = math.nan
            continue
        dfr = math.exp(-ri * ti)
        fk = si * math.exp(bi * ti) / ki
        v = sig * math.sqrt(ti)
        if v == 0.0:
            out[i] = max(c * (fk - 1.0), 0.0) * ki * dfr
            continue
        d1 = math.log(fk) / v + 0.5 * v
        d2 = d1 - v
        e1 = math.exp(-0.5 * d1 * d1)
        if e1 > 1e-250 and fk < 1e250:
            e2 = e1 * fk
        else:
            e2 = math.exp(-0.5 * d2 * d2)
        out[i] = c * ki * dfr * (fk * ncdf_e(c * d1, e1) - ncdf_e(c * d2, e2))


LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
SMALL_STEP = 1e-6  # a quartically convergent step this small leaves an error far below one ulp


@njit(inline=True)
def _householder(g: float, g1: float, g2: float, g3: float) -> float:
    """Third-order Householder step for g(s) = 0 given g and its first three derivatives."""
    nu = -g / g1
    h2 = g2 / g1
    h3 = g3 / g1
    den = 1.0 + nu * (h2 + h3 * nu / 6.0)
    if den > 0.25:
        step = nu * (1.0 + 0.5 * h2 * nu) / den
        # keep the step within a sane multiple of the Newton step
        if abs(step) <= 4.0 * abs(nu):
            return step
    return nu


@njit(inline=True)
def normalised_vol(beta: float, x: float, max_iter: int) -> tuple[float, int]:
    """Total volatility s = sigma*sqrt(T) of an out-of-the-money call in normalised Black form.

    b(x, s) = exp(x/2) N(x/s + s/2) - exp(-x/2) N(x/s - s/2) with x = ln(F/K) <= 0 and 0 < beta < exp(x/2).
    Below the inflection point s_c = sqrt(-2x) the iteration works on ln b; above it on ln(b_max - b), so that
    neither the deep out-of-the-money wing nor the high-volatility side loses precision.
    Returns (s, iterations) or (nan, -1) when the iteration does not converge.
    """
    ex2 = math.exp(0.5 * x)
    emx2 = 1.0 / ex2
    ax = -x
    xx = x * x
    sc = math.sqrt(2.0 * ax)
    bc = 0.5 * ex2 - emx2 * ncdf_e(-sc, ex2 * ex2)
    vc = ex2 * INV_SQRT_2PI
    lower = beta < bc
    if lower:
        s = sc - (bc - beta) / vc
        lb = math.log(beta)
        # asymptotic wing: b ~ n(d1) e^{x/2} s / (x^2/s^2 - s^2/4)
        u = -lb
        sa = 0.0
        for _ in range(3):
            s2 = xx / (2.0 * u)
            w = xx / s2 - 0.25 * s2
            if w <= 0.0:
                break
            un = -lb - 0.125 * s2 + 0.5 * math.log(s2) - math.log(w) - LN_SQRT_2PI + 0.5 * x
            if un <= 0.0:
                break
            u = un
            sa = math.sqrt(xx / (2.0 * u))
        if sa > 0.0 and (s <= 0.0 or sa < s):
            s = sa
        if s <= 0.0:
            s = 0.5 * sc
        target = lb
    else:
        s = sc + (beta - bc) / vc
        cb = ex2 - beta
        lc = math.log(cb)
        # high-volatility side: b_max - b ~ (e^{x/2} + e^{-x/2}) n(s/2) 2/s
        k0 = math.log(2.0 * (ex2 + emx2)) - LN_SQRT_2PI - lc
        if k0 > 1.0:
            sa = math.sqrt(8.0 * k0)
            for _ in range(3):
                q = k0 - math.log(sa)
                if q <= 0.0:
                    sa = 0.0
                    break
                sa = math.sqrt(8.0 * q)
            if sa > s:
                s = sa
        target = lc
    for it in range(max_iter):
        d1 = x / s + 0.5 * s
        d2 = d1 - s
        e1 = math.exp(-0.5 * d1 * d1)
        e2 = e1 * ex2 * ex2
        b1 = ex2 * e1 * INV_SQRT_2PI
        s2 = s * s
        t = xx / (s2 * s) - 0.25 * s
        b2 = b1 * t
        b3 = b1 * (t * t - 3.0 * xx / (s2 * s2) - 0.25)
        if lower:
            b = ex2 * ncdf_e(d1, e1) - emx2 * ncdf_e(d2, e2)
            if not b > 0.0:
                # underflow or cancellation: fall back to a safe bisection-like move
                s = s * 1.5
                continue
            r1 = b1 / b
            g = math.log(b) - target
            g1 = r1
            g2 = b2 / b - r1 * r1
            g3 = b3 / b - 3.0 * r1 * b2 / b + 2.0 * r1 * r1 * r1
        else:
            c = ex2 * ncdf_e(-d1, e1) + emx2 * ncdf_e(d2, e2)
            if not c > 0.0:
                s = s * 0.75
                continue
            r1 = b1 / c
            g = math.log(c) - target
            g1 = -r1
            g2 = -b2 / c - r1 * r1
            g3 = -b3 / c - 3.0 * r1 * b2 / c - 2.0 * r1 * r1 * r1
        step = _householder(g, g1, g2, g3)
        sn = s + step
        if sn <= 0.0:
            sn = 0.5 * s
        done = abs(step) <= SMALL_STEP * s
        s = sn
        if done:
            return s, it + 1
    return math.nan, -1


@njit(parallel=True)
def iv_kernel(
    price: npt.NDArray[np.float64],
    fwd: npt.NDArray[np.float64],
    k: npt.NDArray[np.float64],
    t: npt.NDArray[np.float64],
    df: npt.NDArray[np.float64],
    cp: npt.NDArray[np.float64],
    max_iter: int,
    vol: npt.NDArray[np.float64],
    code: npt.NDArray[np.int8],
) -> None:
    """Black implied volatility of discounted prices on the forward; ITM inputs are inverted on the OTM side."""
    n = price.shape[0]
    for i in prange(n):
        p = price[i]
        f = fwd[i]
        ki = k[i]
        ti = t[i]
        d = df[i]
        c = cp[i]
        if (
            not (f > 0.0 and ki > 0.0 and ti > 0.0 and d > 0.0 and p == p and abs(p) < math.inf)
            or not (c == 1.0 or c == -1.0)
            or f == math.inf
            or ki == math.inf
            or ti == math.inf
        ):
            vol[i] = math.nan
            code[i] = IV_BAD_INPUT
            continue
        sq = math.sqrt(f * ki)
        beta = p / d / sq
        x = math.log(f / ki)
        ex2 = math.exp(0.5 * x)
        emx2 = 1.0 / ex2
        intrinsic = c * (ex2 - emx2)
        # rounding of the normalised intrinsic value (a few ulps of exp(+-x/2))
        tol = 2e-15 * (ex2 + emx2) if intrinsic > 0.0 else 0.0
        if intrinsic > 0.0:
            beta = beta - intrinsic
        bmax = emx2 if x > 0.0 else ex2
        if beta < -tol:
            vol[i] = math.nan
            code[i] = IV_BELOW_INTRINSIC
            continue
        if beta <= tol:
            vol[i] = math.nan
            code[i] = IV_NO_TIME_VALUE
            continue
        if beta >= bmax:
            vol[i] = math.nan
            code[i] = IV_ABOVE_MAX
            continue
        s, it = normalised_vol(beta, -abs(x), max_iter)
        if it < 0:
            vol[i] = math.nan
            code[i] = IV_NO_CONVERGENCE
        else:
            vol[i] = s / math.sqrt(ti)
            code[i] = IV_OK


@njit(parallel=True)
def iv_iterations(
    beta: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
    max_iter: int,
    s_out: npt.NDArray[np.float64],
    it_out: npt.NDArray[np.int64],
) -> None:
    """Diagnostics: normalised solve on arrays (x <= 0), returning s and the iteration count."""
    for i in prange(beta.shape[0]):
        s, it = normalised_vol(beta[i], x[i], max_iter)
        s_out[i] = s
        it_out[i] = it
