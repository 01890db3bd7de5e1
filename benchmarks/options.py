"""Options benchmark: price + 5 Greeks and implied vol on the same 1,000,000 random options for ours,
py_vollib_vectorized and QuantLib (a subsample), errors against an mpmath reference, and SVI/SSVI fits on the Deribit
chain in ../shared/data (when present). Prints one JSON line last.

Run: .venv/bin/python benchmarks/options.py [--n 1000000] [--repeats 5]
Missing anchor packages report null. Timings are best-of-N wall time on this machine (other work on the machine
slows them; the numpy row is measured in the same run for comparison).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.pricing import bsm_greeks, bsm_price, implied_vol_bsm

CHAIN = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "options" / "deribit_btc_option_chain_20200514_flat.csv"
)
GREEKS = ("price", "delta", "gamma", "vega", "theta", "rho")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def best_time(fn: Any, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def random_options(n: int, seed: int = 42) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    S = np.full(n, 100.0)
    T = rng.uniform(0.02, 2.0, n)
    sig = rng.uniform(0.05, 1.5, n)
    r = rng.uniform(0.0, 0.05, n)
    # strikes within +-3 standard deviations of the forward, so that prices are meaningful
    z = rng.uniform(-3.0, 3.0, n)
    F = S * np.exp(r * T)
    K = np.round(F * np.exp(z * sig * np.sqrt(T)), 4)
    otm_call = K >= F
    return {"S": S, "K": K, "T": T, "sig": sig, "r": r, "F": F, "call": otm_call}


def mp_reference(o: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    import mpmath as mp

    mp.mp.dps = 40
    out = {g: np.empty(idx.size) for g in GREEKS}
    for j, i in enumerate(idx):
        S, K, T, s, r = (mp.mpf(float(o[k][i])) for k in ("S", "K", "T", "sig", "r"))
        c = 1 if o["call"][i] else -1
        sq = mp.sqrt(T)
        d1 = (mp.log(S / K) + (r + s * s / 2) * T) / (s * sq)
        d2 = d1 - s * sq
        n1 = mp.npdf(d1)
        df = mp.exp(-r * T)
        out["price"][j] = float(c * (S * mp.ncdf(c * d1) - K * df * mp.ncdf(c * d2)))
        out["delta"][j] = float(c * mp.ncdf(c * d1))
        out["gamma"][j] = float(n1 / (S * s * sq))
        out["vega"][j] = float(S * n1 * sq)
        out["theta"][j] = float(-S * n1 * s / (2 * sq) - c * r * K * df * mp.ncdf(c * d2))
        out["rho"][j] = float(c * K * T * df * mp.ncdf(c * d2))
    return out


def max_rel_err(got: dict[str, np.ndarray], ref: dict[str, np.ndarray], S: float = 100.0) -> float:
    """Largest relative error over all six outputs, with an absolute floor of 1e-12 * S for values near zero."""
    worst = 0.0
    for g in GREEKS:
        err = np.abs(np.asarray(got[g]) - ref[g]) / np.maximum(np.abs(ref[g]), 1e-12 * S)
        worst = max(worst, float(np.nanmax(err)))
    return worst


def bench_ours(o: dict[str, np.ndarray], repeats: int, backend: str) -> float:
    def run() -> None:
        bsm_greeks(o["S"], o["K"], o["T"], o["sig"], o["r"], 0.0, o["call"], second_order=False, backend=backend)  # type: ignore[arg-type]

    return best_time(run, repeats)


def bench_pyvollib(
    o: dict[str, np.ndarray], repeats: int, idx: np.ndarray, ref: dict[str, np.ndarray]
) -> dict[str, Any]:
    try:
        import py_vollib_vectorized as pvv
    except Exception as exc:  # missing or broken install
        log(f"py_vollib_vectorized unavailable: {exc}")
        return {}
    flag = np.where(o["call"], "c", "p")

    def greeks(sl: slice | np.ndarray = slice(None)) -> dict[str, np.ndarray]:
        args = tuple(np.array(a[sl], copy=True) for a in (flag, o["S"], o["K"], o["T"], o["r"], o["sig"]))
        price = pvv.vectorized_black_scholes(*args, return_as="numpy")
        g = {
            k: np.asarray(v, dtype=np.float64)
            for k, v in pvv.get_all_greeks(*args, model="black_scholes", return_as="dict").items()
        }
        # py_vollib scales: vega and rho per 1 %, theta per day
        return {
            "price": price,
            "delta": g["delta"],
            "gamma": g["gamma"],
            "vega": g["vega"] * 100,
            "theta": g["theta"] * 365,
            "rho": g["rho"] * 100,
        }

    out: dict[str, Any] = {}
    sub = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in greeks(idx).items()}
    if all(v.shape == idx.shape for v in sub.values()):
        out["pyvollib_vec_greeks_max_rel_err"] = max_rel_err(sub, ref)
    else:
        log(f"py_vollib_vectorized returned shapes {[v.shape for v in sub.values()]} for {idx.size} inputs")
    t = best_time(greeks, max(1, repeats // 2))
    out["pyvollib_vec_greeks_per_s"] = o["S"].size / t
    price = bsm_price(o["S"], o["K"], o["T"], o["sig"], o["r"], 0.0, o["call"])

    def iv() -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(
                pvv.vectorized_implied_volatility(
                    price,
                    o["S"],
                    o["K"],
                    o["T"],
                    o["r"],
                    flag,
                    q=0.0,
                    model="black_scholes",
                    return_as="numpy",
                    on_error="ignore",
                )
            )

    t = best_time(iv, max(1, repeats // 2))
    out["pyvollib_vec_iv_per_s"] = o["S"].size / t
    vols = np.asarray(iv(), dtype=np.float64).reshape(-1)
    well = well_posed(o, price)
    out["pyvollib_vec_iv_max_rel_err"] = float(np.nanmax(np.abs(vols[well] - o["sig"][well]) / o["sig"][well]))
    out["pyvollib_vec_iv_failed"] = int(np.sum(~np.isfinite(vols[well])))
    return out


def bench_quantlib(o: dict[str, np.ndarray], m: int, ref_idx: np.ndarray, ref: dict[str, np.ndarray]) -> dict[str, Any]:
    try:
        import QuantLib as ql
    except Exception as exc:
        log(f"QuantLib unavailable: {exc}")
        return {}
    today = ql.Date(14, 5, 2020)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    spot = ql.SimpleQuote(100.0)
    rate = ql.SimpleQuote(0.0)
    vol = ql.SimpleQuote(0.2)
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(spot),
        ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(rate), dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), ql.QuoteHandle(vol), dc)),
    )
    engine = ql.AnalyticEuropeanEngine(process)

    def option(i: int) -> tuple[Any, float]:
        """Option i priced by QuantLib (whole days to expiry) and its T in years."""
        days = max(1, round(float(o["T"][i]) * 365))
        rate.setValue(float(o["r"][i]))
        vol.setValue(float(o["sig"][i]))
        opt = ql.EuropeanOption(
            ql.PlainVanillaPayoff(ql.Option.Call if o["call"][i] else ql.Option.Put, float(o["K"][i])),
            ql.EuropeanExercise(today + days),
        )
        opt.setPricingEngine(engine)
        return opt, days / 365.0

    def one(i: int) -> dict[str, float]:
        opt, T = option(i)
        return {
            "price": opt.NPV(),
            "delta": opt.delta(),
            "gamma": opt.gamma(),
            "vega": opt.vega(),
            "theta": opt.theta(),
            "rho": opt.rho(),
            "T": T,
        }

    t = time.perf_counter()
    for i in range(m):
        one(i)
    per_s = m / (time.perf_counter() - t)
    # accuracy on the reference subsample: QuantLib needs whole days, so the mpmath reference (and ours, for the
    # cross-check) is recomputed at QuantLib's T
    rows = [one(int(i)) for i in ref_idx]
    at_days = {k: np.asarray(v)[ref_idx] for k, v in o.items()}
    at_days["T"] = np.array([r["T"] for r in rows])
    ref_days = mp_reference(at_days, np.arange(ref_idx.size))
    ours = bsm_greeks(
        at_days["S"],
        at_days["K"],
        at_days["T"],
        at_days["sig"],
        at_days["r"],
        0.0,
        at_days["call"],
        second_order=False,
    ).as_dict()
    sub = {g: np.array([r[g] for r in rows]) for g in GREEKS}
    del ref
    out: dict[str, Any] = {
        "quantlib_greeks_per_s": per_s,
        "quantlib_subsample": m,
        "quantlib_greeks_max_rel_err": max_rel_err(sub, ref_days),
        "quantlib_vs_ours_max_rel_diff": max_rel_err(sub, {g: ours[g] for g in GREEKS}),
    }
    # implied vol: QuantLib's solver on its own prices, OTM only (as ours), a smaller subsample (it is slow)
    n_iv = max(1, m // 4)
    vols = np.full(n_iv, np.nan)
    t = time.perf_counter()
    for i in range(n_iv):
        opt, _T = option(i)
        npv = opt.NPV()
        if npv / math.sqrt(float(o["F"][i] * o["K"][i])) < 1e-12:
            continue  # not well posed (the same rule as ours)
        try:
            vols[i] = opt.impliedVolatility(npv, process, 1e-15, 1000, 1e-4, 5.0)
        except RuntimeError:
            pass  # QuantLib raises where its solver fails; counted below
    iv_s = time.perf_counter() - t
    done = np.isfinite(vols)
    out["quantlib_iv_per_s"] = n_iv / iv_s
    out["quantlib_iv_subsample"] = n_iv
    out["quantlib_iv_failed"] = int(n_iv - done.sum())
    if done.any():
        true = o["sig"][:n_iv][done]
        out["quantlib_iv_max_rel_err"] = float(np.max(np.abs(vols[done] - true) / true))
    return out


def well_posed(o: dict[str, np.ndarray], price: np.ndarray) -> np.ndarray:
    """OTM prices that carry information: normalised price >= 1e-12 (the rest round to a few ulps of nothing)."""
    return np.asarray(price / np.sqrt(o["F"] * o["K"]) >= 1e-12, dtype=bool)


def bench_surface(repeats: int) -> dict[str, Any]:
    if not CHAIN.is_file():
        log(f"Deribit chain not found at {CHAIN}: SVI/SSVI rows are null (data absent)")
        return {"chain_present": False}
    from models.volsurface import fit_surface, load_deribit_csv

    chain = load_deribit_csv(CHAIN)
    fits = [fit_surface(chain) for _ in range(max(3, repeats * 2))]
    fits = fits[1:]  # first call loads compiled code
    f = fits[-1]
    return {
        "chain_present": True,
        "chain_file": CHAIN.name,
        "svi_ms_per_slice": float(np.median([x.svi_ms_per_slice for x in fits])),
        "ssvi_ms": float(np.median([x.ssvi_ms for x in fits])),
        "arbitrage_free": bool(f.arbitrage.arbitrage_free),
        "within_spread_frac": f.quality.within_spread_frac,
        "within_spread_frac_all": f.quality_all.within_spread_frac,
        "rmse_vol_pts": f.quality.rmse_vol_pts,
        "ssvi_rmse_vol_pts": f.ssvi_quality.rmse_vol_pts if f.ssvi_quality else None,
        "ssvi_arbitrage_free": bool(f.surface.ssvi is not None and f.surface.ssvi.arbitrage_free()),
        "n_expiries": len(f.surface.slices),
        "n_quotes_with_both_otm": f.quality.n_with_both,
    }


DATA_OPTIONS = CHAIN.parent


def dev_chain_files() -> list[Path]:
    """Every development chain under ../shared/data/options (the 2020 flat chain, the 2025-12..2026-04 book
    summaries, the 2025 IV+Greeks snapshots)."""
    if not DATA_OPTIONS.is_dir():
        return []
    return sorted(p for p in DATA_OPTIONS.rglob("*.csv") if p.is_file())


def bench_chains() -> dict[str, Any]:
    """Fit every development chain (each currency of each file) and score it against its bid/ask IVs and the
    exchange's mark: chains, within_spread_min/median, mark_within_spread_median, arbitrage_free_frac."""
    files = dev_chain_files()
    if not files:
        log(f"no development chains under {DATA_OPTIONS}: chain rows are null (data absent)")
        return {"chains": 0}
    from models.volsurface import evaluate_chain, read_chains, summarise

    scores = []
    for f in files:
        for chain in read_chains(f):
            s = evaluate_chain(chain, name=f.name)
            scores.append(s)
            log(
                f"{f.name} {s.currency}: inside {s.within_spread:.3f} mark {s.mark_within_spread} "
                f"rmse {s.rmse_vol_pts:.2f} arbitrage-free {s.arbitrage_free}"
            )
    out = summarise(scores)
    out["chains_failed"] = [f"{s.name}:{s.currency}" for s in scores if not s.arbitrage_free or s.within_spread < 0.9]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--ref", type=int, default=2000, help="mpmath reference subsample")
    ap.add_argument("--quantlib", type=int, default=20_000, help="QuantLib subsample")
    ap.add_argument("--skip-chains", action="store_true", help="skip the fits of every development chain")
    args = ap.parse_args()

    o = random_options(args.n)
    rng = np.random.default_rng(1)
    idx = np.sort(rng.choice(args.n, size=min(args.ref, args.n), replace=False))
    log(f"mpmath reference on {idx.size} options ...")
    ref = mp_reference(o, idx)
    res: dict[str, Any] = {"benchmark": "options", "n": args.n, "cpu_count": os.cpu_count()}

    t = bench_ours(o, args.repeats, "auto")
    res["greeks_per_s"] = args.n / t
    g = bsm_greeks(
        o["S"][idx], o["K"][idx], o["T"][idx], o["sig"][idx], o["r"][idx], 0.0, o["call"][idx], second_order=False
    ).as_dict()
    res["greeks_max_rel_err"] = max_rel_err(g, ref)
    res["numpy_greeks_per_s"] = args.n / bench_ours(o, max(2, args.repeats // 2), "numpy")
    log(f"ours {res['greeks_per_s'] / 1e6:.1f} M/s, numpy {res['numpy_greeks_per_s'] / 1e6:.1f} M/s")

    price = bsm_price(o["S"], o["K"], o["T"], o["sig"], o["r"], 0.0, o["call"])
    t = best_time(lambda: implied_vol_bsm(price, o["S"], o["K"], o["T"], o["r"], 0.0, o["call"]), args.repeats)
    res["iv_per_s"] = args.n / t
    iv = implied_vol_bsm(price, o["S"], o["K"], o["T"], o["r"], 0.0, o["call"])
    well = well_posed(o, price)
    rel = np.abs(iv.vol - o["sig"]) / o["sig"]
    res["iv_max_rel_err"] = float(np.nanmax(rel[well]))
    res["iv_well_posed_frac"] = float(well.mean())
    res["iv_failed_well_posed"] = int(np.sum(~np.isfinite(iv.vol[well])))
    res["iv_max_rel_err_all"] = float(np.nanmax(rel))
    log(f"iv {res['iv_per_s'] / 1e6:.2f} M/s, max rel err {res['iv_max_rel_err']:.2e}")

    res.update({"pyvollib_vec_greeks_per_s": None, "pyvollib_vec_iv_per_s": None})
    res.update(bench_pyvollib(o, args.repeats, idx, ref))
    res.update({"quantlib_greeks_per_s": None})
    res.update(bench_quantlib(o, min(args.quantlib, args.n), idx[:200], ref))
    res.update({"svi_ms_per_slice": None, "ssvi_ms": None, "arbitrage_free": None, "within_spread_frac": None})
    res.update(bench_surface(args.repeats))
    res.update(
        {
            "chains": None,
            "within_spread_min": None,
            "within_spread_median": None,
            "mark_within_spread_median": None,
            "arbitrage_free_frac": None,
        }
    )
    if not args.skip_chains:
        res.update(bench_chains())
    try:
        import numba

        res["numba"] = numba.__version__
        res["threads"] = numba.get_num_threads()
    except ImportError:
        res["numba"] = None
    res["load_avg_1m"] = os.getloadavg()[0]  # other work on the machine slows every timing above
    res["goals"] = {
        "greeks_per_s": 40e6,
        "iv_per_s": 5e6,
        "iv_max_rel_err": 1e-12,
        "svi_ms_per_slice": 2.0,
        "ssvi_ms": 5.0,
        "within_spread_frac": 0.95,
        "arbitrage_free_frac": 1.0,
        "within_spread_min": 0.90,
        "within_spread_median": ">= mark_within_spread_median",
    }
    print(json.dumps({k: (round(v, 6) if isinstance(v, float) and abs(v) > 1e-3 else v) for k, v in res.items()}))


if __name__ == "__main__":
    main()
