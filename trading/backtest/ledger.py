"""From fills to results: positions, cash and equity per bar, closed trades and their fingerprint.

Both backtest paths (vectorised and event-driven) produce the same `Fills` record and share this code, so a
difference between them can only come from the fills themselves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt

from trading.strategies.base import FloatArray

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Fills:
    bar: IntArray  # bar index of the fill
    asset: IntArray  # symbol index
    qty: FloatArray  # signed base quantity (+ buy, - sell)
    price: FloatArray
    fee: FloatArray

    def __len__(self) -> int:
        return int(self.bar.shape[0])

    @classmethod
    def from_lists(
        cls, bar: list[int], asset: list[int], qty: list[float], price: list[float], fee: list[float]
    ) -> Fills:
        return cls(
            np.asarray(bar, dtype=np.int64), np.asarray(asset, dtype=np.int64), np.asarray(qty, dtype=np.float64),
            np.asarray(price, dtype=np.float64), np.asarray(fee, dtype=np.float64),
        )

    def to_rows(self, symbols: list[str], timestamps: IntArray | None = None) -> list[dict[str, Any]]:
        rows = []
        for k in range(len(self)):
            b = int(self.bar[k])
            rows.append({
                "bar": b,
                "timestamp_ms": int(timestamps[b]) if timestamps is not None else None,
                "symbol": symbols[int(self.asset[k])],
                "side": "buy" if self.qty[k] > 0 else "sell",
                "qty": float(abs(self.qty[k])),
                "price": float(self.price[k]),
                "fee": float(self.fee[k]),
            })
        return rows


@dataclass(frozen=True)
class Trade:
    """A closed round trip: the position leaves zero and returns to it (a flip closes one and opens another)."""

    symbol: str
    side: str  # long | short
    entry_bar: int
    exit_bar: int
    qty: float  # largest absolute size held
    entry_price: float  # VWAP of the fills that built the position
    exit_price: float  # VWAP of the fills that reduced it
    pnl: float  # net of fees
    fees: float
    ret: float  # pnl / notional put at risk (entry VWAP * qty)

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol, "side": self.side, "entry_bar": self.entry_bar, "exit_bar": self.exit_bar,
            "qty": self.qty, "entry_price": self.entry_price, "exit_price": self.exit_price, "pnl": self.pnl,
            "fees": self.fees, "return": self.ret,
        }


@nb.njit(cache=True)
def _mark(
    bar: IntArray, asset: IntArray, qty: FloatArray, price: FloatArray, fee: FloatArray, closes: FloatArray,
    initial_cash: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:  # pragma: no cover - compiled
    n, k = closes.shape
    equity = np.empty(n)
    cash_out = np.empty(n)
    pos_out = np.empty((n, k))
    cash = initial_cash
    pos = np.zeros(k)
    f = 0
    nf = bar.shape[0]
    for i in range(n):
        while f < nf and bar[f] == i:
            cash += -(qty[f] * price[f]) - fee[f]
            pos[asset[f]] += qty[f]
            f += 1
        e = cash
        for a in range(k):
            e += pos[a] * closes[i, a]
            pos_out[i, a] = pos[a]
        equity[i] = e
        cash_out[i] = cash
    return equity, cash_out, pos_out


def equity_curve(fills: Fills, closes: FloatArray, initial_cash: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(equity, cash, positions) marked at each bar's close. `closes` has shape (n, k); fills sorted by bar."""
    c = np.ascontiguousarray(closes, dtype=np.float64).reshape(closes.shape[0], -1)
    return _mark(fills.bar, fills.asset, fills.qty, fills.price, fills.fee, c, float(initial_cash))


def closed_trades(fills: Fills, symbols: list[str]) -> list[Trade]:
    trades: list[Trade] = []
    for a, sym in enumerate(symbols):
        sel = np.flatnonzero(fills.asset == a)
        pos = 0.0
        open_state: dict[str, float] = {}
        for k in sel.tolist():
            q, p, f, b = float(fills.qty[k]), float(fills.price[k]), float(fills.fee[k]), int(fills.bar[k])
            q_fill = q  # a fill that flips the position splits its fee pro rata over both trades
            while q != 0.0:
                if pos == 0.0:
                    open_state = {"bar": b, "sign": 1.0 if q > 0 else -1.0, "in_q": 0.0, "in_v": 0.0,
                                  "out_q": 0.0, "out_v": 0.0, "fees": 0.0, "cash": 0.0, "max": 0.0}
                sign = open_state["sign"]
                if q * sign > 0:  # adds to the position
                    part = q
                    frac = part / q_fill
                    open_state["in_q"] += abs(part)
                    open_state["in_v"] += abs(part) * p
                else:  # reduces; may cross zero
                    part = q if abs(q) <= abs(pos) * (1 + 1e-12) else -pos
                    frac = part / q_fill
                    open_state["out_q"] += abs(part)
                    open_state["out_v"] += abs(part) * p
                fee_part = f * frac
                open_state["fees"] += fee_part
                open_state["cash"] += -part * p - fee_part
                pos += part
                if abs(pos) <= 1e-12 * max(open_state["in_q"], 1e-300):
                    pos = 0.0
                open_state["max"] = max(open_state["max"], abs(pos))
                q -= part
                if abs(q) <= 1e-15 * max(abs(part), 1e-300):
                    q = 0.0
                if pos == 0.0:
                    in_px = open_state["in_v"] / open_state["in_q"]
                    basis = in_px * open_state["max"]
                    trades.append(Trade(
                        symbol=sym,
                        side="long" if sign > 0 else "short",
                        entry_bar=int(open_state["bar"]),
                        exit_bar=b,
                        qty=open_state["max"],
                        entry_price=in_px,
                        exit_price=open_state["out_v"] / open_state["out_q"] if open_state["out_q"] else in_px,
                        pnl=open_state["cash"],
                        fees=open_state["fees"],
                        ret=open_state["cash"] / basis if basis > 0 else 0.0,
                    ))
    trades.sort(key=lambda t: (t.exit_bar, t.entry_bar, t.symbol))
    return trades


def fingerprint(trades: list[Trade]) -> str:
    """SHA-256 over all closed trades, numbers to 10 significant digits (robust to last-ulp libm differences)."""
    h = hashlib.sha256()
    for t in trades:
        h.update(
            f"{t.symbol}|{t.side}|{t.entry_bar}|{t.exit_bar}|{t.qty:.10g}|{t.entry_price:.10g}|"
            f"{t.exit_price:.10g}|{t.pnl:.10g}|{t.fees:.10g}\n".encode()
        )
    return h.hexdigest()
