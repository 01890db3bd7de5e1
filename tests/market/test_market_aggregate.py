"""Consolidated quote, merged depth and venue ranking: fees change the answer; live venues via two fakes."""

from __future__ import annotations

import itertools

import pytest

from tests.fakes.binance_server import FakeBinance
from trading.exchanges import MarketSource, open_exchange
from trading.market_data.aggregate import best_split, compare_venues, consolidate, merged_depth, rank_venues
from trading.types import BookLevel, OrderBook, Side

# the simulated market is a function of time: read it at a fixed date
pytestmark = pytest.mark.usefixtures("one_date_clock")


def book(exchange: str, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> OrderBook:
    return OrderBook(exchange, "BTC/USDT", 0, tuple(BookLevel(p, a) for p, a in bids),
                     tuple(BookLevel(p, a) for p, a in asks))


CHEAP_RAW = book("kraken", [(99.9, 1.0)], [(100.0, 1.0), (100.5, 5.0)])
CHEAP_FEES = book("binance", [(99.8, 2.0)], [(100.05, 0.5), (100.2, 5.0)])
FEES = {"kraken": 0.0026, "binance": 0.001}


def test_consolidated_best_raw_vs_net_of_fees() -> None:
    q = consolidate([CHEAP_RAW, CHEAP_FEES], FEES)
    assert q.best_ask is not None and q.best_ask.exchange == "kraken"  # lowest raw ask
    assert q.best_effective_ask is not None and q.best_effective_ask.exchange == "binance"  # cheapest all-in
    assert q.best_effective_ask.effective_ask == pytest.approx(100.05 * 1.001)
    assert q.best_bid is not None and q.best_bid.exchange == "kraken"
    assert q.spread == pytest.approx(0.1)
    assert not q.crossed


def test_crossed_venues_detected_after_fees() -> None:
    rich = book("okx", [(101.0, 1.0)], [(101.2, 1.0)])
    assert consolidate([CHEAP_FEES, rich], {"okx": 0.001, "binance": 0.001}).crossed
    assert not consolidate([CHEAP_FEES, rich], {"okx": 0.006, "binance": 0.006}).crossed


def test_merged_depth_orders_by_effective_price_and_tags_venue() -> None:
    bids, asks = merged_depth([CHEAP_RAW, CHEAP_FEES], FEES)
    # effective: binance 100.05*1.001=100.15, kraken 100*1.0026=100.26, binance 100.2*1.001=100.30, kraken 100.76
    assert [lv.exchange for lv in asks] == ["binance", "kraken", "binance", "kraken"]
    assert [lv.price for lv in asks] == [100.05, 100.0, 100.2, 100.5]
    assert all(a.effective_price <= b.effective_price for a, b in itertools.pairwise(asks))
    assert bids[0].exchange == "binance"  # 99.8*(1-.001)=99.70 > 99.9*(1-.0026)=99.64


def test_rank_venues_walks_depth_and_flags_shortfall() -> None:
    ranked = rank_venues([CHEAP_RAW, CHEAP_FEES], FEES, Side.BUY, 2.0)
    assert [c.exchange for c in ranked] == ["binance", "kraken"]
    best = ranked[0]
    assert best.avg_price == pytest.approx((0.5 * 100.05 + 1.5 * 100.2) / 2)
    assert best.total == pytest.approx(best.avg_price * 2 * 1.001)
    assert best.slippage_bps is not None and best.slippage_bps > 0
    short = rank_venues([CHEAP_RAW, book("tiny", [], [(90.0, 0.1)])], {"tiny": 0.0, "kraken": 0.0026},
                        Side.BUY, 1.0)
    assert short[-1].exchange == "tiny" and not short[-1].complete


def test_best_split_takes_cheapest_liquidity_first() -> None:
    split = best_split([CHEAP_RAW, CHEAP_FEES], FEES, Side.BUY, 3.0)
    assert split == pytest.approx({"binance": 2.0, "kraken": 1.0})
    split = best_split([CHEAP_RAW, CHEAP_FEES], FEES, Side.BUY, 6.0)
    assert split == pytest.approx({"binance": 5.0, "kraken": 1.0})


def test_compare_venues_live_fakes() -> None:
    with FakeBinance() as a, FakeBinance() as b:
        a.set_price("BTC/USDT", 65_000.0, push=False)
        b.set_price("BTC/USDT", 64_900.0, push=False)
        sources = {
            "binance": MarketSource(open_exchange("binance", api_url=a.url, timeout_ms=2000), requested="binance"),
            "binanceus": MarketSource(open_exchange("binanceus", api_url=b.url, timeout_ms=2000),
                                      requested="binanceus"),
            "kraken": MarketSource(open_exchange("kraken", simulated=True), requested="kraken"),
        }
        try:
            cmp = compare_venues("BTC/USDT", side=Side.BUY, amount=0.5, sources=sources)
        finally:
            for s in sources.values():
                s.close()
    assert cmp.errors == {}
    assert cmp.quote is not None
    assert cmp.quote.best_bid is not None and cmp.quote.best_bid.exchange == "binance"
    live = [c for c in cmp.ranking if c.exchange != "kraken"]
    assert [c.exchange for c in live] == ["binanceus", "binance"]
    assert cmp.simulated == {"binance": False, "binanceus": False, "kraken": True}
    assert sum(cmp.split.values()) == pytest.approx(0.5)
