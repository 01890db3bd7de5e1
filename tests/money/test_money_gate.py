"""Risk limits and the pure gate."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from tests.money.helpers import make_market
from trading.risk.gate import DeskState, MarketView, OrderIntent, PortfolioView, RiskGate
from trading.risk.limits import HARD_CEILINGS, LimitError, is_within, limits_from_settings, scale_limits
from trading.types import OrderType, Side

LIMITS = limits_from_settings(
    None,
    symbols=["BTC/USDT", "ETH/USDT"],
    overrides={
        "max_order_notional": 10_000,
        "max_position_notional": 20_000,
        "max_gross_exposure": 30_000,
        "max_net_exposure": 30_000,
        "max_orders_per_minute": 5,
        "max_daily_loss_pct": 0.02,
        "max_drawdown_pct": 0.1,
        "price_band_pct": 0.02,
    },
)
MKT = MarketView("BTC/USDT", 49_990.0, 50_010.0, 50_000.0, make_market())


def view(**kw: object) -> PortfolioView:
    base = dict(
        equity=100_000.0,
        cash_free=100_000.0,
        positions={},
        gross_notional=0.0,
        net_notional=0.0,
        peak_equity=100_000.0,
        day_start_equity=100_000.0,
    )
    base.update(kw)
    return PortfolioView(**base)  # type: ignore[arg-type]


def buy(qty: float, **kw: object) -> OrderIntent:
    return OrderIntent("BTC/USDT", Side.BUY, qty, **kw)  # type: ignore[arg-type]


def test_settings_only_tighten_and_looser_values_are_ignored() -> None:
    loose = SimpleNamespace(
        risk_max_order_notional=10 * HARD_CEILINGS.max_order_notional,
        risk_max_drawdown_pct=0.9,
        risk_max_leverage=5.0,
        risk_max_orders_per_minute=10_000,
        symbols=["BTC/USDT", "PEPE/USDT"],
    )
    lim = limits_from_settings(loose)
    assert lim.max_order_notional == HARD_CEILINGS.max_order_notional
    assert lim.max_drawdown_pct == HARD_CEILINGS.max_drawdown_pct
    assert lim.max_leverage == 1.0
    assert lim.max_orders_per_minute == HARD_CEILINGS.max_orders_per_minute
    assert lim.allowed_symbols == frozenset({"BTC/USDT"})  # PEPE is not in the code allowlist
    assert is_within(lim)
    tight = limits_from_settings(SimpleNamespace(risk_max_order_notional=1_000.0, symbols=["ETH/USDT"]))
    assert tight.max_order_notional == 1_000.0
    with pytest.raises(LimitError):
        limits_from_settings(SimpleNamespace(risk_max_order_notional=-1.0))
    with pytest.raises(LimitError):
        limits_from_settings(None, overrides={"max_bananas": 1})
    assert scale_limits(lim, 3.0).max_order_notional == lim.max_order_notional
    assert scale_limits(lim, 0.5).max_position_notional == lim.max_position_notional / 2
    with pytest.raises(AttributeError):
        HARD_CEILINGS.max_order_notional = 1e12  # type: ignore[misc]


def test_passes_with_margins_and_rounds_to_exchange_step() -> None:
    d = RiskGate.check(buy(0.12345678), view(), MKT, LIMITS)
    assert d.approved, d.reasons
    assert d.qty == pytest.approx(0.1234)
    margins = {c.name: c.margin for c in d.checks}
    assert 0 < margins["max_order_notional"] < 1  # type: ignore[operator]
    assert "headroom" in d.headroom_text()


@pytest.mark.parametrize(
    ("intent", "pv", "needle"),
    [
        (OrderIntent("DOGE/USDT", Side.BUY, 1.0), view(), "allowlist"),
        (buy(0.3), view(), "max_order_notional"),
        (buy(0.1), view(positions={"BTC/USDT": 0.35}, gross_notional=17_500, net_notional=17_500), "max_position"),
        (buy(0.1), view(cash_free=100.0), "cash"),
        (buy(0.1, type=OrderType.LIMIT, limit_price=40_000.0), view(), "from mid"),
        (buy(0.00001), view(), "below the exchange minimum"),
        (buy(0.1), view(orders_last_minute=5), "rate limit"),
        (OrderIntent("BTC/USDT", Side.SELL, 0.1), view(), "no shorting"),
        (buy(0.1), view(desk_state=DeskState.HALTED), "HALTED"),
        (buy(0.1), view(desk_state=DeskState.REDUCING), "REDUCING"),
        (buy(0.1), view(halted_symbols=frozenset({"BTC/USDT"})), "halted"),
        (
            buy(0.1),
            view(equity=4_000.0, cash_free=100_000.0, peak_equity=4_000.0, day_start_equity=4_000.0),
            "leverage",
        ),
    ],
)
def test_each_check_rejects(intent: OrderIntent, pv: PortfolioView, needle: str) -> None:
    d = RiskGate.check(intent, pv, MKT, LIMITS)
    assert not d.approved
    assert any(needle in r for r in d.reasons), d.reasons


def test_pending_orders_count_toward_position_and_exposure() -> None:
    # 0.15 held + 0.2 pending: a 0.1 buy would reach 0.45 BTC = 22.5k > 20k position limit
    pv = view(
        positions={"BTC/USDT": 0.15},
        gross_notional=7_500,
        net_notional=7_500,
        pending_buy={"BTC/USDT": 0.2},
        pending_buy_notional=10_000,
    )
    assert not RiskGate.check(buy(0.1), pv, MKT, LIMITS).approved
    assert RiskGate.check(buy(0.1), replace(pv, pending_buy={}, pending_buy_notional=0.0), MKT, LIMITS).approved


def test_resize_shrinks_to_the_binding_limit() -> None:
    d = RiskGate.check(buy(1.0, allow_resize=True), view(), MKT, LIMITS)
    assert d.approved
    assert d.qty * 50_010 * 1.01 <= LIMITS.max_order_notional + 1e-6
    assert d.qty > 0.19


def test_daily_loss_moves_desk_to_reducing_but_lets_reducing_orders_through() -> None:
    pv = view(equity=97_000.0, positions={"BTC/USDT": 0.2}, gross_notional=10_000, net_notional=10_000)
    d = RiskGate.check(buy(0.01), pv, MKT, LIMITS)
    assert not d.approved and d.desk_transition is DeskState.REDUCING
    sell = RiskGate.check(OrderIntent("BTC/USDT", Side.SELL, 0.1), pv, MKT, LIMITS)
    assert sell.approved and sell.reduces_exposure and sell.desk_transition is DeskState.REDUCING


def test_drawdown_halts_everything() -> None:
    pv = view(equity=89_000.0, peak_equity=100_000.0, day_start_equity=89_500.0, positions={"BTC/USDT": 0.2})
    d = RiskGate.check(OrderIntent("BTC/USDT", Side.SELL, 0.1), pv, MKT, LIMITS)
    assert not d.approved and d.desk_transition is DeskState.HALTED


def test_reducing_desk_allows_only_reductions() -> None:
    pv = view(positions={"BTC/USDT": 0.2}, desk_state=DeskState.REDUCING)
    assert RiskGate.check(OrderIntent("BTC/USDT", Side.SELL, 0.2), pv, MKT, LIMITS).approved
    # more than held (with other sells pending) is not a reduction
    pv2 = replace(pv, pending_sell={"BTC/USDT": 0.15})
    assert not RiskGate.check(OrderIntent("BTC/USDT", Side.SELL, 0.1), pv2, MKT, LIMITS).approved


def test_limit_price_rounds_conservatively_to_tick() -> None:
    d = RiskGate.check(buy(0.01, type=OrderType.LIMIT, limit_price=50_000.019), view(), MKT, LIMITS)
    assert d.approved and d.price == pytest.approx(50_000.01)
    s = RiskGate.check(
        OrderIntent("BTC/USDT", Side.SELL, 0.01, OrderType.LIMIT, 50_000.011),
        view(positions={"BTC/USDT": 1.0}),
        MKT,
        LIMITS,
    )
    assert s.approved and s.price == pytest.approx(50_000.02)


def test_no_market_price_rejects() -> None:
    d = RiskGate.check(buy(0.01), view(), MarketView("BTC/USDT", None, None, None), LIMITS)
    assert not d.approved and "no usable market price" in d.reasons[0]
