"""Risk gate and smart-router latency.

Prints per-check timings (each named check measured on its own decisive scenario), then one JSON line last:
{"benchmark":"risk","gate_p50_us":...,"gate_p99_us":...,"route_p99_ms":...}
Goals: gate p99 < 20 us per check; routing < 1 ms per decision over 5 venues.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace

from trading.execution.router import VenueQuote, route
from trading.risk.gate import DeskState, MarketView, OrderIntent, PortfolioView, RiskGate
from trading.risk.limits import limits_from_settings
from trading.types import BookLevel, Market, OrderBook, OrderType, Side

LIMITS = limits_from_settings(None, symbols=["BTC/USDT", "ETH/USDT", "SOL/USDT"])
MKT = Market("binance", "BTC/USDT", "BTC", "USDT", 0.01, 0.00001, 0.00001, 5.0, 9000.0)
MV = MarketView("BTC/USDT", 49_995.0, 50_005.0, 50_000.0, MKT)
PV = PortfolioView(equity=250_000.0, cash_free=150_000.0, positions={"BTC/USDT": 1.0, "ETH/USDT": 10.0},
                   gross_notional=80_000.0, net_notional=80_000.0, peak_equity=260_000.0,
                   day_start_equity=255_000.0, pending_buy={"BTC/USDT": 0.2}, pending_buy_notional=10_000.0,
                   orders_last_minute=3)

SCENARIOS: dict[str, tuple[OrderIntent, PortfolioView]] = {
    "pass_market_buy": (OrderIntent("BTC/USDT", Side.BUY, 0.1), PV),
    "pass_limit_buy": (OrderIntent("BTC/USDT", Side.BUY, 0.1, OrderType.LIMIT, 49_990.0), PV),
    "pass_reducing_sell": (OrderIntent("BTC/USDT", Side.SELL, 0.5), PV),
    "reject_allowlist": (OrderIntent("PEPE/USDT", Side.BUY, 1.0), PV),
    "reject_notional": (OrderIntent("BTC/USDT", Side.BUY, 5.0), PV),
    "reject_price_band": (OrderIntent("BTC/USDT", Side.BUY, 0.1, OrderType.LIMIT, 40_000.0), PV),
    "reject_halted": (OrderIntent("BTC/USDT", Side.BUY, 0.1), replace(PV, desk_state=DeskState.HALTED)),
    "reject_daily_loss": (OrderIntent("BTC/USDT", Side.BUY, 0.1), replace(PV, equity=240_000.0)),
    "resize_to_fit": (OrderIntent("BTC/USDT", Side.BUY, 5.0, allow_resize=True), PV),
}


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def bench_gate(n: int = 20_000) -> tuple[float, float, dict[str, dict[str, float]]]:
    check = RiskGate.check
    clock = time.perf_counter_ns
    per: dict[str, dict[str, float]] = {}
    everything: list[float] = []
    for name, (intent, pv) in SCENARIOS.items():
        for _ in range(500):
            check(intent, pv, MV, LIMITS)
        samples: list[float] = []
        for _ in range(n):
            t0 = clock()
            check(intent, pv, MV, LIMITS)
            samples.append((clock() - t0) / 1000.0)
        everything.extend(samples)
        p50, p99 = _percentiles(samples)
        per[name] = {"p50_us": round(p50, 2), "p99_us": round(p99, 2)}
    p50, p99 = _percentiles(everything)
    return p50, p99, per


def _book(venue: str, mid: float, rng: random.Random) -> OrderBook:
    asks = tuple(BookLevel(round(mid * (1 + 0.0001 * (i + 1)), 2), rng.uniform(0.05, 2.0)) for i in range(20))
    bids = tuple(BookLevel(round(mid * (1 - 0.0001 * (i + 1)), 2), rng.uniform(0.05, 2.0)) for i in range(20))
    return OrderBook(venue, "BTC/USDT", 0, bids, asks)


def bench_route(n: int = 5_000) -> tuple[float, float]:
    rng = random.Random(7)
    quotes = [VenueQuote(f"v{i}", _book(f"v{i}", 50_000 * (1 + rng.uniform(-5e-4, 5e-4)), rng),
                         rng.choice([0.0004, 0.001, 0.0006])) for i in range(5)]
    samples: list[float] = []
    for i in range(n):
        qty = rng.uniform(0.01, 15.0)
        side = Side.BUY if i % 2 else Side.SELL
        t0 = time.perf_counter_ns()
        route(side, qty, quotes)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return _percentiles(samples)


def main() -> None:
    p50, p99, per = bench_gate()
    for name, stats in per.items():
        print(f"gate {name:22s} p50 {stats['p50_us']:6.2f} us  p99 {stats['p99_us']:6.2f} us")
    r50, r99 = bench_route()
    print(f"route 5 venues x 20 levels  p50 {r50:.4f} ms  p99 {r99:.4f} ms")
    print(json.dumps({"benchmark": "risk", "gate_p50_us": round(p50, 2), "gate_p99_us": round(p99, 2),
                      "route_p50_ms": round(r50, 4), "route_p99_ms": round(r99, 4), "per_check": per,
                      "goal_gate_p99_us": 20, "goal_route_p99_ms": 1.0}))


if __name__ == "__main__":
    main()
