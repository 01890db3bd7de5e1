"""Money-path tools for the agent: propose an order (never execute), read the portfolio and the risk status.

A proposal goes through the hard-coded risk gate and waits for a person to approve it; nothing here can approve,
send or cancel an order.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from core.strict import StrictModel
from tools.context import on_behalf_of
from tools.registry import ToolError, tool
from trading.execution.algos import Algo
from trading.oms.service import MarketDataUnavailable, OrderRequest, TradingError
from trading.risk import sizing
from trading.types import OrderType, Side


def norm_symbol(value: str) -> str:
    value = value.strip().upper().replace("-", "/").replace("_", "/")
    if "/" not in value:
        for quote in ("USDT", "USDC", "FDUSD"):
            if value.endswith(quote) and len(value) > len(quote):
                return f"{value[: -len(quote)]}/{quote}"
    return value


class ProposeOrderArgs(StrictModel):
    symbol: str = Field(min_length=3, max_length=30, description="spot symbol, e.g. BTC/USDT")
    side: Side = Field(description="buy or sell")
    qty: float = Field(gt=0, le=1e9, description="quantity in the base asset (e.g. BTC)")
    type: OrderType = Field(default=OrderType.MARKET, description="market or limit")
    limit_price: float | None = Field(default=None, gt=0, le=1e9, description="required for limit orders")
    venue: str | None = Field(default=None, max_length=30, description="exchange id; default: the smart router")
    algo: Algo = Field(default=Algo.NONE, description="none, twap, vwap or iceberg")
    slices: int = Field(default=1, ge=1, le=100, description="child orders for twap/vwap")
    duration_s: float = Field(default=0.0, ge=0, le=86_400, description="schedule length for twap/vwap")
    display_qty: float | None = Field(default=None, gt=0, le=1e9, description="iceberg clip size")
    reduce_only: bool = False
    allow_resize: bool = Field(default=False, description="let the risk gate shrink the order to fit limits")
    stop_loss: float | None = Field(
        default=None, gt=0, le=1e9, description="buys only: sell if the bid falls to this price (below the entry)"
    )
    take_profit: float | None = Field(
        default=None, gt=0, le=1e9, description="buys only: sell if the bid rises to this price (above the entry)"
    )
    trailing_stop_pct: float | None = Field(default=None, gt=0, lt=1)
    note: str = Field(default="", max_length=500, description="why: shown to the approver")

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        return norm_symbol(v)

    @model_validator(mode="after")
    def _limit(self) -> ProposeOrderArgs:
        if self.type is OrderType.LIMIT and self.limit_price is None:
            raise ValueError("a limit order needs limit_price")
        if self.type is OrderType.MARKET and self.limit_price is not None:
            raise ValueError("limit_price is only for limit orders")
        if self.algo is Algo.ICEBERG and self.display_qty is None:
            raise ValueError("an iceberg order needs display_qty")
        if self.display_qty is not None and self.display_qty > self.qty:
            raise ValueError("display_qty cannot exceed qty")
        exits = [n for n in ("stop_loss", "take_profit", "trailing_stop_pct") if getattr(self, n) is not None]
        if exits and self.side is not Side.BUY:
            raise ValueError(f"{', '.join(exits)} protect a buy (a spot long); a sell has no position for them to exit")
        sl, tp, lp = self.stop_loss, self.take_profit, self.limit_price
        if sl is not None and tp is not None and not sl < tp:
            raise ValueError(f"stop_loss {sl:g} must be below take_profit {tp:g}")
        if lp is not None and sl is not None and not sl < lp:
            raise ValueError(f"stop_loss {sl:g} must be below the limit price {lp:g}")
        if lp is not None and tp is not None and not tp > lp:
            raise ValueError(f"take_profit {tp:g} must be above the limit price {lp:g}")
        return self

    def to_request(self) -> OrderRequest:
        return OrderRequest(
            symbol=self.symbol,
            side=self.side,
            qty=self.qty,
            type=self.type,
            limit_price=self.limit_price,
            venue=self.venue,
            algo=self.algo,
            slices=self.slices,
            duration_s=self.duration_s,
            display_qty=self.display_qty,
            reduce_only=self.reduce_only,
            allow_resize=self.allow_resize,
            stop_loss=self.stop_loss,
            take_profit=self.take_profit,
            trailing_stop_pct=self.trailing_stop_pct,
            note=self.note,
        )


def compact_order(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    keep = (
        "id",
        "state",
        "request",
        "requester",
        "expires_ms",
        "headroom",
        "reasons",
        "filled_qty",
        "avg_price",
        "fee_quote",
        "approved_by",
        "proposed_qty",
    )
    out = {k: doc.get(k) for k in keep if doc.get(k) is not None}
    out.setdefault("id", doc.get("_id"))
    return out


@tool(
    name="propose_order",
    description="Propose a spot order for human approval. The hard-coded risk gate checks it now and again at "
    "approval; the result says pending_approval (with its id and expiry) or rejected (with reasons). This tool "
    "never executes anything.",
    args=ProposeOrderArgs,
    proposes_orders=True,
)
def propose_order(args: ProposeOrderArgs) -> dict[str, Any]:
    from trading.oms.factory import get_trading_service, run

    svc = get_trading_service()
    try:
        # the requester is the person who asked the agent (four-eyes then keeps them from approving it themselves)
        result = run(svc.propose_async(args.to_request(), on_behalf_of() or "agent", source="llm"))
    except (MarketDataUnavailable, TradingError) as exc:
        raise ToolError(str(exc)) from exc
    return {"status": result.status, "order": compact_order(result.order), "reasons": result.reasons}


class PortfolioArgs(StrictModel):
    by_venue: bool = Field(default=False, description="positions per venue instead of consolidated")


@tool(
    name="get_portfolio", description="Positions, cash and equity (paper or live, as configured).", args=PortfolioArgs
)
def get_portfolio(args: PortfolioArgs) -> dict[str, Any]:
    from trading.oms.factory import get_trading_service

    return get_trading_service().positions(by_venue=args.by_venue)


class RiskArgs(StrictModel):
    include_limits: bool = Field(default=False, description="also list every limit")


@tool(
    name="get_risk_status",
    description="Desk state (active/reducing/halted), exposure, PnL, drawdown, VaR/ES, "
    "Sharpe/Sortino, pending approvals and unresolved orders.",
    args=RiskArgs,
)
def get_risk_status(args: RiskArgs) -> dict[str, Any]:
    from trading.oms.factory import get_trading_service

    status = get_trading_service().risk_status()
    if not args.include_limits:
        status.pop("limits", None)
    return status


SizingMethod = Literal["fixed_fractional", "atr", "vol_target", "kelly"]
_SERIES = Field(default=None, min_length=3, max_length=5000)


class SizePositionArgs(StrictModel):
    """Inputs of one sizing method; which fields are needed depends on `method`."""

    method: SizingMethod = Field(
        description="fixed_fractional (risk_fraction + stop), atr (risk_fraction + atr or highs/lows/closes), "
        "vol_target (target_vol + realised_vol or closes), kelly (win_prob + win_loss_ratio)"
    )
    equity: float = Field(gt=0, le=1e12, description="account equity in the quote currency")
    entry: float = Field(gt=0, le=1e9, description="entry price")
    risk_fraction: float | None = Field(default=None, gt=0, le=0.2, description="equity lost at the stop / ATR move")
    stop: float | None = Field(default=None, gt=0, le=1e9, description="stop price (fixed_fractional)")
    atr: float | None = Field(default=None, gt=0, le=1e9, description="average true range in price units")
    atr_multiple: float = Field(default=2.0, gt=0, le=20)
    atr_period: int = Field(default=14, ge=2, le=200)
    highs: list[float] | None = _SERIES
    lows: list[float] | None = _SERIES
    closes: list[float] | None = Field(default=None, min_length=3, max_length=5000, description="oldest first")
    periods_per_year: float = Field(default=365.0, gt=0, le=525_600, description="bars per year of `closes`")
    target_vol: float | None = Field(default=None, gt=0, le=3, description="annualised vol target (0.2 = 20%)")
    realised_vol: float | None = Field(default=None, gt=0, le=20, description="annualised realised vol")
    max_leverage: float = Field(default=1.0, gt=0, le=1.0, description="spot: at most 1")
    win_prob: float | None = Field(default=None, ge=0, le=1)
    win_loss_ratio: float | None = Field(default=None, gt=0, le=100)
    kelly_fraction: float = Field(default=0.5, gt=0, le=1)
    kelly_cap: float = Field(default=0.25, gt=0, le=1)

    @model_validator(mode="after")
    def _needs(self) -> SizePositionArgs:
        missing: list[str] = []
        if self.method in ("fixed_fractional", "atr") and self.risk_fraction is None:
            missing.append("risk_fraction")
        if self.method == "fixed_fractional":
            if self.stop is None:
                missing.append("stop")
            elif self.stop == self.entry:
                raise ValueError("stop must differ from entry")
        if self.method == "atr" and self.atr is None and not (self.highs and self.lows and self.closes):
            missing.append("atr (or highs, lows and closes)")
        if self.method == "vol_target":
            if self.target_vol is None:
                missing.append("target_vol")
            if self.realised_vol is None and not self.closes:
                missing.append("realised_vol (or closes)")
        if self.method == "kelly":
            missing += [n for n in ("win_prob", "win_loss_ratio") if getattr(self, n) is None]
        if missing:
            raise ValueError(f"{self.method} needs {', '.join(missing)}")
        for name in ("highs", "lows", "closes"):
            values = getattr(self, name)
            if values is not None and not all(math.isfinite(v) and v > 0 for v in values):
                raise ValueError(f"{name} must be positive finite prices")
        return self


def _need(value: float | None, name: str) -> float:
    if value is None:
        raise ValueError(f"{name} is required for this method")
    return value


def compute_size(args: SizePositionArgs) -> dict[str, Any]:
    """The size and how it was derived (shared by the tool and POST /v1/risk/size). It proposes nothing."""
    inputs: dict[str, Any] = {}
    try:
        if args.method == "fixed_fractional":
            result = sizing.size_fixed_fractional(
                args.equity, _need(args.risk_fraction, "risk_fraction"), args.entry, _need(args.stop, "stop")
            )
        elif args.method == "atr":
            atr_value = args.atr
            if atr_value is None:
                atr_value = sizing.atr(args.highs or [], args.lows or [], args.closes or [], args.atr_period)
                inputs["atr"] = atr_value
            result = sizing.size_atr(
                args.equity, _need(args.risk_fraction, "risk_fraction"), args.entry, atr_value, args.atr_multiple
            )
        elif args.method == "vol_target":
            realised = args.realised_vol
            if realised is None:
                realised = sizing.realised_vol(args.closes or [], args.periods_per_year)
                inputs["realised_vol"] = realised
            if not realised > 0:
                raise ValueError("realised volatility is zero: the closes do not move")
            result = sizing.size_vol_target(
                args.equity, _need(args.target_vol, "target_vol"), realised, args.entry, args.max_leverage
            )
        else:
            result = sizing.size_kelly(
                args.equity,
                _need(args.win_prob, "win_prob"),
                _need(args.win_loss_ratio, "win_loss_ratio"),
                args.entry,
                args.kelly_fraction,
                args.kelly_cap,
            )
    except ValueError as exc:  # e.g. too few bars for the ATR period, or a flat series
        raise ToolError(str(exc)) from exc
    return {
        **result.to_dict(),
        "inputs": inputs,
        "note": "a size only: nothing was proposed; propose_order puts it through the risk gate and an approval",
    }


@tool(
    name="size_position",
    description="Position size by fixed fractional risk, ATR, volatility targeting or capped Kelly, with the formula "
    "and numbers it used. Sizing only: it proposes nothing (use propose_order for that).",
    args=SizePositionArgs,
)
def size_position(args: SizePositionArgs) -> dict[str, Any]:
    return compute_size(args)
