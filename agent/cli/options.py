"""`crypto-agent option price|greeks|iv|surface`: option pricing, implied vol and the volatility surface."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from pydantic import ValidationError

from tools.options import (
    ImpliedVolArgs,
    PriceOptionArgs,
    evaluate_chain_files,
    fit_chain_csv,
    iv_payload,
    price_payload,
    score_row,
    surface_payload,
)


def _finite(value: str) -> float:
    try:
        x = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from exc
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"not a finite number: {value!r}")
    return x


def _contract_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        choices=["black76", "bsm"],
        default="black76",
        help="black76: --underlying is the forward (Deribit); bsm: spot",
    )
    p.add_argument("--type", dest="option_type", choices=["call", "put"], required=True)
    p.add_argument("--underlying", type=_finite, required=True, help="forward (black76) or spot (bsm)")
    p.add_argument("--strike", type=_finite, required=True)
    p.add_argument("--days", type=_finite, required=True, help="calendar days to expiry")
    p.add_argument("--rate", type=_finite, default=0.0, help="continuously compounded rate (0.05 = 5 %%)")
    p.add_argument("--q", type=_finite, default=0.0, help="bsm only: dividend/borrow yield")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    opt = sub.add_parser("option", help="option pricing, Greeks, implied vol and volatility surfaces")
    osub = opt.add_subparsers(dest="option_command", metavar="ACTION")
    for name, helptext in (("price", "price (and coin premium with --inverse)"), ("greeks", "price and Greeks")):
        p = osub.add_parser(name, help=helptext)
        _contract_args(p)
        p.add_argument("--vol", type=_finite, required=True, help="volatility as a fraction (0.8 = 80 %%)")
        p.add_argument("--inverse", action="store_true", help="also show the coin-settled premium and delta")
        p.set_defaults(func=cmd_price, greeks=name == "greeks")
    p = osub.add_parser("iv", help="implied volatility of a premium")
    _contract_args(p)
    p.add_argument("--price", type=_finite, required=True, help="option premium")
    p.add_argument("--price-in", choices=["usd", "coin"], default="usd", help="coin: Deribit inverse premium")
    p.set_defaults(func=cmd_iv)
    p = osub.add_parser("surface", help="fit SVI/SSVI to a chain CSV, check arbitrage, chart it")
    p.add_argument(
        "--chain",
        required=True,
        help="chain CSV: flat Deribit tickers, a Deribit book summary (coin prices + forward) or bid/ask IVs with "
        "Greeks (format and currency detected)",
    )
    p.add_argument("--currency", default=None, help="currency to fit when the file holds several (default BTC)")
    p.add_argument("--chart", default=None, help="PNG path for the smiles (the surface goes to <stem>_surface.png)")
    p.add_argument("--full", action="store_true", help="include SVI/SSVI parameters and arbitrage details")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_surface)
    p = osub.add_parser(
        "surface-eval",
        help="fit many chains (files or directories of CSVs) and score each against its bid/ask IVs and the "
        "exchange's mark",
    )
    p.add_argument("paths", nargs="+", metavar="DIR_OR_FILE")
    p.add_argument("--json", action="store_true", help="print one JSON object (rows + summary)")
    p.set_defaults(func=cmd_surface_eval)
    opt.set_defaults(func=lambda args: _usage(opt))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _validation_msg(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()[:5])


def _contract(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "model": args.model,
        "option_type": args.option_type,
        "underlying": args.underlying,
        "strike": args.strike,
        "expiry_days": args.days,
        "rate": args.rate,
        "dividend_yield": args.q,
    }


def cmd_price(args: argparse.Namespace) -> int:
    try:
        a = PriceOptionArgs(**_contract(args), vol=args.vol, inverse=args.inverse)
        out = price_payload(a)
    except ValidationError as exc:
        return _fail(_validation_msg(exc))
    except ValueError as exc:
        return _fail(str(exc))
    if not args.greeks:
        out = {k: out[k] for k in ("model", "option_type", "price", "coin") if k in out}
    if args.json:
        print(json.dumps(out))
        return 0
    for k, v in out.items():
        if k in ("raw", "units"):
            continue
        print(f"{k:>18}: {json.dumps(v) if isinstance(v, dict) else v}")
    return 0


def cmd_iv(args: argparse.Namespace) -> int:
    try:
        a = ImpliedVolArgs(**_contract(args), price=args.price, price_in=args.price_in)
    except ValidationError as exc:
        return _fail(_validation_msg(exc))
    out = iv_payload(a)
    if args.json:
        print(json.dumps(out))
    elif out["ok"]:
        print(f"implied vol: {out['implied_vol_pct']:.6f} %")
    else:
        print(f"no implied vol: {out['reason']}")
    return 0 if out["ok"] else 1


def cmd_surface(args: argparse.Namespace) -> int:
    try:
        fit = fit_chain_csv(args.chain, args.currency)
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    out = surface_payload(fit, full=args.full)
    if args.chart:
        from models.volsurface.charts import write_charts

        try:
            out["charts"] = [str(p) for p in write_charts(fit, args.chart)]
        except OSError as exc:
            return _fail(f"cannot write chart: {exc}")
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"chain: {out['currency']} ({out['format']})")
    print(f"expiries: {out['n_expiries']}  quotes with bid+ask (OTM): {out['n_with_both']}")
    for x in out["left_out"]:
        print(f"left out: {x['expiry']} ({x['reason']})")
    print(
        f"within bid/ask IV spread: {out['within_spread_frac']:.1%} (all quotes incl. ITM: "
        f"{out['within_spread_frac_all']:.1%})"
    )
    print(f"RMSE vs mid IV: {out['rmse_vol_pts']:.3f} vol pts (max {out['max_abs_err_vol_pts']:.2f})")
    print(f"arbitrage-free: {out['arbitrage_free']} (butterfly {out['butterfly_ok']}, calendar {out['calendar_ok']})")
    print(f"SSVI: arbitrage-free {out['ssvi_arbitrage_free']}, RMSE {out['ssvi_rmse_vol_pts']} vol pts")
    print(f"fit time: SVI {out['svi_ms_per_slice']:.2f} ms/slice, SSVI {out['ssvi_ms']:.2f} ms")
    for e in out["expiries"]:
        ws = e["within_spread_frac"]
        print(
            f"  {e['expiry']:>20}  {e['days']:8.2f}d  F={e['forward']:<10g} ATM {e['atm_vol_pct']:7.2f}%  "
            f"in-spread {'-' if ws is None else f'{ws:.0%}'}  rmse {e['rmse_vol_pts']}"
        )
    for c in out.get("charts", []):
        print(f"chart: {c}")
    return 0


def cmd_surface_eval(args: argparse.Namespace) -> int:
    try:
        scores, summary = evaluate_chain_files(args.paths)
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    rows = [score_row(s) for s in scores]
    if args.json:
        print(json.dumps({"chains": rows, "summary": summary}))
        return 0
    print(
        f"{'chain':<44} {'cur':<4} {'quotes':>6} {'inside':>7} {'mark':>6} {'rmse':>6} {'arb-free':>8} "
        f"{'fit ms':>7}  left out"
    )
    for r in rows:
        mark = "-" if r["mark_within_spread"] is None else f"{r['mark_within_spread']:.1%}"
        arb = (
            "yes"
            if r["arbitrage_free"]
            else ("no:" + ("B" if not r["butterfly_ok"] else "") + ("C" if not r["calendar_ok"] else ""))
        )
        left = ", ".join(f"{x['expiry']} ({x['reason']})" for x in r["left_out"]) or "-"
        print(
            f"{r['name'][:44]:<44} {r['currency']:<4} {r['n_quotes']:>6} {r['within_spread']:>7.1%} {mark:>6} "
            f"{r['rmse_vol_pts']:>6.2f} {arb:>8} {r['fit_ms']:>7.0f}  {left}"
        )
    mk = summary.get("mark_within_spread_median")
    print(
        f"chains {summary['chains']}: inside spread min {summary['within_spread_min']:.1%}, median "
        f"{summary['within_spread_median']:.1%} (mark median {'-' if mk is None else f'{mk:.1%}'}), "
        f"arbitrage-free {summary['arbitrage_free_frac']:.0%}"
    )
    return 0
