"""SVI/SSVI fits on surfaces with known parameters, arbitrage detectors on planted arbitrage, chain I/O."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from models.volsurface import (
    SSVIParams,
    SVIParams,
    chain_from_ccxt,
    check_surface,
    fit_ssvi,
    fit_surface,
    fit_svi,
    load_deribit_csv,
    parse_deribit_csv,
    ssvi_w,
)
from tests.options.conftest import FORWARD, TRUE_SLICES, make_chain


def test_svi_recovers_known_parameters():
    p = SVIParams(0.02, 0.1, -0.4, 0.05, 0.15)
    k = np.linspace(-0.6, 0.5, 30)
    fit = fit_svi(k, p.total_variance(k))
    np.testing.assert_allclose(fit.params.as_array(), p.as_array(), rtol=1e-5, atol=1e-7)
    assert fit.butterfly_free and fit.min_g > 0


def test_svi_with_noise_and_weights_stays_close():
    p = SVIParams(0.03, 0.13, -0.3, 0.03, 0.2)
    k = np.linspace(-0.8, 0.8, 41)
    rng = np.random.default_rng(2)
    w = p.total_variance(k) * (1 + 0.005 * rng.standard_normal(k.size))
    fit = fit_svi(k, w, np.ones_like(k))
    assert np.max(np.abs(fit.params.total_variance(k) - p.total_variance(k))) < 0.003 * np.max(w)


def test_svi_enforces_butterfly_on_arbitrageable_data():
    # data generated from SVI parameters that violate the butterfly condition (g < 0 in the wings)
    bad = SVIParams(-0.05, 0.9, 0.95, 0.0, 0.05)
    k = np.linspace(-0.5, 0.5, 25)
    assert np.min(bad.g(np.linspace(-1.5, 1.5, 301))) < 0
    w = np.maximum(bad.total_variance(k), 1e-4)
    fit = fit_svi(k, w)
    assert fit.butterfly_free
    assert np.min(fit.params.g(np.linspace(-1.5, 1.5, 301))) >= -1e-9


def test_svi_calendar_constraint_against_previous_slice():
    prev = SVIParams(0.04, 0.1, -0.3, 0.0, 0.2)
    k = np.linspace(-0.5, 0.5, 21)
    # a later slice whose raw data dips below the earlier one near the money
    w = prev.total_variance(k) * (1.0 + 0.4 * k**2) - 0.004 * np.exp(-(k**2) / 0.02)
    grid = np.linspace(-1, 1, 101)
    fit = fit_svi(k, w, grid=grid, prev=prev)
    assert fit.calendar_ok
    assert np.all(fit.params.total_variance(grid) >= prev.total_variance(grid) - 1e-10)


def test_ssvi_recovers_known_parameters():
    true = SSVIParams(-0.35, 1.1, 0.4, np.array([0.1, 0.25, 0.5, 1.0]), np.array([0.02, 0.05, 0.09, 0.16]))
    ks, ts, ws = [], [], []
    for t in true.t:
        k = np.linspace(-0.6, 0.6, 25)
        ks.append(k)
        ts.append(np.full_like(k, t))
        ws.append(true.total_variance(k, np.full_like(k, t)))
    k, t, w = map(np.concatenate, (ks, ts, ws))
    fit = fit_ssvi(k, t, w, true.t, true.theta)
    assert fit.params.rho == pytest.approx(true.rho, abs=1e-5)
    assert fit.params.eta == pytest.approx(true.eta, rel=1e-4)
    assert fit.params.gamma == pytest.approx(true.gamma, abs=1e-4)
    assert fit.params.arbitrage_free()
    assert fit.rmse_w < 1e-8


def test_ssvi_conditions_flag_violations():
    ok = SSVIParams(-0.3, 1.0, 0.4, np.array([0.1, 0.2]), np.array([0.02, 0.04]))
    assert ok.arbitrage_free()
    assert not SSVIParams(-0.3, 1.8, 0.4, ok.t, ok.theta).arbitrage_free()  # eta(1+|rho|) > 2
    assert not SSVIParams(-0.3, 1.0, 0.4, ok.t, np.array([0.04, 0.02])).arbitrage_free()  # theta decreasing
    assert not SSVIParams(-0.3, 1.0, 0.7, ok.t, ok.theta).arbitrage_free()  # gamma > 1/2


def test_detectors_find_planted_arbitrage():
    k = np.linspace(-1, 1, 201)
    good = {0.1: SVIParams(0.01, 0.05, -0.2, 0.0, 0.1), 0.5: SVIParams(0.05, 0.1, -0.2, 0.0, 0.2)}
    rep = check_surface(lambda kk, t: good[t].total_variance(kk), list(good), k)
    assert rep.arbitrage_free and rep.min_g > 0
    # planted calendar arbitrage: the longer slice lies below the shorter one near the money
    cal = {0.1: good[0.1], 0.5: SVIParams(-0.005, 0.15, -0.2, 0.0, 0.1)}
    rep = check_surface(lambda kk, t: cal[t].total_variance(kk), list(cal), k)
    assert not rep.calendar_ok and rep.butterfly_ok
    assert rep.calendar_violations and rep.max_calendar_drop > 0
    # planted butterfly arbitrage: a wing steeper than the Lee bound allows / negative density
    fly = {0.1: good[0.1], 0.5: SVIParams(-0.05, 0.9, 0.95, 0.0, 0.05)}
    rep = check_surface(lambda kk, t: fly[t].total_variance(kk), list(fly), k)
    assert not rep.butterfly_ok
    assert rep.butterfly_violations[0]["t"] == 0.5
    # SSVI outside its no-arbitrage region (theta phi (1 + |rho|) = 5.7 > 4) shows up in the generic detector too
    th = np.array([0.1])
    bad_w = lambda kk, t: ssvi_w(kk, th * t / 0.1, 0.9, np.full_like(kk, 30.0))  # noqa: E731
    assert not check_surface(bad_w, [0.1], k).butterfly_ok


def test_fit_surface_on_synthetic_chain(synthetic_chain):
    fit = fit_surface(synthetic_chain)
    assert fit.arbitrage.arbitrage_free
    assert fit.quality.within_spread_frac == 1.0
    assert fit.quality.rmse_vol_pts < 0.05
    assert fit.surface.ssvi is not None and fit.surface.ssvi.arbitrage_free()
    summary = fit.summary()
    for key in ("arbitrage_free", "within_spread_frac", "rmse_vol_pts", "svi_ms_per_slice", "ssvi_ms"):
        assert key in summary
    # interpolation: exact at the fitted expiries, between them monotone in t at fixed k
    for t, p in TRUE_SLICES:
        k = np.array([-0.1, 0.0, 0.1])
        np.testing.assert_allclose(fit.surface.total_variance(k, t), p.total_variance(k), rtol=2e-3, atol=2e-5)
    ts = np.linspace(1 / 365, 1.0, 60)
    w = fit.surface.total_variance(np.zeros_like(ts), ts)
    assert np.all(np.diff(w) >= 0)
    iv = fit.surface.implied_vol([FORWARD, FORWARD * 1.2], [45 / 365, 45 / 365])
    assert iv.shape == (2,) and np.all((iv > 0.2) & (iv < 2))
    with pytest.raises(ValueError):
        fit.surface.implied_vol(FORWARD, 0.0)


def test_fit_surface_noisy_chain_within_spread():
    chain = make_chain(noise=0.004, half_spread=0.015, seed=4)
    fit = fit_surface(chain)
    assert fit.arbitrage.arbitrage_free
    assert fit.quality.within_spread_frac >= 0.95


def test_csv_round_trip(synthetic_csv, synthetic_chain):
    chain = load_deribit_csv(synthetic_csv)
    assert len(chain) == len(synthetic_chain)
    np.testing.assert_allclose(np.sort(chain.t), np.sort(synthetic_chain.t), rtol=1e-9)
    np.testing.assert_allclose(np.sort(chain.bid_iv), np.sort(synthetic_chain.bid_iv), rtol=1e-12)
    assert chain.has_both.all()
    assert [lab for lab, _ in chain.expiries()] == ["E0", "E1", "E2", "E3"]


def test_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_deribit_csv(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="lacks column"):
        parse_deribit_csv("a,b\n1,2\n")
    with pytest.raises(ValueError, match="non-numeric"):
        parse_deribit_csv(
            "snapshot_ts_ms,option_type,strike,expiry_ts_ms,underlying_price,bid_iv,ask_iv,mark_iv\n"
            "1,call,abc,2,3,4,5,6\n"
        )


class FakeDeribit:
    """Duck-typed ccxt exchange: markets + fetch_option_chain, no network."""

    id = "deribit"
    has: ClassVar[dict[str, bool]] = {"fetchOptionChain": True}

    def __init__(self, chain):
        self.chain = chain
        self.now = 1_700_000_000_000

    def milliseconds(self):
        return self.now

    def load_markets(self):
        out = {}
        for i in range(len(self.chain)):
            out[self._sym(i)] = {
                "strike": float(self.chain.strike[i]),
                "expiry": self.now + self.chain.t[i] * 365 * 86_400_000,
                "optionType": "call" if self.chain.is_call[i] else "put",
                "expiryDatetime": self.chain.expiry_label[i],
                "inverse": True,
            }
        return out

    def _sym(self, i):
        kind = "C" if self.chain.is_call[i] else "P"
        return f"BTC/USD:BTC-{self.chain.expiry_label[i]}-{self.chain.strike[i]:.2f}-{kind}"

    def fetch_option_chain(self, code):
        from models.pricing import black76_price

        out = {}
        for i in range(len(self.chain)):
            f, k, t, c = self.chain.forward[i], self.chain.strike[i], self.chain.t[i], bool(self.chain.is_call[i])
            info = {"underlying_price": f}
            if i % 2 == 0:  # raw IV fields present
                info.update(
                    bid_iv=self.chain.bid_iv[i] * 100,
                    ask_iv=self.chain.ask_iv[i] * 100,
                    mark_iv=self.chain.mark_iv[i] * 100,
                )
            prices = {
                name: float(black76_price(f, k, t, iv, 0.0, c)) / f
                for name, iv in (
                    ("bidPrice", self.chain.bid_iv[i]),
                    ("askPrice", self.chain.ask_iv[i]),
                    ("markPrice", self.chain.mark_iv[i]),
                )
            }
            out[self._sym(i)] = {"info": info, "underlyingPrice": f, **prices}
        return out


def test_chain_from_ccxt_fake_exchange(synthetic_chain):
    chain = chain_from_ccxt(FakeDeribit(synthetic_chain), "BTC")
    assert len(chain) == len(synthetic_chain)
    order = np.lexsort((synthetic_chain.is_call, synthetic_chain.strike, synthetic_chain.t))
    got = np.lexsort((chain.is_call, chain.strike, chain.t))
    np.testing.assert_allclose(chain.bid_iv[got], synthetic_chain.bid_iv[order], rtol=1e-9)
    np.testing.assert_allclose(chain.mark_iv[got], synthetic_chain.mark_iv[order], rtol=1e-9)
    fit = fit_surface(chain)
    assert fit.arbitrage.arbitrage_free and fit.quality.within_spread_frac == 1.0


def test_chain_from_ccxt_rejects_unsupported_exchange():
    class NoOptions:
        id = "binance"
        has: ClassVar[dict[str, bool]] = {"fetchOptionChain": False}

    with pytest.raises(ValueError, match="fetchOptionChain"):
        chain_from_ccxt(NoOptions())


def test_charts_written(tmp_path, synthetic_chain):
    from models.volsurface.charts import write_charts

    paths = write_charts(fit_surface(synthetic_chain), tmp_path / "smile.png")
    assert [p.name for p in paths] == ["smile.png", "smile_surface.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_ssvi_analytic_jacobian_matches_finite_differences():
    from models.volsurface.ssvi import _Problem

    rng = np.random.default_rng(7)
    k = rng.uniform(-1.0, 1.0, 60)
    th = rng.uniform(0.01, 0.5, 60)
    w = th * rng.uniform(0.8, 1.5, 60)
    prob = _Problem(k, th, w, rng.uniform(0.5, 2.0, 60))
    for x in ([-0.3, 0.2, -0.4], [0.5, -1.0, 1.2], [-1.5, 2.0, 0.1]):
        xa = np.array(x)
        jac = prob.jac(xa)
        num = np.empty_like(jac)
        for j in range(3):
            h = 1e-6
            up, dn = xa.copy(), xa.copy()
            up[j] += h
            dn[j] -= h
            num[:, j] = (prob.resid(up) - prob.resid(dn)) / (2 * h)
        np.testing.assert_allclose(jac, num, rtol=1e-6, atol=1e-9)
