"""Implied volatility: round trips over a wide grid (both backends), ITM inversion through parity, reason codes."""

from __future__ import annotations

import numpy as np
import pytest

from models.pricing import IVCode, black76_price, bsm_price, implied_vol, implied_vol_black76, implied_vol_bsm
from models.pricing._kernels import ncdf
from models.pricing.iv import _normalised_vol_numpy


def _grid():
    F = 100.0
    K = F * np.exp(np.linspace(-1.5, 1.5, 31))
    T = np.array([1 / 365, 0.02, 0.1, 0.5, 1.0, 3.0])
    sig = np.array([0.05, 0.2, 0.5, 1.0, 2.0])
    KK, TT, SS = np.meshgrid(K, T, sig, indexing="ij")
    return F, KK, TT, SS


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_round_trip_wide_grid_otm(backend):
    F, K, T, sig = _grid()
    call = K >= F
    price = black76_price(F, K, T, sig, 0.01, call)
    res = implied_vol_black76(price, F, K, T, 0.01, call, backend=backend)
    # well-posed: the OTM price is not vanishingly small compared with the forward
    well = price / F > 1e-12
    assert well.sum() > 500
    assert np.all(res.code[well] == IVCode.OK)
    rel = np.abs(res.vol[well] - sig[well]) / sig[well]
    assert rel.max() < 1e-12, rel.max()


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_round_trip_itm_through_parity(backend):
    F, K, T, sig = 100.0, np.array([60.0, 80.0, 95.0, 105.0, 120.0, 150.0]), 0.5, 0.6
    for call in (True, False):
        price = black76_price(F, K, T, sig, 0.0, call)
        res = implied_vol_black76(price, F, K, T, 0.0, call, backend=backend)
        # ITM prices carry the intrinsic value, so the round trip loses a few digits of it
        np.testing.assert_allclose(res.vol, sig, rtol=1e-9)


def test_bsm_and_dispatch():
    S, K, T, r, q, sig = 100.0, np.array([90.0, 100.0, 120.0]), 0.75, 0.04, 0.015, 0.33
    price = bsm_price(S, K, T, sig, r, q, ["put", "call", "call"])
    np.testing.assert_allclose(implied_vol_bsm(price, S, K, T, r, q, ["put", "call", "call"]).vol, sig, rtol=1e-12)
    res = implied_vol(price, S, K, T, r, q, ["p", "c", "c"], model="bsm")
    np.testing.assert_allclose(res.vol, sig, rtol=1e-12)
    with pytest.raises(ValueError):
        implied_vol(price, S, K, T, model="heston")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_reason_codes(backend):
    F, K, T = 100.0, 90.0, 1.0
    prices = np.array([5.0, 10.0, 100.5, 20.0, np.nan, 12.0])
    calls = np.array([True, True, True, True, True, True])
    Ks = np.array([K, K, K, K, K, -1.0])
    res = implied_vol_black76(prices, F, Ks, T, 0.0, calls, backend=backend)
    assert res.code[0] == IVCode.BELOW_INTRINSIC  # call intrinsic is 10
    assert res.code[1] == IVCode.NO_TIME_VALUE
    assert res.code[2] == IVCode.ABOVE_MAX  # above the forward
    assert res.code[3] == IVCode.OK
    assert res.code[4] == IVCode.BAD_INPUT and res.code[5] == IVCode.BAD_INPUT
    assert np.isnan(res.vol[[0, 1, 2, 4, 5]]).all()
    assert "intrinsic" in res.reason(0)
    counts = res.reason_counts()
    assert counts["ok"] == 1 and counts["bad_input"] == 2
    assert implied_vol_black76(95.0, F, 200.0, T, 0.0, False, backend=backend).code == IVCode.BELOW_INTRINSIC
    assert implied_vol_black76(105.0, F, 200.0, T, 0.0, False, backend=backend).code == IVCode.OK
    put_hi = implied_vol_black76(200.0, F, 200.0, T, 0.0, False, backend=backend)
    assert put_hi.code == IVCode.ABOVE_MAX


def test_shapes_preserved():
    K = np.full((3, 4), 110.0)
    price = black76_price(100.0, K, 0.5, 0.4)
    res = implied_vol_black76(price, 100.0, K, 0.5)
    assert res.vol.shape == (3, 4) and res.code.shape == (3, 4)
    np.testing.assert_allclose(res.vol, 0.4, rtol=1e-12)


def test_normalised_solver_extreme_domain():
    # normalised OTM calls from near ATM to far wings and very high total vol
    xs = -np.concatenate([[0.0, 1e-8], np.linspace(0.01, 5, 25)])
    ss = np.geomspace(0.01, 6, 40)
    X, S = np.meshgrid(xs, ss)
    X, S = X.ravel(), S.ravel()
    b = np.array([np.exp(x / 2) * ncdf(x / s + s / 2) - np.exp(-x / 2) * ncdf(x / s - s / 2) for x, s in zip(X, S)])
    ok = (b > 1e-100) & (b < np.exp(X / 2) * (1 - 1e-6))
    s_hat = _normalised_vol_numpy(b[ok], X[ok])
    assert np.nanmax(np.abs(s_hat - S[ok]) / S[ok]) < 1e-11
