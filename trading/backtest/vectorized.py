"""The vectorised fast path: one compiled (numba) pass over precomputed target weights.

Same rules as the event-driven engine with the risk gate in research limits (cash and leverage caps, no shorting on
spot) and the same `FillModel` arithmetic, written expression for expression like `trading.risk.gate` so that the
two paths give identical fills (the parity test checks it). It does not model desk breakers, notional caps,
allowlists or rate limits; use the event path for those.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from trading.backtest.fills import FillModel
from trading.backtest.ledger import Fills
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
    spot: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:  # pragma: no cover - compiled
    n, k = targets.shape
    cap = n * k
    f_bar = np.empty(cap, dtype=np.int64)
    f_asset = np.empty(cap, dtype=np.int64)
    f_qty = np.empty(cap)
    f_price = np.empty(cap)
    f_fee = np.empty(cap)
    nf = 0
    cash = initial_cash
    pos = np.zeros(k)
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
                    d = want[a] * v / o - pos[a]
                    remaining[a] = 0.0
                    if d != 0.0 and o > 0:
                        buy = d > 0
                        p = o * (1.0 + slippage) if buy else o * (1.0 - slippage)
                        q = want[a] * v / p - pos[a]
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
                    elif spot:
                        available = pos[a]
                        if qty > available * (1 + 1e-9):
                            if available > 0:
                                qty = available
                            else:
                                ok = False
                    if not ok or not qty > 0:
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
    return f_bar, f_asset, f_qty, f_price, f_fee, nf


def simulate(
    open_: FloatArray,
    volume: FloatArray,
    targets: FloatArray,
    fill_model: FillModel,
    initial_cash: float = 10_000.0,
    max_leverage: float = 1.0,
    spot: bool = True,
) -> Fills:
    """Run the kernel; arrays are (n,) for one symbol or (n, k)."""
    o = np.ascontiguousarray(open_, dtype=np.float64).reshape(targets.shape[0], -1)
    v = np.ascontiguousarray(volume, dtype=np.float64).reshape(o.shape)
    t = np.ascontiguousarray(targets, dtype=np.float64).reshape(o.shape)
    b, a, q, p, f, nf = _simulate(
        o, v, t, float(initial_cash), fill_model.fee, fill_model.slippage, fill_model.participation,
        float(max_leverage), bool(spot),
    )
    return Fills(b[:nf].copy(), a[:nf].copy(), q[:nf].copy(), p[:nf].copy(), f[:nf].copy())
