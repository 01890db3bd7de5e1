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


def coin_greeks(g: Greeks, underlying: Any) -> dict[str, FloatArray]:
    """Greeks of the coin-settled contract: premium in coin, coin delta; other sensitivities converted to coin."""
    u = _f(underlying)
    out = {
        "price_coin": g.price / u,
        "delta_coin": g.delta - g.price / u,
        "gamma_coin": g.gamma / u,
        "vega_coin": g.vega / u,
        "theta_coin": g.theta / u,
        "rho_coin": g.rho / u,
    }
    return out
