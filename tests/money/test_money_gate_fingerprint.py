"""The gate's hot path is hand-tuned (see docs/money-path.md, Benchmarks): this pins every decision it makes.

A fixed set of seeded random inputs (valid and broken: NaN, zero and negative numbers, halts, missing markets,
tiny limits) goes through `RiskGate.check`; the SHA-256 of every decision (approval, quantities, price, reasons,
checks with margins, transition, to_dict, headroom text) must equal the one recorded from the straightforward
implementation the tuned one replaced. Any change to a decision or a reason text changes the hash.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import replace
from typing import Any

from trading.risk.gate import DeskState, MarketView, OrderIntent, PortfolioView, RiskGate
from trading.risk.limits import RiskLimits, limits_from_settings
from trading.types import Market, OrderType, Side

EXPECTED = "78737327fccfeb418371738d306b1069986c904fa41d76ab120f6d6ce4ab9ec6"
SYMS = ["BTC/USDT", "ETH/USDT", "PEPE/USDT", "SOL/USDT"]
BASE = limits_from_settings(None, symbols=["BTC/USDT", "ETH/USDT", "SOL/USDT"])
NAN, INF = float("nan"), float("inf")


def _case(rng: random.Random, sane: bool) -> tuple[OrderIntent, PortfolioView, MarketView, RiskLimits]:
    def pick(*xs: Any) -> Any:
        return xs[0] if sane and rng.random() < 0.85 else rng.choice(xs)

    def num(lo: float, hi: float, specials: tuple[Any, ...] = (0.0, -1.0, NAN, INF, None)) -> Any:
        if not sane and rng.random() < 0.06:
            return rng.choice(specials)
        return rng.uniform(lo, hi)

    lim = replace(
        BASE,
        max_order_notional=pick(50_000.0, 10_000.0, 0.0, 1e3),
        max_position_notional=pick(200_000.0, 20_000.0, 0.0),
        max_gross_exposure=pick(500_000.0, 30_000.0, 0.0, 90_000.0),
        max_net_exposure=pick(500_000.0, 30_000.0, 85_000.0),
        max_leverage=pick(1.0, 0.5, 0.0, 2.0),
        price_band_pct=pick(0.05, 0.02, 0.0),
        max_orders_per_minute=pick(60, 5, 0, 1),
        max_daily_loss_pct=pick(0.05, 0.02, 0.0),
        max_drawdown_pct=pick(0.15, 0.1, 0.0),
        market_slippage_pct=pick(0.01, 0.0),
    )
    mkt = pick(
        None,
        Market(
            "binance", "BTC/USDT", "BTC", "USDT",
            pick(0.01, None, 0.0, 0.5), pick(0.00001, None, 0.0, 0.1, 1.0), pick(0.00001, None, 0.5),
            pick(5.0, None, 1000.0), pick(9000.0, None, 0.3), pick(0.001, 0.0005), 0.001,
            pick(True, True, False), pick(True, True, False),
        ),
    )  # fmt: skip
    mid = num(100, 60_000, (None, 0.0, -5.0, NAN, INF))
    mv = MarketView(pick(*SYMS), num(100, 60_000), num(100, 60_000), mid, mkt)
    qty = num(0.0001, 1.5 if sane else 8.0, (0.0, -1.0, NAN, INF, 1e-9))
    finite_mid = isinstance(mid, float) and math.isfinite(mid)
    if rng.random() < 0.3:
        lp = num(100, 60_000, (None, 0.0, -1.0, NAN))
    else:
        lp = mid * rng.uniform(0.9, 1.1) if finite_mid else 50_000.0
    intent = OrderIntent(
        pick(*SYMS), pick(Side.BUY, Side.SELL), qty, pick(OrderType.MARKET, OrderType.LIMIT),
        lp, rng.random() < 0.2, rng.random() < 0.4,
    )  # fmt: skip
    pv = PortfolioView(
        equity=num(250_000 if sane else 0, 400_000, (0.0, -10.0, NAN)),
        cash_free=num(0, 300_000, (0.0, -5.0)),
        positions={s: num(0, 5, (0.0, -1.0)) for s in SYMS if rng.random() < 0.6},
        gross_notional=num(0, 200_000, (0.0,)),
        net_notional=num(-50_000, 200_000, (0.0,)),
        peak_equity=num(200_000 if sane else 0, 280_000 if sane else 400_000, (0.0, NAN)),
        day_start_equity=num(200_000 if sane else 0, 260_000 if sane else 400_000, (0.0, -1.0)),
        pending_buy={s: rng.uniform(0, 2) for s in SYMS if rng.random() < 0.3},
        pending_sell={s: rng.uniform(0, 2) for s in SYMS if rng.random() < 0.3},
        pending_buy_notional=num(0, 50_000, (0.0,)),
        orders_last_minute=rng.randint(0, 40 if sane else 70),
        desk_state=DeskState(pick("active", "active", "reducing", "halted")),
        halted_symbols=frozenset(s for s in SYMS if rng.random() < 0.1),
    )
    return intent, pv, mv, lim


def _fingerprint(n: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    approved = 0
    for seed, sane in ((11, False), (12, True)):
        rng = random.Random(seed)
        for _ in range(n):
            intent, pv, mv, lim = _case(rng, sane)
            d = RiskGate.check(intent, pv, mv, lim)
            approved += d.approved
            row = (
                d.approved, d.qty, d.price, d.reasons, [tuple(c) for c in d.checks], d.reduces_exposure,
                d.notional, d.desk_transition.value if d.desk_transition else None,
                json.dumps(d.to_dict(), sort_keys=True), d.headroom_text(),
            )  # fmt: skip
            digest.update(repr(row).encode())
    return digest.hexdigest(), approved


def test_every_decision_and_reason_matches_the_recorded_fingerprint() -> None:
    fingerprint, approved = _fingerprint(3000)
    assert approved > 500  # the sample exercises the pass path, not only rejections
    assert fingerprint == EXPECTED
