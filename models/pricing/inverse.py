"""Inverse (coin-margined) options, Deribit style: the premium is paid in the coin, not in USD.

A USD-priced Black-76 option V on forward/underlying S is worth V / S coins. The coin-denominated delta (Deribit's
reported delta) is the USD delta minus the premium in coin: d(V/S)/dS * S = delta - V / S.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.pricing.black import FloatArray, Greeks


def _f(a: Any) -> FloatArray:
    return np.asarray(a, dtype=np.float64)


def usd_to_coin(price_usd: Any, underlying: Any) -> FloatArray:
    return _f(price_usd) / _f(underlying)


def coin_to_usd(price_coin: Any, underlying: Any) -> FloatArray:
    return _f(price_coin) * _f(underlying)


def coin_delta(delta_usd: Any, price_usd: Any, underlying: Any) -> FloatArray:
    """Delta of an inverse option in coin: USD delta minus the premium expressed in coin."""
    return _f(delta_usd) - _f(price_usd) / _f(underlying)


DAYS_PER_YEAR = 365.0  # calendar days: crypto options decay every day of the week


def coin_greeks(g: Greeks, underlying: Any) -> dict[str, FloatArray]:
    """Greeks of the coin-settled contract in the units a desk quotes (the same as the USD figures beside them in
    tools.options): premium and delta in coin; gamma, vega, theta and rho in coin per unit of their driver, with
    vega per vol point (0.01), theta per calendar day and rho per 1 % rate. Each name carries its unit.

    `g` holds raw Greeks (theta per year, vega per unit vol, rho per unit rate; see models.pricing.black)."""
    u = _f(underlying)
    out = {
        "price_coin": g.price / u,
        "delta_coin": g.delta - g.price / u,
        "gamma_coin": g.gamma / u,
        "vega_coin_per_vol_pt": g.vega / u / 100.0,
        "theta_coin_per_day": g.theta / u / DAYS_PER_YEAR,
        "rho_coin_per_pct": g.rho / u / 100.0,
    }
    return out
