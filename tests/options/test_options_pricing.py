"""Prices and Greeks: against an mpmath reference (50 digits), against finite differences, backend agreement,
broadcasting, edge cases, parity and inverse-option conversions."""

from __future__ import annotations

import itertools

import mpmath as mp
import numpy as np
import pytest

from models.pricing import (
    black76_greeks,
    black76_price,
    bsm_greeks,
    bsm_price,
    call_from_put,
    coin_delta,
    coin_greeks,
    coin_to_usd,
    implied_forward,
    parity_gap,
    put_from_call,
    usd_to_coin,
)
from models.pricing._kernels import ncdf

mp.mp.dps = 50


def mp_bsm(S, K, T, sig, r, q, call):
    S, K, T, sig, r, q = (mp.mpf(x) for x in (S, K, T, sig, r, q))
    d1 = (mp.log(S / K) + (r - q + sig**2 / 2) * T) / (sig * mp.sqrt(T))
    d2 = d1 - sig * mp.sqrt(T)
    if call:
        return S * mp.exp(-q * T) * mp.ncdf(d1) - K * mp.exp(-r * T) * mp.ncdf(d2)
    return K * mp.exp(-r * T) * mp.ncdf(-d2) - S * mp.exp(-q * T) * mp.ncdf(-d1)


def mp_greeks(S, K, T, sig, r, q, call):
    f = lambda s, v, t, rr: mp_bsm(s, K, t, v, rr, q, call)  # noqa: E731
    return {
        "price": f(S, sig, T, r),
        "delta": mp.diff(lambda s: f(s, sig, T, r), S),
        "gamma": mp.diff(lambda s: f(s, sig, T, r), S, 2),
        "vega": mp.diff(lambda v: f(S, v, T, r), sig),
        "theta": -mp.diff(lambda t: f(S, sig, t, r), T),
        "rho": mp.diff(lambda rr: f(S, sig, T, rr), r),
        "vanna": mp.diff(lambda s, v: f(s, v, T, r), (S, sig), (1, 1)),
        "volga": mp.diff(lambda v: f(S, v, T, r), sig, 2),
    }


CASES = [
    (100.0, 100.0, 1.0, 0.2, 0.05, 0.01, True),
    (100.0, 80.0, 0.25, 0.6, 0.03, 0.0, False),
    (9350.0, 12000.0, 0.1, 0.9, 0.0, 0.0, True),
    (50.0, 65.0, 2.0, 0.35, -0.01, 0.02, False),
    (100.0, 130.0, 0.02, 1.2, 0.01, 0.0, True),
]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("case", CASES)
def test_bsm_matches_mpmath(case, backend):
    S, K, T, sig, r, q, call = case
    g = bsm_greeks(S, K, T, sig, r, q, call, backend=backend).as_dict()
    ref = mp_greeks(S, K, T, sig, r, q, call)
    for name, val in g.items():
        exact = float(ref[name])
        assert abs(float(val) - exact) <= 2e-13 * max(abs(exact), 1.0) + 1e-14 * S, (name, float(val), exact)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_black76_is_bsm_with_carry_equal_rate(backend):
    F, K, T, sig, r = 9350.0, 10000.0, 0.3, 0.8, 0.04
    g = black76_greeks(F, K, T, sig, r, False, backend=backend)
    # Black-76 == BSM with q = r on S = F (price, delta, gamma, vega, theta); rho keeps F fixed: -T V
    ref = mp_greeks(F, K, T, sig, r, r, False)
    for name in ("price", "delta", "gamma", "vega", "vanna", "volga"):
        assert float(getattr(g, name)) == pytest.approx(float(ref[name]), rel=1e-12, abs=1e-12)
    assert float(g.rho) == pytest.approx(-T * float(g.price), rel=1e-14)
    # theta: dV/dt with F fixed
    f = lambda t: mp.exp(-mp.mpf(r) * t) * mp_bsm(F, K, t, sig, 0, 0, False)  # noqa: E731
    assert float(g.theta) == pytest.approx(float(-mp.diff(f, T)), rel=1e-12)


def test_greeks_match_finite_differences():
    rng = np.random.default_rng(7)
    n = 400
    S = rng.uniform(50, 150, n)
    K = rng.uniform(60, 140, n)
    T = rng.uniform(0.05, 2.0, n)
    sig = rng.uniform(0.1, 1.0, n)
    r = rng.uniform(0.0, 0.05, n)
    q = rng.uniform(0.0, 0.03, n)
    cp = rng.random(n) < 0.5
    g = bsm_greeks(S, K, T, sig, r, q, cp)
    h = 1e-4

    def p(**kw):
        a = {"S": S, "K": K, "T": T, "sigma": sig, "r": r, "q": q}
        a.update(kw)
        return bsm_price(a["S"], a["K"], a["T"], a["sigma"], a["r"], a["q"], cp)

    fd = {
        "delta": (p(S=S * (1 + h)) - p(S=S * (1 - h))) / (2 * S * h),
        "gamma": (p(S=S * (1 + h)) - 2 * p() + p(S=S * (1 - h))) / (S * h) ** 2,
        "vega": (p(sigma=sig + h) - p(sigma=sig - h)) / (2 * h),
        "theta": -(p(T=T + h) - p(T=T - h)) / (2 * h),
        "rho": (p(r=r + h) - p(r=r - h)) / (2 * h),
        "volga": (p(sigma=sig + h) - 2 * p() + p(sigma=sig - h)) / h**2,
    }
    d_up = bsm_greeks(S, K, T, sig + h, r, q, cp).delta
    d_dn = bsm_greeks(S, K, T, sig - h, r, q, cp).delta
    fd["vanna"] = (d_up - d_dn) / (2 * h)
    for name, approx in fd.items():
        exact = getattr(g, name)
        np.testing.assert_allclose(exact, approx, rtol=2e-4, atol=2e-5 * S.max(), err_msg=name)


def test_backends_agree_and_shapes_broadcast():
    rng = np.random.default_rng(3)
    K = rng.uniform(50, 150, (4, 5, 6))
    T = rng.uniform(0.01, 2, (5, 1))
    sig = np.array(0.7)
    a = black76_greeks(100.0, K, T, sig, 0.02, "put", backend="numba")
    b = black76_greeks(100.0, K, T, sig, 0.02, "put", backend="numpy")
    for name, v in a.as_dict().items():
        assert v.shape == (4, 5, 6)
        np.testing.assert_allclose(v, getattr(b, name), rtol=1e-11, atol=1e-13, err_msg=name)
    assert black76_price(100.0, 100.0, 1.0, 0.2).shape == ()
    g = bsm_greeks(100.0, K, 1.0, 0.3, second_order=False)
    assert g.vanna is None and g.price.shape == K.shape


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_edge_cases(backend):
    # zero time or zero vol -> discounted intrinsic, zero vega/gamma; invalid inputs -> NaN
    g = bsm_greeks([110.0, 90.0, 110.0], 100.0, [0.0, 0.0, 1.0], [0.3, 0.3, 0.0], 0.05, 0.0, True, backend=backend)
    assert g.price[0] == pytest.approx(10.0)
    assert g.price[1] == 0.0
    assert g.price[2] == pytest.approx(110 - 100 * np.exp(-0.05))
    assert np.all(g.vega == 0.0) and np.all(g.gamma == 0.0)
    bad = bsm_greeks(
        [-1.0, 100.0, 100.0, np.nan], [100.0, 0.0, 100.0, 100.0], [1.0, 1.0, -1.0, 1.0], 0.2, backend=backend
    )
    assert np.all(np.isnan(bad.price)) and np.all(np.isnan(bad.delta))
    with pytest.raises(ValueError):
        bsm_price(100, 100, 1, 0.2, is_call="straddle")


def test_deep_otm_tail_precision():
    # relative accuracy in the far wing (price ~4e-20), where naive 1 - N(d) loses everything
    S, K, T, sig = 100.0, 400.0, 0.25, 0.3
    val = float(bsm_price(S, K, T, sig, 0.0, 0.0, True))
    ref = float(mp_bsm(S, K, T, sig, 0.0, 0.0, True))
    assert ref < 1e-18
    assert val == pytest.approx(ref, rel=1e-11)


def test_normal_cdf_against_mpmath():
    for x in itertools.chain(np.linspace(-37, 8, 451), [0.0, 0.674, 0.675, 5.656, 5.657, -5.657]):
        exact = float(mp.ncdf(x))
        assert ncdf(float(x)) == pytest.approx(exact, rel=max(2e-15 * (1 + x * x), 1e-15)), x


def test_parity_helpers():
    F, K, T, r, sig = 9350.0, np.array([8000.0, 9350.0, 11000.0]), 0.2, 0.03, 0.75
    c = black76_price(F, K, T, sig, r, True)
    p = black76_price(F, K, T, sig, r, False)
    np.testing.assert_allclose(put_from_call(c, F, K, T, r), p, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(call_from_put(p, F, K, T, r), c, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(parity_gap(c, p, F, K, T, r), 0.0, atol=1e-9)
    np.testing.assert_allclose(implied_forward(c, p, K, T, r), F, rtol=1e-13)
    assert abs(float(parity_gap(c[0] + 1.0, p[0], F, K[0], T, r)) - 1.0) < 1e-9


def test_inverse_conversions():
    F, K, T, sig = 9350.0, 10000.0, 30 / 365, 0.8
    g = black76_greeks(F, K, T, sig, 0.0, True)
    prem_coin = usd_to_coin(g.price, F)
    assert float(coin_to_usd(prem_coin, F)) == pytest.approx(float(g.price))
    cd = coin_delta(g.delta, g.price, F)
    # coin delta = F * d(V/F)/dF
    h = 1e-3
    up = black76_price(F + h, K, T, sig) / (F + h)
    dn = black76_price(F - h, K, T, sig) / (F - h)
    assert float(cd) == pytest.approx(float(F * (up - dn) / (2 * h)), rel=1e-6)
    cg = coin_greeks(g, F)
    assert float(cg["delta_coin"]) == pytest.approx(float(cd))
    assert float(cg["price_coin"]) == pytest.approx(float(prem_coin))


def test_inline_exp_and_log_within_one_ulp():
    import mpmath as mp

    from models.pricing._jit import njit
    from models.pricing._kernels import fast_exp, fast_log

    @njit()
    def both(x: np.ndarray, y: np.ndarray, ex: np.ndarray, lg: np.ndarray) -> None:
        for i in range(x.shape[0]):
            ex[i] = fast_exp(x[i])
            lg[i] = fast_log(y[i])

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-707.0, 708.0, 400), rng.uniform(-1.0, 1.0, 400), [0.0, -1e-300, 1e-17]])
    y = np.concatenate([np.exp(rng.uniform(-700.0, 700.0, 400)), 1.0 + rng.uniform(-1e-6, 1e-6, 400), [1.0, 2.0, 0.5]])
    ex, lg = np.empty_like(x), np.empty_like(y)
    both(x, y, ex, lg)
    mp.mp.dps = 40
    for xi, got in zip(x, ex, strict=True):
        assert abs(mp.mpf(got) - mp.exp(mp.mpf(xi))) <= np.spacing(got), xi
    for yi, got in zip(y, lg, strict=True):
        true = mp.log(mp.mpf(yi))
        assert abs(mp.mpf(got) - true) <= np.spacing(abs(float(true))), yi
    assert ex[800] == 1.0 and lg[800] == 0.0  # exp(0) and log(1) exact: b = r keeps the carry discount at 1


@pytest.mark.parametrize("second_order", [False, True])
def test_vectorised_pass_matches_general_path(second_order):
    from models.pricing import _kernels

    rng = np.random.default_rng(11)
    n = 5000
    s = rng.uniform(50.0, 150.0, n)
    k = s * np.exp(rng.uniform(-1.5, 1.5, n))
    t = rng.uniform(0.001, 3.0, n)
    r = rng.uniform(-0.01, 0.08, n)
    b = r - rng.uniform(-0.02, 0.05, n)
    b[::3] = r[::3]  # q = 0
    b[1::3] = 0.0  # futures-style carry
    vol = rng.uniform(0.02, 2.0, n)
    cp = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    m = 8 if second_order else 6
    fast = [np.empty(n) for _ in range(m)] + ([] if second_order else [np.empty(0), np.empty(0)])
    _kernels.greeks_kernel(s, k, t, r, b, vol, cp, False, second_order, *fast)
    exact = [np.full(n, np.nan) for _ in range(m)] + ([] if second_order else [np.empty(0), np.empty(0)])
    _kernels._exact_pass(s, k, t, r, b, vol, cp, False, second_order, *exact)  # every lane on the general path
    for j in range(m):
        scale = np.maximum(np.abs(exact[j]), 1e-9 * s)
        assert np.max(np.abs(fast[j] - exact[j]) / scale) < 1e-11, j
