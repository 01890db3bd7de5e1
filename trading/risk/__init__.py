"""Hard-coded risk layer: limits (settings only tighten), the pure gate, sizing, metrics, stops."""

from trading.risk.gate import (
    CheckResult,
    Decision,
    DeskState,
    MarketView,
    OrderIntent,
    PortfolioView,
    RiskGate,
)
from trading.risk.limits import HARD_CEILINGS, RiskLimits, limits_from_settings, scale_limits

__all__ = [
    "HARD_CEILINGS",
    "CheckResult",
    "Decision",
    "DeskState",
    "MarketView",
    "OrderIntent",
    "PortfolioView",
    "RiskGate",
    "RiskLimits",
    "limits_from_settings",
    "scale_limits",
]
