"""The vectorised fast path: one compiled (numba) pass over precomputed target weights.

Same rules as the event-driven engine with the risk gate in research limits (cash and leverage caps, no shorting on
spot) and the same `FillModel` arithmetic, written expression for expression like `trading.risk.gate` so that the
two paths give identical fills (the parity test checks it). It does not model desk breakers, notional caps,
allowlists or rate limits; use the event path for those.

The venue is spot, like the gate's: a sell never exceeds what is held. An order the spot rules refuse outright (a
sell with nothing held, a buy with no cash or leverage headroom) is recorded, as the gate's rejections are in the
event path, so a short target is never dropped silently. `base` is inventory held from the start (the relative-value
book): the target quantity is `base + weight * equity / price`, so weight 0 returns exactly to the inventory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt

from trading.backtest.fills import FillModel
from trading.backtest.ledger import Fills, IntArray
from trading.strategies.base import FloatArray


@nb.njit(cache=True)
def _simulate(
    open_: FloatArray,
    volume: FloatArray,
    targets: FloatArray,
    initial_cash: float,
    fee: float,
    slippage: float,
    participation: float,
    max_leverage: float,
    base: FloatArray,
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int
]:  # pragma: no cover - compiled
    n, k = targets.shape
    cap = n * k
    r_bar = np.empty(cap, dtype=np.int64)
    r_asset = np.empty(cap, dtype=np.int64)
    r_qty = np.empty(cap)
    r_buy = np.empty(cap, dtype=np.bool_)
    nr = 0
    f_bar = np.empty(cap, dtype=np.int64)
    f_asset = np.empty(cap, dtype=np.int64)
    f_qty = np.empty(cap)
    f_price = np.empty(cap)
    f_fee = np.empty(cap)
    nf = 0
    cash = initial_cash
    pos = base.copy()
    prev = np.zeros(k)
    new_order = np.zeros(k, dtype=np.bool_)  # target changed at the previous close: resolve at this open
    want = np.zeros(k)  # the target weight behind the order
    remaining = np.zeros(k)  # working quantity (absolute)
    is_buy = np.zeros(k, dtype=np.bool_)
    active = False
    for j in range(n):
        if active:
            active = False
            v = cash
            for a in range(k):
                v += pos[a] * open_[j, a]
            for a in range(k):
                if new_order[a]:
                    new_order[a] = False
                    o = open_[j, a]
                    d = base[a] + want[a] * v / o - pos[a]
                    remaining[a] = 0.0
                    if d != 0.0 and o > 0:
                        buy = d > 0
                        p = o * (1.0 + slippage) if buy else o * (1.0 - slippage)
                        q = base[a] + want[a] * v / p - pos[a]
                        if (q > 0) == buy and q != 0.0:
                            remaining[a] = abs(q)
                            is_buy[a] = buy
            # sells first (they free cash), then buys
            for phase in range(2):
                for a in range(k):
                    if remaining[a] <= 0.0 or is_buy[a] != (phase == 1):
                        continue
                    o = open_[j, a]
                    buy = is_buy[a]
                    p = o * (1.0 + slippage) if buy else o * (1.0 - slippage)
                    qty = remaining[a]
                    ok = True
                    if buy:
                        equity = cash
                        gross = 0.0
                        for b in range(k):
                            equity += pos[b] * open_[j, b]
                            gross += abs(pos[b] * open_[j, b])
                        lev_cap = (max_leverage * max(equity, 0.0) - gross) / p
                        cash_cap = cash / (p * (1.0 + fee))
                        max_qty = min(lev_cap, cash_cap)
                        if qty > max_qty * (1 + 1e-12):
                            if max_qty > 0:
                                qty = max_qty
                            else:
                                ok = False
                    else:
                        available = pos[a]
                        if qty > available * (1 + 1e-9):
                            if available > 0:
                                qty = available
                            else:
                                ok = False
                    if not ok or not qty > 0:
                        r_bar[nr] = j
                        r_asset[nr] = a
                        r_qty[nr] = remaining[a]
                        r_buy[nr] = buy
                        nr += 1
                        remaining[a] = 0.0
                        continue
                    fill = min(qty, participation * volume[j, a])
                    if fill > 0:
                        amt = fill * p * fee
                        if buy:
                            cash = cash - fill * p - amt
                            pos[a] += fill
                            f_qty[nf] = fill
                        else:
                            cash = cash + fill * p - amt
                            pos[a] -= fill
                            f_qty[nf] = -fill
                        f_bar[nf] = j
                        f_asset[nf] = a
                        f_price[nf] = p
                        f_fee[nf] = amt
                        nf += 1
                    rest = qty - fill
                    remaining[a] = rest if rest > qty * 1e-12 else 0.0
                    if remaining[a] > 0.0:
                        active = True
        for a in range(k):
            t = targets[j, a]
            if t != prev[a]:
                prev[a] = t
                want[a] = t
                new_order[a] = True
                remaining[a] = 0.0  # a new target replaces whatever was still working
                active = True
    return f_bar, f_asset, f_qty, f_price, f_fee, nf, r_bar, r_asset, r_qty, r_buy, nr


@dataclass(frozen=True)
class Refusals:
    """Orders the spot rules refused outright (the vectorised counterpart of the gate's rejections)."""

    bar: IntArray
    asset: IntArray
    qty: FloatArray
    buy: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.bar.shape[0])

    def to_rows(self, symbols: list[str]) -> list[dict[str, Any]]:
        rows = []
        for i in range(len(self)):
            buy = bool(self.buy[i])
            sym = symbols[int(self.asset[i])]
            reason = ("cash/leverage: no headroom left for a buy" if buy else
                      f"spot sell exceeds the available {sym} (no shorting on spot)")
            rows.append({"bar": int(self.bar[i]), "symbol": sym, "side": "buy" if buy else "sell",
                         "qty": float(self.qty[i]), "reasons": [reason]})
        return rows


def simulate_with_refusals(
    open_: FloatArray,
    volume: FloatArray,
    targets: FloatArray,
    fill_model: FillModel,
    initial_cash: float = 10_000.0,
    max_leverage: float = 1.0,
    base: FloatArray | None = None,
) -> tuple[Fills, Refusals]:
    """Run the kernel; arrays are (n,) for one symbol or (n, k). `initial_cash` is the cash beside `base`."""
    o = np.ascontiguousarray(open_, dtype=np.float64).reshape(targets.shape[0], -1)
    v = np.ascontiguousarray(volume, dtype=np.float64).reshape(o.shape)
    t = np.ascontiguousarray(targets, dtype=np.float64).reshape(o.shape)
    inv = np.zeros(o.shape[1]) if base is None else np.ascontiguousarray(base, dtype=np.float64).reshape(-1)
    if inv.shape[0] != o.shape[1]:
        raise ValueError(f"base has {inv.shape[0]} entries for {o.shape[1]} symbol(s)")
    b, a, q, p, f, nf, rb, ra, rq, rbuy, nr = _simulate(
        o, v, t, float(initial_cash), fill_model.fee, fill_model.slippage, fill_model.participation,
        float(max_leverage), inv,
    )
    fills = Fills(b[:nf].copy(), a[:nf].copy(), q[:nf].copy(), p[:nf].copy(), f[:nf].copy())
    return fills, Refusals(rb[:nr].copy(), ra[:nr].copy(), rq[:nr].copy(), rbuy[:nr].copy())


def simulate(
    open_: FloatArray,
    volume: FloatArray,
    targets: FloatArray,
    fill_model: FillModel,
    initial_cash: float = 10_000.0,
    max_leverage: float = 1.0,
    base: FloatArray | None = None,
) -> Fills:
    """The fills only (parameter sweeps, benchmarks)."""
    return simulate_with_refusals(open_, volume, targets, fill_model, initial_cash, max_leverage, base)[0]
