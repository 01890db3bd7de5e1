"""Bar fill model for backtests: one bar of latency, slippage, fees, and partial fills capped by bar volume.

An order decided at the close of bar i executes at the open of bar i+1 (`latency_bars` = 1). A buy pays
open * (1 + slippage), a sell receives open * (1 - slippage); the fee is a fraction of the traded notional. At most
`participation` of the bar's volume fills per bar; the remainder works on the following bars (re-checked by the
risk gate before each child, like a live child order) until it is done or the strategy's target changes.

The vectorised kernel (`vectorized.py`) implements the same arithmetic, expression for expression, so that both
paths produce identical fills when the gate does not bind.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FillModel:
    fee: float = 0.001  # taker fee, fraction of notional
    slippage: float = 0.0005  # fraction of the open price, against us
    participation: float = 0.1  # max fraction of a bar's volume we may take
    latency_bars: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.fee < 0.1:
            raise ValueError("fee must be in [0, 0.1)")
        if not 0.0 <= self.slippage < 0.1:
            raise ValueError("slippage must be in [0, 0.1)")
        if not 0.0 < self.participation <= 1.0:
            raise ValueError("participation must be in (0, 1]")
        if self.latency_bars != 1:
            raise ValueError("only one bar of latency is modelled (decide at close i, fill at open i+1)")

    def price(self, open_price: float, buy: bool) -> float:
        return open_price * (1.0 + self.slippage) if buy else open_price * (1.0 - self.slippage)

    def capacity(self, volume: float) -> float:
        return self.participation * volume
