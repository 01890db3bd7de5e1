"""The gate never raises on finite input: extreme prices and sizes are refused with a reason.

Repros from issue 16 (limit price 1e308 raised OverflowError; 0.001 and 1e-300 on a buy raised ZeroDivisionError),
then a property test over extreme finite values (0, subnormals, tiny, huge, 1e308) for every number the gate reads.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading.risk.gate import Decision, DeskState, MarketView, OrderIntent, PortfolioView, RiskGate
from trading.risk.limits import limits_from_settings
from trading.types import Market, OrderType, Side

LIMITS = limits_from_settings(None, symbols=["BTC/USDT"])
BTC = Market("sim", "BTC/USDT", "BTC", "USDT", 0.01, 0.00001, 0.00001, 5.0, 9000.0, 0.001, 0.001, True, True)
MARKET = MarketView("BTC/USDT", 59_990.0, 60_010.0, 60_000.0, BTC)
SUBNORMAL = sys.float_info.min * sys.float_info.epsilon  # 5e-324


def _book(**kw: object) -> PortfolioView:
    base: dict[str, object] = dict(
        equity=100_000.0, cash_free=100_000.0, positions={"BTC/USDT": 0.5}, gross_notional=30_000.0,
        net_notional=30_000.0, peak_equity=100_000.0, day_start_equity=100_000.0,
    )  # fmt: skip
    base.update(kw)
    return PortfolioView(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("price", [1e308, 1e300, 0.001, 1e-300, SUBNORMAL, sys.float_info.max])
def test_extreme_limit_prices_are_refused_with_a_reason(side: Side, price: float) -> None:
    intent = OrderIntent("BTC/USDT", side, 0.01, OrderType.LIMIT, price)
    d = RiskGate.check(intent, _book(), MARKET, LIMITS)
    assert not d.approved and d.reasons
    assert any("limit price" in r for r in d.reasons), d.reasons


@pytest.mark.parametrize("qty", [1e308, sys.float_info.max, 1e-300, SUBNORMAL])
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_extreme_quantities_are_refused_with_a_reason(side: Side, qty: float) -> None:
    d = RiskGate.check(OrderIntent("BTC/USDT", side, qty), _book(), MARKET, LIMITS)
    assert not d.approved and d.reasons


def test_a_normal_order_still_passes() -> None:
    d = RiskGate.check(OrderIntent("BTC/USDT", Side.BUY, 0.01, OrderType.LIMIT, 59_950.0), _book(), MARKET, LIMITS)
    assert d.approved, d.reasons


EXTREMES = (0.0, SUBNORMAL, 1e-300, 1e-12, 1e-3, 0.5, 1.0, 3.0, 60_000.0, 1e9, 1e15, 1e300, 1e308, sys.float_info.max)
finite = st.one_of(st.sampled_from(EXTREMES), st.floats(allow_nan=False, allow_infinity=False))
positive = st.one_of(st.sampled_from(EXTREMES[1:]), st.floats(min_value=SUBNORMAL, allow_infinity=False))
maybe = st.one_of(st.none(), finite)


@st.composite
def cases(draw: st.DrawFn) -> tuple[OrderIntent, PortfolioView, MarketView, object]:
    mkt = draw(st.one_of(st.none(), st.builds(
        Market, st.just("sim"), st.just("BTC/USDT"), st.just("BTC"), st.just("USDT"),
        maybe, maybe, maybe, maybe, maybe, finite, finite, st.booleans(), st.booleans(),
    )))  # fmt: skip
    mv = MarketView("BTC/USDT", draw(maybe), draw(maybe), draw(maybe), mkt)
    kind = draw(st.sampled_from([OrderType.MARKET, OrderType.LIMIT]))
    intent = OrderIntent(
        "BTC/USDT", draw(st.sampled_from([Side.BUY, Side.SELL])), draw(finite), kind,
        draw(maybe) if kind is OrderType.LIMIT else None, draw(st.booleans()), draw(st.booleans()),
    )  # fmt: skip
    pv = PortfolioView(
        equity=draw(finite), cash_free=draw(finite), positions={"BTC/USDT": draw(finite)},
        gross_notional=draw(finite), net_notional=draw(finite), peak_equity=draw(finite),
        day_start_equity=draw(finite), pending_buy={"BTC/USDT": draw(finite)},
        pending_sell={"BTC/USDT": draw(finite)}, pending_buy_notional=draw(finite),
        orders_last_minute=draw(st.integers(0, 10)), desk_state=draw(st.sampled_from(list(DeskState))),
    )  # fmt: skip
    lim = replace(
        LIMITS,
        max_order_notional=draw(finite), max_position_notional=draw(finite), max_gross_exposure=draw(finite),
        max_net_exposure=draw(finite), max_leverage=draw(finite), price_band_pct=draw(finite),
        max_daily_loss_pct=draw(finite), max_drawdown_pct=draw(finite), market_slippage_pct=draw(finite),
    )  # fmt: skip
    return intent, pv, mv, lim


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_gate_never_raises_and_never_passes_a_broken_order(case: tuple[OrderIntent, PortfolioView, MarketView,
                                                                        object]) -> None:
    intent, pv, mv, lim = case
    d = RiskGate.check(intent, pv, mv, lim)  # type: ignore[arg-type]
    assert isinstance(d, Decision)
    d.to_dict()
    d.headroom_text()
    if not d.approved:
        assert d.reasons, "a refusal always says why"
        return
    # what passes is an order that can be sent: finite positive size at a finite positive price
    assert math.isfinite(d.qty) and d.qty > 0, d
    assert math.isfinite(d.notional) and d.notional > 0, d
    assert d.price is None or (math.isfinite(d.price) and d.price > 0), d
    if intent.side is Side.BUY:
        assert d.notional <= lim.max_order_notional * (1 + 1e-9) + 1e-300, d  # type: ignore[attr-defined]
