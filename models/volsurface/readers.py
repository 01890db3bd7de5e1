"""Option-chain readers for real exchange exports, with format and currency detection.

Supported layouts (detected from the header):

- `deribit_flat`: one row per option with `snapshot_ts_ms`, `expiry_ts_ms`, `underlying_price` (the expiry's
  forward) and `bid_iv`, `ask_iv`, `mark_iv` in percent (the collector's flat export of Deribit tickers).
- `deribit_book_summary`: Deribit book summaries with `bid_price`, `ask_price` (and `mark_price`) in coin and the
  expiry's forward in `futures_price` (or `underlying_price` / `underlying`); the time to expiry comes from
  `time_to_maturity` (years) or from `expiry_datetime` minus `timestamp`. Bid and ask IVs are computed here with
  Black-76 on the forward, r = 0, USD premium = coin price x forward. `implied_volatility` (or `mark_iv`) is the
  exchange's mark IV (a fraction, or percent when above 5).
- `iv_quotes_greeks`: chains that already carry `bid_iv` and `ask_iv` (percent) with an expiry date and the
  exchange's Black-76 Greeks (`delta`, `theta` per day, `vega` per vol point) but no forward, no snapshot time and
  no mark (e.g. dashboards built on Deribit tickers; their USD prices may be missing). With r = 0,
  theta / vega = -100 sigma / (730 t), so the mark IV is B t with B = -7.3 theta / vega; the snapshot time is the
  median of expiry - mid IV / B over two-sided quotes near the money (the mark sits inside bid/ask there), the
  forward of each expiry the median of K exp(d1 s - s^2/2) (d1 from the call delta, s = mark sqrt(t)) near the
  money. A bid IV of exactly 0.8 % is the collector's "no bid" placeholder. The time in the file name is only an
  upper bound of the snapshot time, used when too few quotes carry Greeks.

Every reader returns one `OptionChain` per currency found in the file. An unreadable file raises `ValueError`
naming the missing columns of the closest format.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.pricing.iv import implied_vol_black76
from models.volsurface.chain import YEAR_MS, OptionChain, _clean_iv, parse_deribit_csv

FloatArray = npt.NDArray[np.float64]
DERIBIT_EXPIRY_HOUR = 8  # Deribit options expire at 08:00 UTC
NO_BID_PLACEHOLDER = 0.8  # percent; the iv_quotes_greeks collector writes it where there is no bid


@dataclass(frozen=True)
class ChainFormat:
    name: str
    # each entry is a set of alternative column names; one of them must be present
    required: tuple[tuple[str, ...], ...]
    description: str


FORMATS = (
    ChainFormat(
        "deribit_flat",
        (
            ("snapshot_ts_ms",),
            ("option_type",),
            ("strike",),
            ("expiry_ts_ms",),
            ("underlying_price",),
            ("bid_iv",),
            ("ask_iv",),
            ("mark_iv",),
        ),
        "flat Deribit tickers (IVs in percent, expiry and snapshot in ms)",
    ),
    ChainFormat(
        "deribit_book_summary",
        (
            ("bid_price",),
            ("ask_price",),
            ("futures_price", "underlying_price", "underlying"),
            ("time_to_maturity", "expiry_datetime"),
            ("strike", "instrument_name"),
            ("option_type", "instrument_name"),
        ),
        "Deribit book summary (bid/ask in coin, forward per expiry)",
    ),
    ChainFormat(
        "iv_quotes_greeks",
        (
            ("bid_iv",),
            ("ask_iv",),
            ("strike_price", "strike"),
            ("expiration_date",),
            ("option_type",),
            ("delta",),
            ("theta",),
            ("vega",),
        ),
        "bid/ask IV quotes (percent) with expiry dates and Black-76 Greeks",
    ),
)


def _missing(fmt: ChainFormat, cols: set[str]) -> list[str]:
    return [" or ".join(alts) for alts in fmt.required if not any(a in cols for a in alts)]


def normalise_column(name: object) -> str:
    """'Bid Price (USD)' -> 'bid_price_usd', 'Option Type' -> 'option_type' (exports differ only in spelling)."""
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def detect_format(columns: list[str]) -> str:
    """Name of the first format whose required columns are all present; ValueError naming what is missing."""
    cols = {normalise_column(c) for c in columns}
    misses = [(fmt, _missing(fmt, cols)) for fmt in FORMATS]
    for fmt, miss in misses:
        if not miss:
            return fmt.name
    fmt, miss = min(misses, key=lambda x: len(x[1]))
    raise ValueError(
        f"unrecognised chain layout: closest is {fmt.name} ({fmt.description}), which lacks column(s) "
        f"{', '.join(miss)}; supported: {', '.join(f.name for f in FORMATS)}"
    )


def read_chains(path: str | Path) -> list[OptionChain]:
    """Read a chain export (any supported format); one chain per currency, sorted by currency."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"chain file not found: {p}")
    if p.suffix.lower() != ".csv":
        raise ValueError(f"chain file must be a .csv export, got {p.name}")
    return parse_chains(p.read_text(encoding="utf-8", errors="replace"), name=p.name, source=str(p))


def read_chain(path: str | Path, currency: str | None = None) -> OptionChain:
    """Read one currency's chain; `currency` picks one when the file holds several (default: the only one, else
    BTC)."""
    return pick_currency(read_chains(path), currency, Path(path).name)


def pick_currency(chains: list[OptionChain], currency: str | None, name: str) -> OptionChain:
    found = [c.underlying for c in chains]
    if currency is not None:
        for c in chains:
            if c.underlying.upper() == currency.upper():
                return c
        raise ValueError(f"{name} has no {currency} options (currencies: {', '.join(found)})")
    if len(chains) == 1:
        return chains[0]
    for c in chains:
        if c.underlying == "BTC":
            return c
    return chains[0]


def parse_chains(text: str, *, name: str = "chain", source: str = "csv text") -> list[OptionChain]:
    import pandas as pd

    try:
        df = pd.read_csv(io.StringIO(text))
    except Exception as exc:  # pandas raises several parser error types
        raise ValueError(f"cannot parse {name} as CSV: {exc}") from exc
    df.columns = [normalise_column(c) for c in df.columns]
    fmt = detect_format(list(df.columns))
    if df.empty:
        raise ValueError(f"{name} has no rows")
    if fmt == "deribit_flat":
        chains = _split_currency(parse_deribit_csv(text, source=source, name=name))
    elif fmt == "deribit_book_summary":
        chains = _book_summary(df, name, source)
    else:
        chains = _iv_quotes_greeks(df, name, source)
    for c in chains:
        c.meta["format"] = fmt
    return chains


# ----------------------------------------------------------------------------------------------- helpers


def _currency_of(names: list[str]) -> list[str]:
    """BTC from 'BTC-27FEB26-98000-P', 'SYN.BTC-16JAN26' or 'BTC'."""
    out = []
    for n in names:
        s = str(n).upper()
        if s.startswith("SYN."):
            s = s[4:]
        out.append(re.split(r"[-_/ ]", s, maxsplit=1)[0] if s and s != "NAN" else "")
    return out


def _split_currency(chain: OptionChain, cur: list[str] | None = None) -> list[OptionChain]:
    if cur is None:
        return [chain]
    arr = np.asarray(cur)
    out = []
    for c in sorted(set(arr.tolist())):
        sub = chain.select(arr == c)
        sub.underlying = str(c)
        out.append(sub)
    return out


def _numeric(df: object, cols: list[str], name: str) -> dict[str, FloatArray]:
    import pandas as pd

    assert isinstance(df, pd.DataFrame)
    out: dict[str, FloatArray] = {}
    for c in cols:
        vals = pd.to_numeric(df[c], errors="coerce")
        bad = vals.isna() & df[c].notna() & (df[c].astype(str).str.strip() != "")
        if bool(bad.any()):
            raise ValueError(f"{name}: non-numeric value {df[c][bad].iloc[0]!r} in column {c}")
        out[c] = vals.to_numpy(dtype=np.float64)
    return out


def _option_kind(series: object, name: str) -> npt.NDArray[np.bool_]:
    import pandas as pd

    assert isinstance(series, pd.Series)
    kind = series.astype(str).str.strip().str.lower().str[0]
    if not kind.isin(["c", "p"]).all():
        raise ValueError(f"{name}: option_type must be call or put")
    return np.asarray((kind == "c").to_numpy(), dtype=bool)


def _ivs_from_coin(
    price_coin: FloatArray, fwd: FloatArray, strike: FloatArray, t: FloatArray, is_call: npt.NDArray[np.bool_]
) -> FloatArray:
    """Black-76 IV (r = 0) of coin premiums on the forward; NaN where there is no price or no implied vol."""
    usd = price_coin * fwd
    ok = np.isfinite(usd) & (usd > 0)
    out = np.full(usd.shape, np.nan)
    if ok.any():
        res = implied_vol_black76(usd[ok], fwd[ok], strike[ok], t[ok], 0.0, is_call[ok])
        out[ok] = res.vol
    return _clean_iv(out)


def _mark_fraction(v: FloatArray) -> FloatArray:
    """Mark IV as a fraction: percent columns (typical values above 5) are divided by 100."""
    fin = v[np.isfinite(v) & (v > 0)]
    if fin.size and float(np.median(fin)) > 5.0:
        v = v / 100.0
    return _clean_iv(v)


def _finish(chain: OptionChain, name: str) -> list[OptionChain]:
    cur = chain.meta.pop("currency_per_row", None)
    good = (chain.t > 0) & (chain.strike > 0) & (chain.forward > 0) & np.isfinite(chain.forward)
    if not good.any():
        raise ValueError(f"{name}: no row has a positive strike, forward and time to expiry")
    kept = None if cur is None else [c for c, g in zip(cur, good, strict=True) if g]
    return _split_currency(chain.select(good), kept)


# --------------------------------------------------------------------------------------- book summaries


def _book_summary(df: object, name: str, source: str) -> list[OptionChain]:
    import pandas as pd

    assert isinstance(df, pd.DataFrame)
    cols = set(df.columns)
    inst = [str(x) for x in df["instrument_name"]] if "instrument_name" in cols else [""] * len(df)
    parts = [s.split("-") for s in inst]
    if "strike" in cols:
        strike = _numeric(df, ["strike"], name)["strike"]
    else:
        strike = np.array([float(p[2]) if len(p) >= 4 and _isnum(p[2]) else np.nan for p in parts])
    if "option_type" in cols:
        is_call = _option_kind(df["option_type"], name)
    else:
        kinds = pd.Series([p[3] if len(p) >= 4 else "?" for p in parts])
        is_call = _option_kind(kinds.str.replace("C", "call").str.replace("P", "put"), name)
    fcol = next(c for c in ("futures_price", "underlying_price", "underlying") if c in cols)
    num = _numeric(df, ["bid_price", "ask_price", fcol], name)
    fwd = num[fcol]
    if "time_to_maturity" in cols:
        t = _numeric(df, ["time_to_maturity"], name)["time_to_maturity"]
    else:
        if "timestamp" not in cols:
            raise ValueError(f"{name}: expiry_datetime needs a timestamp column (or give time_to_maturity)")
        exp = pd.to_datetime(df["expiry_datetime"], utc=True, errors="coerce")
        now = pd.to_datetime(df["timestamp"], utc=True, errors="coerce")
        t = np.asarray((exp - now).dt.total_seconds().to_numpy(dtype=np.float64) / (365.0 * 86400.0), dtype=np.float64)
    if "expiry_datetime" in cols:
        labels = [str(x) for x in df["expiry_datetime"]]
    else:
        labels = [p[1] if len(p) >= 2 else f"{tt:.6f}" for p, tt in zip(parts, t, strict=True)]
    if "currency" in cols:
        cur = [str(x).upper() for x in df["currency"]]
    else:
        cur = _currency_of(inst)
    bid = num["bid_price"].copy()
    ask = num["ask_price"].copy()
    bid[~(bid > 0)] = np.nan
    ask[~(ask > 0)] = np.nan
    mcol = next((c for c in ("implied_volatility", "mark_iv") if c in cols), None)
    if mcol is not None:
        mark = _mark_fraction(_numeric(df, [mcol], name)[mcol])
    elif "mark_price" in cols:
        mark_coin = _numeric(df, ["mark_price"], name)["mark_price"]
        mark = _ivs_from_coin(mark_coin, fwd, strike, np.maximum(t, 1e-9), is_call)
    else:
        mark = np.full(len(df), np.nan)
    tt = np.where(t > 0, t, np.nan)
    chain = OptionChain(
        expiry_label=labels,
        t=t,
        strike=strike,
        is_call=is_call,
        forward=fwd,
        bid_iv=_ivs_from_coin(bid, fwd, strike, tt, is_call),
        ask_iv=_ivs_from_coin(ask, fwd, strike, tt, is_call),
        mark_iv=mark,
        underlying=cur[0] if cur else "",
        meta={"source": source, "currency_per_row": cur},
    )
    if "timestamp" in cols:
        ts = pd.to_datetime(df["timestamp"], utc=True, errors="coerce")
        if ts.notna().any():
            chain.meta["snapshot_ts_ms"] = float(ts.max().value / 1e6)
    return _finish(chain, name)


def _isnum(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------ IV quotes + Greeks


def _file_time_ms(name: str) -> float | None:
    m = re.search(r"(\d{8})T(\d{6})", name)
    if not m:
        return None
    import pandas as pd

    ts = pd.Timestamp(f"{m.group(1)}T{m.group(2)}", tz="UTC")
    return float(ts.value / 1e6)


def _iv_quotes_greeks(df: object, name: str, source: str) -> list[OptionChain]:
    import pandas as pd
    from scipy.special import ndtri

    assert isinstance(df, pd.DataFrame)
    cols = set(df.columns)
    kcol = "strike_price" if "strike_price" in cols else "strike"
    num = _numeric(df, [kcol, "bid_iv", "ask_iv", "delta", "theta", "vega"], name)
    strike = num[kcol]
    is_call = _option_kind(df["option_type"], name)
    bid_iv = num["bid_iv"].copy()
    bid_iv[np.isclose(bid_iv, NO_BID_PLACEHOLDER)] = np.nan
    bid_iv = _clean_iv(bid_iv / 100.0)
    ask_iv = _clean_iv(num["ask_iv"] / 100.0)
    exp = pd.to_datetime(df["expiration_date"], utc=True, errors="coerce")
    if exp.isna().any():
        raise ValueError(f"{name}: unreadable expiration_date {df['expiration_date'][exp.isna()].iloc[0]!r}")
    if (exp.dt.hour == 0).all():
        exp = exp + pd.Timedelta(hours=DERIBIT_EXPIRY_HOUR)
    exp_ms = (exp.astype("int64") // 1_000_000).to_numpy(dtype=np.float64)
    labels = [str(x) for x in df["expiration_date"]]
    sym_col = next((c for c in ("symbol", "instrument_name", "instrument") if c in cols), None)
    cur = _currency_of([str(x) for x in df[sym_col]]) if sym_col else ["?"] * len(df)
    # Black-76 (r = 0), vega per vol point, theta per day: theta / vega = -100 sigma / (730 t), so the mark IV is
    # B t with B = -7.3 theta / vega; near the money the mark sits inside bid/ask, so t ~ mid IV / B there.
    delta, theta, vega = num["delta"], num["theta"], num["vega"]
    with np.errstate(divide="ignore", invalid="ignore"):
        b_ratio = np.where((vega > 0) & (theta < 0), -7.3 * theta / vega, np.nan)
    two = np.isfinite(bid_iv) & np.isfinite(ask_iv) & (ask_iv >= bid_iv)
    call_delta = np.where(is_call, delta, delta + 1.0)
    near = two & np.isfinite(b_ratio) & (call_delta > 0.25) & (call_delta < 0.75)
    file_ms = _file_time_ms(name)
    now_ms: float | None = None
    if near.sum() >= 3:
        t_est = 0.5 * (bid_iv[near] + ask_iv[near]) / b_ratio[near]
        now_ms = float(np.median(exp_ms[near] - t_est * YEAR_MS))
    elif file_ms is not None:
        now_ms = file_ms
    if now_ms is None:
        raise ValueError(
            f"{name}: cannot tell the snapshot time (fewer than 3 two-sided quotes near the money with theta and "
            "vega, and no YYYYMMDDTHHMMSS timestamp in the file name)"
        )
    t = np.asarray((exp_ms - now_ms) / YEAR_MS, dtype=np.float64)
    # each expiry's own time from its quotes near the money, when it has them: the exchange's IVs were computed
    # with its own year fraction, and hours matter for the shortest expiries
    lab_arr = np.array(labels)
    if near.sum() >= 3:
        with np.errstate(divide="ignore", invalid="ignore"):
            t_quote = 0.5 * (bid_iv + ask_iv) / b_ratio
        for lab in sorted(set(labels)):
            sel = lab_arr == lab
            own = sel & near & np.isfinite(t_quote) & (t_quote > 0)
            if own.sum() >= 2:
                t[sel] = float(np.median(t_quote[own]))
    mark = _clean_iv(b_ratio * t)
    # forward per expiry from the delta of quotes near the money: ln F = ln K + d1 s - s^2 / 2, s = mark sqrt(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = mark * np.sqrt(np.maximum(t, 0.0))
        ln_f = np.log(strike) + ndtri(np.clip(call_delta, 1e-9, 1 - 1e-9)) * sd - 0.5 * sd * sd
    fwd = np.full(len(df), np.nan)
    for lab in sorted(set(labels)):
        sel = lab_arr == lab
        use = sel & np.isfinite(ln_f) & (call_delta > 0.2) & (call_delta < 0.8)
        if not use.any():
            use = sel & np.isfinite(ln_f) & (call_delta > 0.02) & (call_delta < 0.98)
        if use.any():
            fwd[sel] = float(np.exp(np.median(ln_f[use])))
    chain = OptionChain(
        expiry_label=labels,
        t=t,
        strike=strike,
        is_call=is_call,
        forward=fwd,
        bid_iv=bid_iv,
        ask_iv=ask_iv,
        mark_iv=mark,
        underlying=cur[0] if cur else "",
        meta={
            "source": source,
            "currency_per_row": cur,
            "snapshot_ts_ms": now_ms,
            "forward_from": "delta",
            "mark_from": "theta/vega",
        },
    )
    return _finish(chain, name)
