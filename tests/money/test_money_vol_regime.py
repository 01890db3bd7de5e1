"""The running desk scales the notional limits of buys down when a symbol's volatility regime rises (never up)."""

from __future__ import annotations

import pytest

from tests.money.conftest import TEST_LIMITS, Desk
from tests.money.helpers import candles_from_returns
from trading.oms.service import OrderRequest
from trading.risk.sizing import realised_vol, vol_regime
from trading.types import Side


def _alternating(n: int, size: float) -> list[float]:
    return [size if i % 2 else -size for i in range(n)]


CALM = candles_from_returns(50_000.0, _alternating(168, 0.002))
WILD = candles_from_returns(50_000.0, _alternating(144, 0.002) + _alternating(24, 0.008))


def btc(qty: float, side: Side = Side.BUY, **kw: object) -> OrderRequest:
    return OrderRequest("BTC/USDT", side, qty, **kw)  # type: ignore[arg-type]


def test_vol_regime_factor_from_closes() -> None:
    calm = vol_regime([c.close for c in CALM], 24)
    assert calm.factor > 0.97  # the same vol throughout: only sampling noise
    wild = vol_regime([c.close for c in WILD], 24)
    closes = [c.close for c in WILD]
    assert wild.current_vol == pytest.approx(realised_vol(closes[-25:], 8760.0))
    assert wild.baseline_vol == pytest.approx(realised_vol(closes, 8760.0))
    assert wild.factor == pytest.approx(wild.baseline_vol / wild.current_vol)
    assert 0.3 < wild.factor < 0.6
    # a regime calmer than its baseline never loosens a limit
    calming = candles_from_returns(1.0, _alternating(144, 0.01) + _alternating(24, 0.001))
    assert vol_regime([c.close for c in calming]).factor == 1.0
    with pytest.raises(ValueError):
        vol_regime([1.0] * 10, 24)


async def test_high_vol_regime_rejects_a_buy_that_passes_when_calm(desk: Desk) -> None:
    svc = desk.svc
    desk.source.candles["BTC/USDT"] = CALM
    calm = await svc.propose_async(btc(0.3), "alice")  # ~15.2k of the 20k max order notional
    assert calm.status == "pending_approval", calm.reasons
    status = svc.risk_status()["vol_regime"]["BTC/USDT"]
    assert status["factor"] > 0.97 and status["source"] == "alpha"
    assert status["scaled_limits"]["max_order_notional"] == pytest.approx(20_000 * status["factor"])

    desk.source.candles["BTC/USDT"] = WILD
    desk.clock.advance(svc.config.vol_ttl_s + 1)  # the next refresh re-reads the candles
    wild = await svc.propose_async(btc(0.3), "alice")
    assert wild.status == "rejected"
    text = " ".join(wild.reasons)
    assert "max_order_notional" in text and "volatility regime: notional limits scaled to" in text
    status = svc.risk_status()["vol_regime"]["BTC/USDT"]
    assert 0.3 < status["factor"] < 0.6 and status["current_vol"] > status["baseline_vol"]
    assert status["recent_bars"] == 24 and status["baseline_bars"] == 168 and status["timeframe"] == "1h"
    assert status["scaled_limits"]["max_order_notional"] == pytest.approx(20_000 * status["factor"])

    # the proposal made in calm conditions is checked again at approval, under the new regime
    late = await svc.approve(calm.order["_id"], "bob")  # type: ignore[index]
    assert late.status == "rejected" and any("volatility regime" in r for r in late.reasons)
    assert desk.db["paper_orders"].count_documents({}) == 0

    # with resizing allowed the order shrinks to the scaled limit instead
    resized = await svc.propose_async(btc(0.3, allow_resize=True), "alice")
    assert resized.status == "pending_approval"
    ref = desk.source.books["BTC/USDT"].asks[0].price * (1 + TEST_LIMITS.market_slippage_pct)
    qty = resized.order["proposed_qty"]  # type: ignore[index]
    assert qty < 0.3 and qty * ref <= 20_000 * status["factor"] * (1 + 1e-9)
    assert any("volatility regime" in r for r in resized.reasons)
    decision = resized.order["decision"]  # type: ignore[index]
    assert any(c["name"] == "vol_regime" for c in decision["checks"])


async def test_regime_leaves_sells_at_the_configured_limits(desk: Desk) -> None:
    svc = desk.svc
    res = await svc.approve((await svc.propose_async(btc(0.35), "a")).order["_id"], "b")  # type: ignore[index]
    assert res.status == "executed"
    desk.source.candles["BTC/USDT"] = WILD
    desk.clock.advance(svc.config.vol_ttl_s + 1)
    await svc.refresh_market(["BTC/USDT"])
    buy_limits, regime = svc.limits_for(btc(0.1))
    assert regime is not None and buy_limits.max_order_notional < TEST_LIMITS.max_order_notional
    assert svc.limits_for(btc(0.1, Side.SELL)) == (TEST_LIMITS, None)
    sell = await svc.propose_async(btc(0.35, Side.SELL), "a")  # 17.5k: above the scaled buy limit
    assert sell.status == "pending_approval", sell.reasons


async def test_candles_are_read_at_most_once_per_ttl(desk: Desk) -> None:
    svc = desk.svc
    desk.source.candles["BTC/USDT"] = WILD
    for _ in range(5):
        await svc.refresh_market(["BTC/USDT"])
    assert desk.source.ohlcv_calls == 1
    # a failed re-read keeps the last measurement rather than loosening to 1
    desk.source.candles.pop("BTC/USDT")
    desk.clock.advance(svc.config.vol_ttl_s + 1)
    await svc.refresh_market(["BTC/USDT"])
    regime = svc.risk_status()["vol_regime"]["BTC/USDT"]
    assert regime["factor"] < 1 and "no candles" in regime["error"]
