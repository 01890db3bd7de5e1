"""Running a strategy on paper or live: the same `Strategy` code as the backtest, orders only through proposals.

Each closed candle goes to `Strategy.on_bar`; when the target weight changes, the runner turns the difference
between target and current position into an `OrderRequest` and calls `TradingService.propose` (the risk gate runs
there). The proposal waits for a person unless an operator has switched auto-approval on for this strategy
(`StrategyControls`); even then the approval goes through `TradingService.approve`, which checks the gate again,
so nothing ever passes the gate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.clock import utcnow
from trading.strategies.base import Strategy
from trading.types import Candle, OrderType, Side


class _Portfolio(Protocol):
    def consolidated(self) -> dict[str, float]: ...

    def equity(self, marks: Mapping[str, float]) -> float: ...


class _Result(Protocol):
    status: str
    order: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]: ...


class ProposalService(Protocol):
    """The part of `trading.oms.service.TradingService` the runner uses."""

    @property
    def portfolio(self) -> _Portfolio: ...

    def propose(self, request: Any, requester: str, *, source: str = "user") -> _Result: ...

    def approve(self, order_id: str, approver: str, *, execute: bool = True) -> Awaitable[_Result]: ...


class StrategyControls:
    """Operator switches per strategy (Mongo `strategy_controls`): auto-approval is off unless a person turns it on."""

    def __init__(self, db: Any) -> None:
        self.col = db["strategy_controls"]

    def set_auto_approve(self, strategy_id: str, enabled: bool, operator: str) -> None:
        self.col.update_one(
            {"_id": strategy_id},
            {"$set": {"auto_approve": bool(enabled), "updated_by": operator, "updated_at": utcnow()}},
            upsert=True,
        )

    def auto_approve(self, strategy_id: str) -> bool:
        doc = self.col.find_one({"_id": strategy_id})
        return bool(doc and doc.get("auto_approve") is True)


@dataclass
class RunnerConfig:
    min_notional: float = 10.0  # ignore target changes smaller than this (quote currency)
    order_type: OrderType = OrderType.MARKET


class StrategyRunner:
    def __init__(
        self,
        strategy: Strategy,
        symbols: Sequence[str],
        service: ProposalService,
        controls: StrategyControls,
        *,
        strategy_id: str | None = None,
        config: RunnerConfig | None = None,
    ) -> None:
        if len(symbols) != strategy.n_symbols:
            raise ValueError(f"{strategy.name} trades {strategy.n_symbols} symbol(s); got {len(symbols)}")
        self.strategy = strategy
        self.symbols = list(symbols)
        self.service = service
        self.controls = controls
        self.strategy_id = strategy_id or f"{strategy.name}:{','.join(symbols)}"
        self.config = config or RunnerConfig()
        self.requester = f"strategy:{self.strategy_id}"
        self._last: tuple[float, ...] | None = None

    def warm_up(self, history: Sequence[Sequence[Candle]]) -> tuple[float, ...]:
        """Feed past closed candles (one list per symbol) without trading; the current target is the start."""
        target: tuple[float, ...] = tuple(0.0 for _ in self.symbols)
        for row in zip(*history, strict=True):
            target = self.strategy.on_bar(list(row))
        self._last = target
        return target

    def forget_target(self) -> None:
        """Make the next bar trade toward its target even if it equals the last one (a fresh start from flat)."""
        self._last = None

    async def on_candles(self, candles: Sequence[Candle]) -> list[dict[str, Any]]:
        """One closed candle per symbol. Returns the proposals made (empty when the target did not change)."""
        from trading.oms.service import OrderRequest

        target = self.strategy.on_bar(list(candles))
        if self._last is not None and target == self._last:
            return []
        self._last = target
        marks = {s: c.close for s, c in zip(self.symbols, candles, strict=True)}
        equity = self.service.portfolio.equity(marks)
        held = self.service.portfolio.consolidated()
        out: list[dict[str, Any]] = []
        # sells first so that buys can use the freed cash
        legs = sorted(zip(self.symbols, target, candles, strict=True),
                      key=lambda x: x[1] * equity / x[2].close - held.get(x[0], 0.0))
        for sym, w, candle in legs:
            price = candle.close
            delta = w * equity / price - held.get(sym, 0.0)
            if abs(delta) * price < self.config.min_notional:
                continue
            request = OrderRequest(
                symbol=sym, side=Side.BUY if delta > 0 else Side.SELL, qty=abs(delta), type=self.config.order_type,
                allow_resize=True, reduce_only=delta < 0 and w <= 0,
                note=f"strategy {self.strategy_id}: target weight {w:+.4f}",
            )
            res = self.service.propose(request, self.requester, source="strategy")
            entry: dict[str, Any] = {"symbol": sym, "target": w, "proposal": res.to_dict()}
            if res.status == "pending_approval" and res.order is not None and self.controls.auto_approve(
                self.strategy_id
            ):
                order_id = str(res.order.get("id") or res.order.get("_id"))
                approved = await self.service.approve(order_id, f"auto:{self.strategy_id}")
                entry["auto_approval"] = approved.to_dict()
            out.append(entry)
        return out
