"""Fault: the venue's book stops updating (stream silent, REST unanswered). Must hold: a proposal is refused once the
last book is older than the service's freshness limit (`ServiceConfig.market_max_age_ms`), never priced on it; a
book just inside the limit still prices one."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.database import Database

from core.events import Event
from tests.money.conftest import TEST_LIMITS
from tests.money.helpers import FakeClock, StaticSource
from trading.execution.paper import PaperExchange
from trading.market_data.events import book_event
from trading.market_data.live import BookFeed
from trading.oms.service import OrderRequest, ServiceConfig, TradingService
from trading.types import Side

pytestmark = pytest.mark.fault


class SilentSource(StaticSource):
    """Answers REST book requests until told to go quiet (a venue whose API stops answering)."""

    def __init__(self) -> None:
        super().__init__("alpha")
        self.silent = False

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> Any:
        if self.silent:
            raise TimeoutError("venue not answering")
        return await super().fetch_order_book(symbol, limit)


def _service(db: Database[dict[str, Any]], source: StaticSource, clock: FakeClock) -> TradingService:
    venue = PaperExchange(source, balances={"USDT": 100_000.0}, slippage_bps=0.0, db=db, clock=clock)
    return TradingService(db, {"alpha": venue}, TEST_LIMITS, config=ServiceConfig(), clock=clock,
                          initial_balances={"alpha": {"USDT": 100_000.0}})


def _buy() -> OrderRequest:
    return OrderRequest("BTC/USDT", Side.BUY, 0.1)


async def test_streamed_book_past_its_freshness_limit_refuses_the_proposal(mongo_db: Database[dict[str, Any]]) -> None:
    clock = FakeClock()
    source = StaticSource("alpha")
    svc = _service(mongo_db, source, clock)
    limit_s = svc.config.market_max_age_ms / 1000

    class NoBus:  # the feed is driven directly: handle() is what the bus consumer calls per event
        async def ack(self, *_a: Any) -> None:
            return None

    feed = BookFeed(NoBus(), svc)  # type: ignore[arg-type]
    await feed.handle(Event("market.book", book_event(source.books["BTC/USDT"]).payload, id="b1"))
    assert feed.stats.books == 1

    clock.advance(limit_s - 1)  # just inside the limit: the streamed book prices the proposal
    fresh = svc.propose(_buy(), "alice")
    assert fresh.status == "pending_approval", fresh.reasons

    clock.advance(2)  # the stream went silent: the last book is now older than the limit
    stale = svc.propose(_buy(), "alice")
    assert stale.status != "pending_approval"
    assert any("no fresh order book" in r for r in stale.reasons), stale.reasons
    assert svc.store.orders.count_documents({"state": "pending_approval"}) == 1


async def test_polled_book_aged_while_the_venue_stopped_answering(mongo_db: Database[dict[str, Any]]) -> None:
    clock = FakeClock()
    source = SilentSource()
    svc = _service(mongo_db, source, clock)
    first = await svc.propose_async(_buy(), "alice")  # refreshes the book over REST
    assert first.status == "pending_approval", first.reasons
    source.silent = True
    clock.advance(svc.config.market_max_age_ms / 1000 + 1)
    refused = await svc.propose_async(_buy(), "alice")  # the refresh fails; the cached book is too old
    assert refused.status != "pending_approval"
    assert any("no fresh order book" in r for r in refused.reasons), refused.reasons
    approved = await svc.approve(first.order["_id"], "bob")  # type: ignore[index]
    assert approved.status != "executed", "the gate at approval refuses on the aged book too"
    assert svc.store.fills.count_documents({}) == 0
