"""Real-export readers (format and currency detection), the robust calibration (band objective, arbitrage-free
output, one-sided / near-expiry slices) and `option surface-eval`. All chains are generated here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm

from agent.cli import main
from models.pricing import black76_price
from models.volsurface import (
    OptionChain,
    SVIParams,
    detect_format,
    evaluate_chain,
    fit_surface,
    fit_svi,
    parse_chains,
    read_chains,
)
from tests.options.conftest import TRUE_SLICES, make_chain

SNAP = "2026-03-01T04:47:01+00:00"
SNAP_MS = 1_772_340_421_000.0  # the same instant in ms
FWD = {"BTC": 90_000.0, "ETH": 3_000.0}


def _smile_iv(t: float, k: np.ndarray) -> np.ndarray:
    """IV from the conftest SVI slice nearest in t (scaled in t) - a calendar-consistent smile."""
    i = int(np.argmin([abs(tt - t) for tt, _ in TRUE_SLICES]))
    tt, p = TRUE_SLICES[i]
    return np.sqrt(p.total_variance(k) / tt)


def book_summary_csv(half_spread: float = 0.01) -> tuple[str, dict[str, float]]:
    """A Deribit book summary for BTC and ETH: coin bid/ask/mark prices from known IVs, futures_price forward."""
    rows = [
        "timestamp,instrument_name,option_type,strike,expiry_datetime,time_to_maturity,bid_price,ask_price,"
        "mark_price,futures_price,implied_volatility,currency"
    ]
    truth: dict[str, float] = {}
    for cur, f0 in FWD.items():
        for days, label in ((7, "06MAR26"), (30, "29MAR26"), (90, "29MAY26")):
            t = days / 365.0
            fwd = f0 * (1 + 0.001 * days / 30)
            for kk in np.linspace(-0.4, 0.4, 17):
                strike = float(round(fwd * np.exp(kk), 2))
                iv = float(_smile_iv(t, np.array([np.log(strike / fwd)]))[0])
                for call in (True, False):
                    kind = "C" if call else "P"
                    name = f"{cur}-{label}-{strike:g}-{kind}"
                    prices = [
                        float(black76_price(fwd, strike, t, v, 0.0, call)) / fwd
                        for v in (iv - half_spread, iv + half_spread, iv)
                    ]
                    truth[name] = iv
                    rows.append(
                        f"{SNAP},{name},{'call' if call else 'put'},{strike!r},2026-{label[2:5]}-{label[:2]},"
                        f"{t!r},{prices[0]!r},{prices[1]!r},{prices[2]!r},{fwd!r},{iv!r},{cur}"
                    )
    return "\n".join(rows) + "\n", truth


def iv_greeks_csv(fwd: float = 84_000.0, hours_before: float = 3.0) -> tuple[str, float, dict[str, float]]:
    """An export with bid/ask IVs in percent, expiry dates and Black-76 Greeks, but no forward, time or mark."""
    expiries = ["2025-04-04", "2025-04-11", "2025-04-25", "2025-06-27"]
    import pandas as pd

    now = pd.Timestamp("2025-04-03T08:00:00Z") - pd.Timedelta(hours=hours_before)
    rows = [
        "Instrument,Option Type,Strike Price,Expiration Date,Bid Price (USD),Ask Price (USD),Bid IV,Ask IV,Delta,"
        "Gamma,Theta,Vega"
    ]
    fwds = {}
    for j, e in enumerate(expiries):
        t = (pd.Timestamp(e + "T08:00:00Z") - now).total_seconds() / (365 * 86400)
        f = fwd * (1 + 0.002 * j)
        fwds[e] = f
        for kk in np.linspace(-0.3, 0.3, 13):
            strike = float(round(f * np.exp(kk), -2))
            iv = float(_smile_iv(t, np.array([np.log(strike / f)]))[0])
            sd = iv * np.sqrt(t)
            d1 = (np.log(f / strike) + 0.5 * sd * sd) / sd
            vega = f * norm.pdf(d1) * np.sqrt(t) / 100
            theta = -f * norm.pdf(d1) * iv / (2 * np.sqrt(t)) / 365
            for call in (True, False):
                delta = norm.cdf(d1) if call else norm.cdf(d1) - 1
                bid = (iv - 0.01) * 100 if call == (strike >= f) else 0.8  # ITM side: the collector's "no bid"
                name = f"BTC-{e}-{strike:g}-{'C' if call else 'P'}"
                rows.append(
                    f"{name},{'call' if call else 'put'},{strike},{e},0,0,{bid:.4f},{(iv + 0.01) * 100:.4f},"
                    f"{delta:.5f},0.00001,{theta:.5f},{vega:.5f}"
                )
    return "\n".join(rows) + "\n", float(now.value / 1e6), fwds


def test_detect_format_names_missing_columns():
    assert (
        detect_format(
            [
                "snapshot_ts_ms",
                "option_type",
                "strike",
                "expiry_ts_ms",
                "underlying_price",
                "bid_iv",
                "ask_iv",
                "mark_iv",
            ]
        )
        == "deribit_flat"
    )
    with pytest.raises(ValueError, match="lacks column") as err:
        detect_format(["instrument_name", "bid_price", "ask_price"])
    assert "futures_price or underlying_price" in str(err.value)


def test_book_summary_reader_inverts_coin_prices_per_currency(tmp_path):
    text, _truth = book_summary_csv()
    path = tmp_path / "deribit_options_snapshot.csv"
    path.write_text(text)
    chains = read_chains(path)
    assert [c.underlying for c in chains] == ["BTC", "ETH"]
    for c in chains:
        assert c.meta["format"] == "deribit_book_summary" and len(c) == 3 * 17 * 2
        mid = 0.5 * (c.bid_iv + c.ask_iv)
        np.testing.assert_allclose(mid, c.mark_iv, atol=2e-4)  # Black-76 on the forward, r = 0, premium x F
        np.testing.assert_allclose(c.ask_iv - c.bid_iv, 0.02, atol=2e-4)
        assert np.allclose(np.sort(np.unique(np.round(c.t * 365))), [7, 30, 90])


def test_iv_greeks_reader_recovers_forward_time_and_mark(tmp_path):
    text, now_ms, fwds = iv_greeks_csv()
    path = tmp_path / "combo_20250403T120000_x.csv"  # the file-name time is only an upper bound
    path.write_text(text)
    (chain,) = read_chains(path)
    assert chain.meta["format"] == "iv_quotes_greeks" and chain.underlying == "BTC"
    assert abs(chain.meta["snapshot_ts_ms"] - now_ms) < 10 * 60_000  # within 10 minutes
    for lab, f in fwds.items():
        got = chain.forward[np.array(chain.expiry_label) == lab]
        assert np.allclose(got, f, rtol=2e-3)
    mid = 0.5 * (chain.bid_iv + chain.ask_iv)
    ok = np.isfinite(mid)
    err = np.abs(chain.mark_iv[ok] - mid[ok])  # Greeks rounded to 5 decimals blur the far wings
    assert ok.sum() > 50 and np.isfinite(err).mean() > 0.9
    assert np.nanmedian(err) < 0.002 and np.nanmax(err) < 0.03
    assert np.isnan(chain.bid_iv[~chain.has_both]).all() or (~chain.has_both).sum() == 0


def test_flat_reader_still_reads_the_2020_layout(tmp_path):
    from tests.options.conftest import chain_to_csv

    chains = parse_chains(chain_to_csv(make_chain()))
    assert len(chains) == 1 and chains[0].meta["format"] == "deribit_flat" and chains[0].has_both.all()


def test_band_fit_recovers_known_svi_parameters():
    p = SVIParams(0.02, 0.1, -0.4, 0.05, 0.15)
    k = np.linspace(-0.6, 0.5, 30)
    w = p.total_variance(k)
    fit = fit_svi(k, w, np.ones_like(k), band=(w * 0.999, w * 1.001))
    np.testing.assert_allclose(fit.params.total_variance(k), w, rtol=2e-3)
    assert abs(fit.params.rho - p.rho) < 0.05 and abs(fit.params.m - p.m) < 0.02
    assert fit.butterfly_free


def test_generated_chain_recovered_inside_spread():
    chain = make_chain(noise=0.003, half_spread=0.01, seed=3)
    fit = fit_surface(chain)
    score = evaluate_chain(chain)
    assert fit.arbitrage.arbitrage_free and score.arbitrage_free
    assert score.within_spread >= 0.97 and score.mark_within_spread == 1.0
    for t, p in TRUE_SLICES:
        k = np.array([-0.1, 0.0, 0.1])
        np.testing.assert_allclose(fit.surface.total_variance(k, t), p.total_variance(k), rtol=0.03)


def _chain_from_slices(slices: list[tuple[float, SVIParams]], half_spread: float = 0.004) -> OptionChain:
    labels, ts, ks, calls, fwds, bids, asks = [], [], [], [], [], [], []
    for i, (t, p) in enumerate(slices):
        k = np.linspace(-0.5, 0.5, 21)
        iv = np.sqrt(np.maximum(p.total_variance(k), 1e-6) / t)
        for kk, v in zip(k, iv, strict=True):
            labels.append(f"E{i}")
            ts.append(t)
            ks.append(1000 * np.exp(kk))
            calls.append(kk >= 0)
            fwds.append(1000.0)
            bids.append(v - half_spread)
            asks.append(v + half_spread)
    n = len(ks)
    return OptionChain(
        labels,
        np.array(ts),
        np.array(ks),
        np.array(calls),
        np.array(fwds),
        np.array(bids),
        np.array(asks),
        np.full(n, np.nan),
        "BTC",
    )


def test_planted_butterfly_and_calendar_arbitrage_removed():
    short = SVIParams(0.01, 0.05, -0.2, 0.0, 0.1)
    # the longer slice dips below the shorter one near the money (calendar) ...
    dip = SVIParams(-0.005, 0.15, -0.2, 0.0, 0.1)
    # ... and a third violates the butterfly condition (negative density in the wings)
    fly = SVIParams(-0.05, 0.9, 0.95, 0.0, 0.05)
    from models.volsurface import check_surface

    k = np.linspace(-1, 1, 201)
    planted = {0.1: short, 0.2: dip, 0.5: fly}
    rep = check_surface(lambda kk, t: planted[t].total_variance(kk), list(planted), k)
    assert not rep.calendar_ok and not rep.butterfly_ok
    fit = fit_surface(_chain_from_slices(list(planted.items())))
    assert fit.arbitrage.arbitrage_free, fit.arbitrage.as_dict()
    assert fit.surface.check_arbitrage(np.linspace(-3, 3, 601)).arbitrage_free


def test_near_expiry_and_one_sided_slice_never_wild():
    chain = make_chain(half_spread=0.01)
    rng = np.random.default_rng(5)
    # a 2-hour expiry with a few erratic two-sided quotes and one-sided wings
    t = 2 / (24 * 365)
    k = np.linspace(-0.04, 0.04, 7)
    iv = 0.6 + 0.3 * rng.standard_normal(k.size) ** 2
    extra = OptionChain(
        ["E-short"] * (k.size + 4),
        np.full(k.size + 4, t),
        9350.0 * np.exp(np.concatenate([k, [-0.2, -0.15, 0.15, 0.2]])),
        np.concatenate([k >= 0, [False, False, True, True]]),
        np.full(k.size + 4, 9350.0),
        np.concatenate([iv - 0.05, [np.nan] * 4]),  # the wings have only an ask
        np.concatenate([iv + 0.05, [3.0, 2.5, 2.5, 3.0]]),
        np.full(k.size + 4, np.nan),
        "BTC",
    )
    both = OptionChain(
        chain.expiry_label + extra.expiry_label,
        *(
            np.concatenate([getattr(chain, f), getattr(extra, f)])
            for f in ("t", "strike", "is_call", "forward", "bid_iv", "ask_iv", "mark_iv")
        ),
        "BTC",
    )
    fit = fit_surface(both)
    assert fit.arbitrage.arbitrage_free
    short = [s for s in fit.surface.slices if s.label == "E-short"]
    if short:
        vol = np.sqrt(short[0].params.total_variance(np.linspace(-0.2, 0.2, 41)) / t)
        assert np.all((vol > 0.2) & (vol < 3.5))
    else:
        assert any(x["expiry"] == "E-short" and x["reason"] for x in fit.left_out)
    # the longer expiries keep their fit whatever the short one did
    score = evaluate_chain(chain)
    assert score.within_spread >= 0.97


def test_cli_surface_reads_book_summary_and_refuses_bad_files(tmp_path, capsys):
    text, _ = book_summary_csv()
    good = tmp_path / "deribit_options_snapshot.csv"
    good.write_text(text)
    assert main(["option", "surface", "--chain", str(good), "--currency", "ETH", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arbitrage_free"] is True and out["within_spread_frac"] >= 0.9
    bad = tmp_path / "bad.csv"
    bad.write_text("instrument_name,bid_price,ask_price\nBTC-1-2-C,0.1,0.2\n")
    assert main(["option", "surface", "--chain", str(bad)]) == 2
    assert "futures_price" in capsys.readouterr().err
    assert main(["option", "surface-eval", str(good), str(bad)]) == 2
    assert "lacks column" in capsys.readouterr().err
    assert main(["option", "surface", "--chain", str(good), "--currency", "SOL"]) == 2
    assert main(["option", "surface-eval", str(tmp_path / "missing.csv")]) == 2


def test_cli_surface_eval_table_and_json(tmp_path, capsys):
    text, _ = book_summary_csv()
    (tmp_path / "a.csv").write_text(text)
    assert main(["option", "surface-eval", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["chains"] == 2 and len(out["chains"]) == 2
    row = out["chains"][0]
    for key in ("within_spread", "mark_within_spread", "rmse_vol_pts", "arbitrage_free", "fit_ms", "left_out"):
        assert key in row
    assert out["summary"]["arbitrage_free_frac"] == 1.0
    assert main(["option", "surface-eval", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "inside" in table and "a.csv" in table and "ETH" in table


def test_warm_start_from_previous_snapshot_and_summary():
    first = fit_surface(make_chain(noise=0.002, seed=1))
    nxt = make_chain(noise=0.002, seed=2)
    warm = fit_surface(nxt, warm=first.surface)
    cold = fit_surface(nxt)
    assert warm.arbitrage.arbitrage_free and cold.arbitrage.arbitrage_free
    assert warm.quality.within_spread_frac >= cold.quality.within_spread_frac - 0.02
    from models.volsurface import score_fit, summarise

    scores = [score_fit(warm, name="warm"), score_fit(cold, name="cold")]
    out = summarise(scores)
    assert out["chains"] == 2 and out["arbitrage_free_frac"] == 1.0
    assert out["within_spread_min"] <= out["within_spread_median"] <= 1.0
    assert out["mark_within_spread_median"] == 1.0  # the generated marks are the true smile
    assert out["within_spread_median_mark_chains"] == out["within_spread_median"]
