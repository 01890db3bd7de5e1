"""Hard risk ceilings (code) and the effective limits (settings may only tighten them).

`HARD_CEILINGS` is the loosest the desk can ever be. Nothing at run time (settings, the agent, an API call)
can raise a limit above it: `limits_from_settings` takes the minimum of the ceiling and each setting, and
`scale_limits` only scales down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

STABLE_QUOTES: frozenset[str] = frozenset({"USDT", "USDC", "FDUSD", "DAI", "USD"})


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Effective limits the gate enforces. Notional values are in the quote currency (USD stablecoins)."""

    allowed_symbols: frozenset[str]
    max_order_notional: float
    max_position_notional: float  # per symbol, consolidated across venues, open orders included
    max_gross_exposure: float
    max_net_exposure: float
    max_leverage: float  # gross exposure / equity; 1.0 means no leverage (spot)
    price_band_pct: float  # limit price must lie within this fraction of mid
    max_orders_per_minute: int
    max_daily_loss_pct: float  # breach -> desk REDUCING
    max_drawdown_pct: float  # breach -> desk HALTED
    market_slippage_pct: float = 0.01  # allowance when valuing a market order for the limits
    allowed_quotes: frozenset[str] = STABLE_QUOTES

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = sorted(value) if isinstance(value, frozenset) else value
        return out


# The loosest the desk may ever be. Changing these needs a code change and review.
HARD_CEILINGS = RiskLimits(
    allowed_symbols=frozenset(
        {
            "BTC/USDT",
            "ETH/USDT",
            "SOL/USDT",
            "BNB/USDT",
            "XRP/USDT",
            "ADA/USDT",
            "DOGE/USDT",
            "AVAX/USDT",
            "LINK/USDT",
            "DOT/USDT",
            "LTC/USDT",
            "MATIC/USDT",
            "BTC/USDC",
            "ETH/USDC",
        }
    ),
    max_order_notional=50_000.0,
    max_position_notional=200_000.0,
    max_gross_exposure=500_000.0,
    max_net_exposure=500_000.0,
    max_leverage=1.0,
    price_band_pct=0.05,
    max_orders_per_minute=60,
    max_daily_loss_pct=0.05,
    max_drawdown_pct=0.15,
    market_slippage_pct=0.01,
)

# Settings names (env RISK_...) mapped to limit fields. Read with getattr so any settings object works.
_SETTING_FIELDS: dict[str, str] = {
    "risk_max_order_notional": "max_order_notional",
    "risk_max_position_notional": "max_position_notional",
    "risk_max_gross_exposure": "max_gross_exposure",
    "risk_max_net_exposure": "max_net_exposure",
    "risk_max_leverage": "max_leverage",
    "risk_price_band_pct": "price_band_pct",
    "risk_max_orders_per_minute": "max_orders_per_minute",
    "risk_max_daily_loss_pct": "max_daily_loss_pct",
    "risk_max_drawdown_pct": "max_drawdown_pct",
}


class LimitError(ValueError):
    pass


def _tighten(ceiling: float, value: Any, name: str) -> float:
    if value is None:
        return ceiling
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise LimitError(f"{name} must be a number, got {value!r}") from exc
    if math.isnan(number) or number < 0:
        raise LimitError(f"{name} must be a non-negative number, got {value!r}")
    return min(ceiling, number)


def limits_from_settings(
    settings: Any = None,
    *,
    symbols: Iterable[str] | None = None,
    overrides: dict[str, Any] | None = None,
    ceilings: RiskLimits = HARD_CEILINGS,
) -> RiskLimits:
    """Effective limits: for each field the minimum of the code ceiling and the configured value.

    `settings` may be a Settings object (fields `risk_*` and `symbols` are read if present) or None.
    `overrides` maps limit field names (or `risk_*` names) to values; they too can only tighten.
    A symbol is allowed only if it is both in the ceiling allowlist and in the configured symbols.
    """
    values: dict[str, Any] = {}
    for setting_name, field_name in _SETTING_FIELDS.items():
        if settings is not None:
            configured = getattr(settings, setting_name, None)
            if configured is not None:
                values[field_name] = configured
    for key, value in (overrides or {}).items():
        values[_SETTING_FIELDS.get(key, key)] = value
    unknown = sorted(set(values) - set(_SETTING_FIELDS.values()))
    if unknown:
        raise LimitError(f"unknown risk limit(s): {', '.join(unknown)}")

    tightened: dict[str, Any] = {}
    for field_name, value in values.items():
        ceiling = getattr(ceilings, field_name)
        if field_name == "max_orders_per_minute":
            tightened[field_name] = int(_tighten(float(ceiling), value, field_name))
        else:
            tightened[field_name] = _tighten(float(ceiling), value, field_name)

    configured_symbols = symbols
    if configured_symbols is None and settings is not None:
        configured_symbols = getattr(settings, "symbols", None)
    allowed = ceilings.allowed_symbols
    if configured_symbols is not None:
        allowed = frozenset(s.upper() for s in configured_symbols) & ceilings.allowed_symbols
    allowed = frozenset(s for s in allowed if s.split("/")[-1] in ceilings.allowed_quotes)
    return replace(ceilings, allowed_symbols=allowed, **tightened)


def scale_limits(limits: RiskLimits, factor: float) -> RiskLimits:
    """Scale notional limits by `factor` in [0, 1] (volatility regime); a factor above 1 is treated as 1."""
    f = max(0.0, min(1.0, float(factor))) if not math.isnan(factor) else 0.0
    return replace(
        limits,
        max_order_notional=limits.max_order_notional * f,
        max_position_notional=limits.max_position_notional * f,
        max_gross_exposure=limits.max_gross_exposure * f,
        max_net_exposure=limits.max_net_exposure * f,
    )


def is_within(limits: RiskLimits, ceilings: RiskLimits = HARD_CEILINGS) -> bool:
    """True when every numeric limit is at or below its ceiling and every symbol is allowed by the ceiling."""
    for f in fields(limits):
        value = getattr(limits, f.name)
        ceiling = getattr(ceilings, f.name)
        if isinstance(value, frozenset):
            if not value <= ceiling:
                return False
        elif f.name == "market_slippage_pct":
            continue
        elif value > ceiling:
            return False
    return True
