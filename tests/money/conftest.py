from __future__ import annotations

from typing import Any

import pytest
from pymongo.database import Database

from tests.money.helpers import FakeClock, StaticSource
from trading.execution.paper import PaperExchange
from trading.oms.service import ServiceConfig, TradingService
from trading.risk.limits import limits_from_settings

TEST_LIMITS = limits_from_settings(
    None,
    symbols=["BTC/USDT", "ETH/USDT"],
    overrides={
        "max_order_notional": 20_000,
        "max_position_notional": 40_000,
        "max_gross_exposure": 60_000,
        "max_net_exposure": 60_000,
        "max_orders_per_minute": 30,
        "max_daily_loss_pct": 0.03,
        "max_drawdown_pct": 0.08,
        "price_band_pct": 0.03,
    },
)


class Desk:
    """A service wired to one paper venue over a static source, with a fake clock."""

    def __init__(self, db: Database[dict[str, Any]], **config: Any) -> None:
        self.db = db
        self.clock = FakeClock()
        self.source = StaticSource("alpha")
        self.venue = PaperExchange(self.source, balances={"USDT": 100_000.0}, slippage_bps=0.0, db=db, clock=self.clock)
        self.config = ServiceConfig(**config)
        self.svc = self.new_service()

    def new_service(self, venue: Any = None) -> TradingService:
        async def no_sleep(_s: float) -> None:
            return None

        return TradingService(
            self.db,
            {"alpha": venue or self.venue},
            TEST_LIMITS,
            config=self.config,
            initial_balances={"alpha": {"USDT": 100_000.0}},
            clock=self.clock,
            sleep=no_sleep,
        )


@pytest.fixture()
def desk(mongo_db: Database[dict[str, Any]]) -> Desk:
    return Desk(mongo_db)
