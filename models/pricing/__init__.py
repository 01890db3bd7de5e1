"""Option pricing: Black-Scholes-Merton and Black-76 prices, Greeks, implied volatility, parity, inverse options."""

from models.pricing.black import (
    GREEK_NAMES,
    Greeks,
    black76_greeks,
    black76_price,
    bsm_greeks,
    bsm_price,
    forward,
    option_sign,
)
from models.pricing.inverse import coin_delta, coin_greeks, coin_to_usd, usd_to_coin
from models.pricing.iv import REASONS, IVCode, IVResult, implied_vol, implied_vol_black76, implied_vol_bsm
from models.pricing.parity import call_from_put, implied_forward, parity_gap, put_from_call, spot_forward

__all__ = [
    "GREEK_NAMES",
    "REASONS",
    "Greeks",
    "IVCode",
    "IVResult",
    "black76_greeks",
    "black76_price",
    "bsm_greeks",
    "bsm_price",
    "call_from_put",
    "coin_delta",
    "coin_greeks",
    "coin_to_usd",
    "forward",
    "implied_forward",
    "implied_vol",
    "implied_vol_black76",
    "implied_vol_bsm",
    "option_sign",
    "parity_gap",
    "put_from_call",
    "spot_forward",
    "usd_to_coin",
]
