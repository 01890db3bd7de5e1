"""Inverse (coin-settled) Greeks are quoted in the same units as the USD figures beside them: per day, per vol point."""

from __future__ import annotations

import pytest

from models.pricing import black76_greeks, black76_price, coin_greeks


def test_coin_theta_is_per_day_like_the_usd_theta() -> None:
    from tools.options import PriceOptionArgs, price_payload

    out = price_payload(PriceOptionArgs(option_type="call", underlying=60_000, strike=65_000, expiry_days=30,
                                        vol=0.6, inverse=True))
    coin, forward = out["coin"], 60_000.0
    # one figure, two currencies: the coin value times the forward is the USD value, unit for unit
    assert coin["theta_coin_per_day"] * forward == pytest.approx(out["theta_per_day"], rel=1e-8)
    assert coin["vega_coin_per_vol_pt"] * forward == pytest.approx(out["vega_per_vol_pt"], rel=1e-8)
    assert coin["rho_coin_per_pct"] * forward == pytest.approx(out["rho_per_pct"], rel=1e-8)
    assert "theta_coin" not in coin and "per calendar day" in out["units"]


def test_coin_theta_per_day_is_one_day_of_decay() -> None:
    """Finite difference: the coin premium a day closer to expiry, minus today's, is theta_coin_per_day."""
    f, k, vol, days = 60_000.0, 65_000.0, 0.6, 30.0
    g = black76_greeks(f, k, days / 365.0, vol, 0.0, True)
    per_day = float(coin_greeks(g, f)["theta_coin_per_day"])
    one_day = (float(black76_price(f, k, (days - 1) / 365.0, vol)) - float(black76_price(f, k, days / 365.0, vol))) / f
    assert per_day == pytest.approx(one_day, rel=0.02)
    assert per_day < 0  # a long call loses value with time
