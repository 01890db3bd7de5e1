"""Option chains for surface calibration: the flat Deribit CSV format, or a live chain through a ccxt exchange.

All implied vols are fractions (0.8 = 80 %); a missing bid or ask IV is NaN. Times are in years of 365 days.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.pricing.iv import implied_vol_black76

FloatArray = npt.NDArray[np.float64]
YEAR_MS = 365.0 * 86_400_000.0
# Deribit reports 500 % as the ask IV of an order it cannot invert; treat it as no quote.
IV_CAP = 4.99

REQUIRED_COLUMNS = (
    "snapshot_ts_ms",
    "option_type",
    "strike",
    "expiry_ts_ms",
    "underlying_price",
    "bid_iv",
    "ask_iv",
    "mark_iv",
)


@dataclass
class OptionChain:
    """Quotes of one underlying at one time. Arrays are aligned, one entry per option."""

    expiry_label: list[str]
    t: FloatArray  # years to expiry
    strike: FloatArray
    is_call: npt.NDArray[np.bool_]
    forward: FloatArray
    bid_iv: FloatArray
    ask_iv: FloatArray
    mark_iv: FloatArray
    underlying: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.strike.shape[0]
        for name in ("t", "is_call", "forward", "bid_iv", "ask_iv", "mark_iv"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"chain column {name} has shape {getattr(self, name).shape}, expected ({n},)")
        if len(self.expiry_label) != n:
            raise ValueError("expiry_label length differs from the other columns")

    def __len__(self) -> int:
        return int(self.strike.shape[0])

    @property
    def log_moneyness(self) -> FloatArray:
        return np.asarray(np.log(self.strike / self.forward), dtype=np.float64)

    @property
    def has_both(self) -> npt.NDArray[np.bool_]:
        """Quotes with a usable bid and ask IV."""
        return np.asarray(
            np.isfinite(self.bid_iv) & np.isfinite(self.ask_iv) & (self.bid_iv > 0) & (self.ask_iv >= self.bid_iv),
            dtype=bool,
        )

    def expiries(self) -> list[tuple[str, float]]:
        """Distinct expiries (label, years) sorted by time."""
        seen: dict[str, list[float]] = {}
        for lab, tt in zip(self.expiry_label, self.t, strict=True):
            seen.setdefault(lab, []).append(float(tt))
        return sorted(((lab, float(np.median(v))) for lab, v in seen.items()), key=lambda x: x[1])

    def select(self, mask: npt.NDArray[np.bool_]) -> OptionChain:
        idx = np.flatnonzero(mask)
        return OptionChain(
            [self.expiry_label[i] for i in idx],
            self.t[idx],
            self.strike[idx],
            self.is_call[idx],
            self.forward[idx],
            self.bid_iv[idx],
            self.ask_iv[idx],
            self.mark_iv[idx],
            self.underlying,
            dict(self.meta),
        )


def _clean_iv(v: FloatArray) -> FloatArray:
    out = np.asarray(v, dtype=np.float64).copy()
    out[~np.isfinite(out) | (out <= 0) | (out >= IV_CAP)] = np.nan
    return out


def load_deribit_csv(path: str | Path) -> OptionChain:
    """Read the flat Deribit chain CSV (columns as in ../shared/data/options; IVs in percent)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"chain file not found: {p}")
    return parse_deribit_csv(p.read_text(encoding="utf-8", errors="replace"), source=str(p), name=p.name)


def parse_deribit_csv(text: str, *, source: str = "csv text", name: str = "chain") -> OptionChain:
    """Parse the flat Deribit chain format from CSV text."""
    import io

    import pandas as pd

    p = Path(name)
    try:
        df = pd.read_csv(io.StringIO(text))
    except Exception as exc:  # pandas raises several parser error types
        raise ValueError(f"cannot parse {p} as CSV: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{p.name} lacks column(s) {', '.join(missing)} (expected the flat Deribit chain format)")
    if df.empty:
        raise ValueError(f"{p.name} has no rows")
    try:
        numeric = df[[c for c in REQUIRED_COLUMNS if c != "option_type"]].astype(float)
    except ValueError as exc:
        raise ValueError(f"{p.name}: non-numeric value in a numeric column ({exc})") from exc
    df[numeric.columns] = numeric
    now = df["snapshot_ts_ms"].to_numpy(dtype=np.float64)
    t = (df["expiry_ts_ms"].to_numpy(dtype=np.float64) - now) / YEAR_MS
    if "expiry_utc" in df.columns:
        labels = [str(x) for x in df["expiry_utc"]]
    else:
        labels = [str(int(x)) for x in df["expiry_ts_ms"]]
    kind = df["option_type"].astype(str).str.lower().str[0]
    if not kind.isin(["c", "p"]).all():
        raise ValueError(f"{p.name}: option_type must be call or put")
    chain = OptionChain(
        expiry_label=labels,
        t=t,
        strike=df["strike"].to_numpy(dtype=np.float64),
        is_call=(kind == "c").to_numpy(),
        forward=df["underlying_price"].to_numpy(dtype=np.float64),
        bid_iv=_clean_iv(df["bid_iv"].to_numpy(dtype=np.float64) / 100.0),
        ask_iv=_clean_iv(df["ask_iv"].to_numpy(dtype=np.float64) / 100.0),
        mark_iv=_clean_iv(df["mark_iv"].to_numpy(dtype=np.float64) / 100.0),
        underlying=str(df["instrument_name"].iloc[0]).split("-")[0] if "instrument_name" in df.columns else "",
        meta={"source": source, "snapshot_ts_ms": float(np.max(now))},
    )
    good = (chain.t > 0) & (chain.strike > 0) & (chain.forward > 0)
    if not good.any():
        raise ValueError(f"{p.name}: no row has a positive strike, forward and time to expiry")
    return chain.select(good)


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def chain_from_ccxt(exchange: Any, currency: str = "BTC", *, now_ms: float | None = None) -> OptionChain:
    """Build a chain from a ccxt exchange with `fetch_option_chain` (Deribit). The exchange object is passed in, so
    callers decide about network access; Deribit's raw fields (bid_iv, ask_iv, mark_iv, underlying_price) are used
    when present, else IVs are implied from bid/ask/mark premiums (coin premiums times the underlying)."""
    if not getattr(exchange, "has", {}).get("fetchOptionChain"):
        raise ValueError(f"exchange {getattr(exchange, 'id', '?')} does not support fetchOptionChain")
    markets: Mapping[str, Any] = exchange.load_markets()
    chain: Mapping[str, Any] = exchange.fetch_option_chain(currency)
    now = float(now_ms if now_ms is not None else exchange.milliseconds())
    rows: list[tuple[str, float, float, bool, float, float, float, float]] = []
    for symbol, opt in chain.items():
        mk = markets.get(symbol) or {}
        info = opt.get("info") or {}
        strike = _num(mk.get("strike"))
        expiry = _num(mk.get("expiry"))
        otype = str(mk.get("optionType") or "").lower()
        fwd = _num(info.get("underlying_price", opt.get("underlyingPrice")))
        if not (strike > 0 and expiry > now and fwd > 0 and otype in ("call", "put")):
            continue
        t = (expiry - now) / YEAR_MS
        ivs = [_num(info.get(key)) / 100.0 for key in ("bid_iv", "ask_iv", "mark_iv")]
        if not all(math.isfinite(v) for v in ivs):
            prices = [_num(opt.get(key)) for key in ("bidPrice", "askPrice", "markPrice")]
            inverse = bool(mk.get("inverse", True))
            usd = np.array([pr * fwd if inverse else pr for pr in prices])
            res = implied_vol_black76(usd, fwd, strike, t, 0.0, otype == "call")
            ivs = [v if math.isfinite(v) else iv for v, iv in zip(ivs, res.vol.tolist(), strict=True)]
        label = str(mk.get("expiryDatetime") or int(expiry))
        rows.append((label, t, strike, otype == "call", fwd, ivs[0], ivs[1], ivs[2]))
    if not rows:
        raise ValueError(f"no usable {currency} option quotes in the chain")
    cols = list(zip(*rows, strict=True))
    return OptionChain(
        expiry_label=[str(x) for x in cols[0]],
        t=np.array(cols[1], dtype=np.float64),
        strike=np.array(cols[2], dtype=np.float64),
        is_call=np.array(cols[3], dtype=bool),
        forward=np.array(cols[4], dtype=np.float64),
        bid_iv=_clean_iv(np.array(cols[5], dtype=np.float64)),
        ask_iv=_clean_iv(np.array(cols[6], dtype=np.float64)),
        mark_iv=_clean_iv(np.array(cols[7], dtype=np.float64)),
        underlying=currency,
        meta={"source": f"ccxt:{getattr(exchange, 'id', '?')}", "snapshot_ts_ms": now},
    )
