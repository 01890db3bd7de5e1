"""Backtests: the event-driven path (real strategy, real risk gate, fill model) and the vectorised fast path.

Event-driven loop over the bars where something happens (plain floats, precomputed target arrays; a bar where no
target changes and no order works needs no work, so the loop jumps to the next event):
  1. at the open of bar j, working orders execute: a new order is resolved to a quantity from its target weight
     and the equity at this open, then every child order goes through `RiskGate.check` (as a marketable limit at
     the fill price, resizing allowed) right before it "is sent", and the fill model fills what the bar's volume
     allows; the rest keeps working next bar;
  2. at the close of bar j the strategy's target for j (computed causally from candles up to j) is compared with
     the previous one; a change creates a new order (replacing any remainder), which executes at bar j+1.
The gate is therefore called only when a target changes (and for partial-fill children), never on idle bars.

The venue is spot in both paths (the gate's no-short rule decides). Two books:
- `cash`: the account starts in cash; a target weight w means w x equity held. A short target is refused by the
  gate (event path) or by the same spot rule (vectorised path) and reported in `rejections`, never dropped silently.
- `relative_value` (spot relative value, for two-legged strategies such as pairs): the account starts holding
  `inventory` x equity in each leg (valued at the first open) and the rest in cash. The strategy's weights, scaled
  by `tilt`, shift the book around that inventory: the target quantity of a leg is inventory + tilt x weight x
  equity / price, so "short the spread leg" means selling part of the inventory, never going below zero, and a flat
  target returns exactly to the inventory. Trades are the excursions from the inventory (a leg sold down and bought
  back is a closed "short" round trip); the benchmark is the untouched inventory, and `spread.pnl` is the equity
  gained over it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import numpy as np

from trading.backtest.fills import FillModel
from trading.backtest.ledger import Fills, Trade, closed_trades, equity_curve, fingerprint
from trading.backtest.metrics import buy_and_hold_equity, compute_metrics, equity_metrics
from trading.backtest.vectorized import simulate_with_refusals
from trading.risk import DeskState, MarketView, OrderIntent, PortfolioView, RiskGate, RiskLimits
from trading.risk.limits import HARD_CEILINGS
from trading.strategies.base import Bars, FloatArray, Strategy
from trading.types import Market, OrderType, Side

Book = Literal["auto", "cash", "relative_value"]
BOOKS: tuple[str, ...] = ("auto", "cash", "relative_value")


class Gate(Protocol):
    def check(self, intent: OrderIntent, portfolio: PortfolioView, market: MarketView, limits: RiskLimits) -> Any: ...


def research_limits(symbols: Sequence[str], max_leverage: float = 1.0, breakers: bool = False) -> RiskLimits:
    """Limits for research backtests: the desk's structure (cash, leverage, no shorting on spot, price band, rate)
    without notional caps sized for the live account, and the drawdown/daily-loss breakers only when asked."""
    inf = math.inf
    return replace(
        HARD_CEILINGS,
        allowed_symbols=frozenset(symbols),
        max_order_notional=inf,
        max_position_notional=inf,
        max_gross_exposure=inf,
        max_net_exposure=inf,
        max_leverage=max_leverage,
        max_orders_per_minute=10_000,
        max_daily_loss_pct=HARD_CEILINGS.max_daily_loss_pct if breakers else 1.0,
        max_drawdown_pct=HARD_CEILINGS.max_drawdown_pct if breakers else 1.0,
    )


@dataclass(frozen=True)
class BacktestConfig:
    initial_cash: float = 10_000.0
    fill: FillModel = field(default_factory=FillModel)
    timeframe: str = "1h"
    max_leverage: float = 1.0
    # Desk limits to apply (e.g. limits_from_settings(settings)); default research_limits(symbols).
    limits: RiskLimits | None = None
    # Apply the desk's drawdown / daily-loss breakers (a breach halts or reduces for the rest of the run).
    breakers: bool = False
    # How the account holds the symbols (see the module docstring). "auto": relative_value for strategies that
    # trade two or more symbols, cash otherwise.
    book: Book = "auto"
    inventory: float = 0.4  # relative_value: fraction of the initial equity held in each leg at the start
    tilt: float = 0.4  # relative_value: scale of the strategy's weights around the inventory

    def __post_init__(self) -> None:
        if not self.initial_cash > 0:
            raise ValueError("initial_cash must be positive")
        if self.book not in BOOKS:
            raise ValueError(f"book must be one of {', '.join(BOOKS)}, got {self.book!r}")
        if not 0.0 < self.inventory <= 0.5:
            raise ValueError("inventory must be in (0, 0.5]: a fraction of equity per leg, two legs at most 1")
        if not 0.0 < self.tilt <= 1.0:
            raise ValueError("tilt must be in (0, 1]")


@dataclass(frozen=True)
class BookSetup:
    """The starting book: inventory per symbol (base units), the cash beside it, and the weight scale."""

    kind: str
    base: FloatArray
    cash0: float
    scale: float


def setup_book(n_symbols: int, config: BacktestConfig, first_open: FloatArray) -> BookSetup:
    kind = config.book
    if kind == "auto":
        kind = "relative_value" if n_symbols >= 2 else "cash"
    if kind == "cash":
        return BookSetup("cash", np.zeros(n_symbols), config.initial_cash, 1.0)
    if n_symbols < 2:
        raise ValueError("the relative_value book needs a strategy that trades two symbols (pairs)")
    if config.inventory * n_symbols > 1.0 + 1e-12:
        raise ValueError(f"inventory {config.inventory} per leg over {n_symbols} legs exceeds the equity")
    o = np.asarray(first_open, dtype=np.float64).reshape(-1)
    if not np.all(o > 0):
        raise ValueError("the relative_value book needs positive opens on the first bar to value the inventory")
    base = config.inventory * config.initial_cash / o
    cash0 = config.initial_cash - float(np.dot(base, o))
    return BookSetup("relative_value", base, cash0, config.tilt)


@dataclass
class BacktestResult:
    strategy: dict[str, Any]
    symbols: list[str]
    mode: str
    timestamps: np.ndarray
    equity: FloatArray
    positions: FloatArray
    fills: Fills
    trades: list[Trade]
    metrics: dict[str, Any]
    buy_and_hold: dict[str, Any]
    rejections: list[dict[str, Any]] = field(default_factory=list)
    halted_at_bar: int | None = None
    bh_equity: FloatArray | None = None
    book: dict[str, Any] = field(default_factory=lambda: {"kind": "cash", "venue": "spot"})
    spread: dict[str, Any] | None = None  # relative_value: equity over the untouched inventory, per-leg PnL

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.trades)

    def to_json(self, max_trades: int = 50) -> dict[str, Any]:
        m = self.metrics
        bh = self.buy_and_hold
        return {
            "strategy": self.strategy,
            "symbols": self.symbols,
            "mode": self.mode,
            "bars": int(self.equity.shape[0]),
            "start_ms": int(self.timestamps[0]) if len(self.timestamps) else None,
            "end_ms": int(self.timestamps[-1]) if len(self.timestamps) else None,
            "metrics": m,
            "buy_and_hold": bh,
            "excess_return": (m["total_return"] - bh["total_return"])
            if m.get("total_return") is not None and bh.get("total_return") is not None else None,
            "fingerprint": self.fingerprint,
            "trades": [t.to_json() for t in self.trades[-max_trades:]],
            "rejections": self.rejections[:20],
            "rejected_orders": len(self.rejections),
            "halted_at_bar": self.halted_at_bar,
            "book": self.book,
            "spread": self.spread,
        }


def _columns(data: Sequence[Bars]) -> tuple[FloatArray, FloatArray, FloatArray]:
    o = np.column_stack([b.open for b in data]).astype(np.float64)
    c = np.column_stack([b.close for b in data]).astype(np.float64)
    v = np.column_stack([b.volume for b in data]).astype(np.float64)
    return o, c, v


def _as_seq(data: Bars | Sequence[Bars]) -> list[Bars]:
    return [data] if isinstance(data, Bars) else list(data)


def _market(symbol: str, fee: float) -> Market:
    base, _, quote = symbol.partition("/")
    return Market("backtest", symbol, base, quote or "USDT", None, None, None, None, taker_fee=fee, maker_fee=fee)


def _symbols(data: Sequence[Bars]) -> list[str]:
    return [b.symbol or f"asset{i}" for i, b in enumerate(data)]


def _finish(
    strategy: Strategy, data: list[Bars], mode: str, fills: Fills, config: BacktestConfig, book: BookSetup,
    rejections: list[dict[str, Any]] | None = None, halted: int | None = None,
) -> BacktestResult:
    symbols = _symbols(data)
    opens, closes, _ = _columns(data)
    # marks from the fills alone, then the inventory (constant) added back: linear, so the same as marking the book
    eq_fills, _, excursion = equity_curve(fills, closes, book.cash0)
    inventory_value = closes @ book.base
    equity = eq_fills + inventory_value
    pos = excursion + book.base
    trades = closed_trades(fills, symbols)
    ts = data[0].timestamp_ms
    bar_ms = int(np.median(np.diff(ts))) if len(ts) > 1 else None
    ppy = strategy.periods_per_year
    # exposure counts bars where the strategy holds something beyond the inventory (float dust is not a position)
    tol = 1e-9 * np.maximum(np.abs(book.base), 1e-300) if book.kind == "relative_value" else 0.0
    held = np.where(np.abs(excursion) > tol, excursion, 0.0)
    metrics = compute_metrics(equity, held, closes, fills, trades, ppy, bar_ms)
    desc = strategy.describe()
    desc.pop("param_specs", None)
    spread: dict[str, Any] | None = None
    if book.kind == "relative_value":
        bh_eq = np.asarray(book.cash0 + inventory_value, dtype=np.float64)
        bh: dict[str, Any] = dict(equity_metrics(bh_eq, ppy)) | {"final_equity": float(bh_eq[-1]),
                                                                  "kind": "untouched inventory"}
        legs = []
        for a, sym in enumerate(symbols):
            leg = [t for t in trades if t.symbol == sym]
            legs.append({"symbol": sym, "fills": int(np.sum(fills.asset == a)), "closed_trades": len(leg),
                         "closed_pnl": float(sum(t.pnl for t in leg)),
                         "open_qty": float(held[-1, a]) if held.size else 0.0})
        spread = {"pnl": float(equity[-1] - bh_eq[-1]), "closed_pnl": float(sum(t.pnl for t in trades)),
                  "legs": legs}
        book_json: dict[str, Any] = {
            "kind": "relative_value", "venue": "spot", "tilt": book.scale, "cash": book.cash0,
            "inventory": [{"symbol": s, "qty": float(q), "weight": config.inventory}
                          for s, q in zip(symbols, book.base.tolist(), strict=True)],
        }
    else:
        bh_eq = buy_and_hold_equity(closes, config.initial_cash, config.fill.fee, opens)
        bh = dict(equity_metrics(bh_eq, ppy)) | {"final_equity": float(bh_eq[-1])}
        book_json = {"kind": "cash", "venue": "spot"}
    return BacktestResult(desc, symbols, mode, ts, equity, pos, fills, trades, metrics, bh, rejections or [], halted,
                          bh_eq, book_json, spread)


def _prepare(
    strategy: Strategy, seq: list[Bars], cfg: BacktestConfig, targets: FloatArray | None
) -> tuple[FloatArray, BookSetup]:
    tg = strategy.targets(seq) if targets is None else np.asarray(targets, dtype=np.float64)
    book = setup_book(len(seq), cfg, np.asarray([b.open[0] for b in seq]))
    if book.scale != 1.0:
        tg = tg * book.scale
    return tg, book


def run_vectorized(strategy: Strategy, data: Bars | Sequence[Bars], config: BacktestConfig | None = None,
                   targets: FloatArray | None = None) -> BacktestResult:
    cfg = config or BacktestConfig()
    seq = _as_seq(data)
    tg, book = _prepare(strategy, seq, cfg, targets)
    o, _, v = _columns(seq)
    fills, refused = simulate_with_refusals(o, v, tg, cfg.fill, book.cash0, cfg.max_leverage, book.base)
    return _finish(strategy, seq, "vectorized", fills, cfg, book, refused.to_rows(_symbols(seq)))


def run_event(
    strategy: Strategy,
    data: Bars | Sequence[Bars],
    config: BacktestConfig | None = None,
    gate: Gate | None = None,
    targets: FloatArray | None = None,
) -> BacktestResult:
    """The event-driven backtest with the desk's risk gate and the fill model."""
    cfg = config or BacktestConfig()
    seq = _as_seq(data)
    symbols = _symbols(seq)
    tg, book = _prepare(strategy, seq, cfg, targets)
    o, c, v = _columns(seq)
    fills = _event_loop(seq, symbols, o, c, v, tg, cfg, gate or RiskGate(), book)
    return _finish(strategy, seq, "event", fills[0], cfg, book, fills[1], fills[2])


def _event_loop(
    seq: list[Bars], symbols: list[str], o: FloatArray, c: FloatArray, v: FloatArray, tg: FloatArray,
    cfg: BacktestConfig, gate: Gate, book: BookSetup,
) -> tuple[Fills, list[dict[str, Any]], int | None]:
    n, k = tg.shape
    limits = cfg.limits or research_limits(symbols, cfg.max_leverage, cfg.breakers)
    fee, slip, part = cfg.fill.fee, cfg.fill.slippage, cfg.fill.participation
    markets = [_market(s, fee) for s in symbols]
    check = gate.check
    ts = seq[0].timestamp_ms
    breakers = cfg.breakers
    day_of = (ts // 86_400_000).tolist() if breakers else []
    # The bars whose close changes some target (the strategy's events); everything else is an idle bar.
    prev_rows = np.vstack([np.zeros((1, k)), tg[:-1]])
    changes: list[int] = np.flatnonzero(np.any(tg != prev_rows, axis=1)).tolist()

    fb: list[int] = []
    fa: list[int] = []
    fq: list[float] = []
    fp: list[float] = []
    ff: list[float] = []
    rejections: list[dict[str, Any]] = []
    cash = book.cash0
    base: list[float] = book.base.tolist()
    pos = list(base)
    prev = [0.0] * k
    want = [0.0] * k
    new_order = [False] * k
    remaining = [0.0] * k
    is_buy = [False] * k
    desk = DeskState.ACTIVE
    halted_at: int | None = None
    # breaker bookkeeping (only when breakers are on): state after each fill bar, running peak
    hist_bar: list[int] = [-1]
    hist_cash: list[float] = [cash]
    hist_pos: list[list[float]] = [list(pos)]
    peak = cfg.initial_cash
    peak_upto = 0  # closes [0, peak_upto) are folded into `peak`
    day_start = cfg.initial_cash
    rng_k = range(k)

    def equity_at_close(bar: int) -> float:
        idx = bisect.bisect_right(hist_bar, bar) - 1
        return hist_cash[idx] + float(np.dot(c[bar], hist_pos[idx])) if bar >= 0 else cfg.initial_cash

    ci = 0
    nc = len(changes)
    next_exec = -1  # bar whose open executes working orders; -1 when nothing works
    while True:
        nxt_change = changes[ci] if ci < nc else n
        if next_exec != -1 and next_exec <= nxt_change:
            # ---- open of bar j: working orders execute (before that bar's close) ----
            j = next_exec
            next_exec = -1
            if j >= n:
                break
            op: list[float] = o[j].tolist()
            vol: list[float] = v[j].tolist()
            val = cash
            for a in rng_k:
                val += pos[a] * op[a]
            for a in rng_k:
                if new_order[a]:
                    new_order[a] = False
                    oa = op[a]
                    remaining[a] = 0.0
                    d = base[a] + want[a] * val / oa - pos[a]
                    if d != 0.0 and oa > 0:
                        buy = d > 0
                        p = oa * (1.0 + slip) if buy else oa * (1.0 - slip)
                        q = base[a] + want[a] * val / p - pos[a]
                        if (q > 0) == buy and q != 0.0:
                            remaining[a] = abs(q)
                            is_buy[a] = buy
            if breakers:
                # fold closes up to the previous bar into the running peak (position constant since last fill)
                if j > peak_upto:
                    seg_eq = hist_cash[-1] + c[peak_upto:j] @ np.asarray(hist_pos[-1])
                    peak = max(peak, float(seg_eq.max()))
                    peak_upto = j
                first = bisect.bisect_left(day_of, day_of[j])
                day_start = equity_at_close(first - 1)
            sent = 0
            for phase in (False, True):  # sells first (they free cash), then buys
                for a in rng_k:
                    if remaining[a] <= 0.0 or is_buy[a] != phase:
                        continue
                    oa = op[a]
                    buy = phase
                    p = oa * (1.0 + slip) if buy else oa * (1.0 - slip)
                    equity = cash
                    gross = 0.0
                    for b in rng_k:
                        equity += pos[b] * op[b]
                        gross += abs(pos[b] * op[b])
                    sym = symbols[a]
                    pv = PortfolioView(
                        equity=equity, cash_free=cash, positions={symbols[b]: pos[b] for b in rng_k},
                        gross_notional=gross, net_notional=sum(pos[b] * op[b] for b in rng_k),
                        peak_equity=peak if breakers else equity, day_start_equity=day_start if breakers else equity,
                        orders_last_minute=sent, desk_state=desk,
                    )
                    intent = OrderIntent(sym, Side.BUY if buy else Side.SELL, remaining[a], OrderType.LIMIT, p,
                                         False, True)
                    dec = check(intent, pv, MarketView(sym, None, None, oa, markets[a]), limits)
                    sent += 1
                    if dec.desk_transition is not None and breakers and desk is not DeskState.HALTED:
                        desk = dec.desk_transition
                        if halted_at is None:
                            halted_at = j
                    if not dec.approved:
                        rejections.append({"bar": j, "symbol": sym, "side": intent.side.value,
                                           "qty": remaining[a], "reasons": list(dec.reasons)})
                        remaining[a] = 0.0
                        continue
                    qty = dec.qty
                    fill = min(qty, part * vol[a])
                    if fill > 0:
                        amt = fill * p * fee
                        if buy:
                            cash = cash - fill * p - amt
                            pos[a] += fill
                            fq.append(fill)
                        else:
                            cash = cash + fill * p - amt
                            pos[a] -= fill
                            fq.append(-fill)
                        fb.append(j)
                        fa.append(a)
                        fp.append(p)
                        ff.append(amt)
                    rest = qty - fill
                    remaining[a] = rest if rest > qty * 1e-12 else 0.0
                    if remaining[a] > 0.0:
                        next_exec = j + 1  # the remainder works on the next bar
            if breakers and sent:
                hist_bar.append(j)
                hist_cash.append(cash)
                hist_pos.append(list(pos))
        elif nxt_change < n:
            # ---- close of bar j: the strategy's target changed; a new order replaces any remainder ----
            j = nxt_change
            ci += 1
            row: list[float] = tg[j].tolist()
            for a in rng_k:
                t = row[a]
                if t != prev[a]:
                    want[a] = t
                    new_order[a] = True
                    remaining[a] = 0.0
            prev = row
            next_exec = j + 1
        else:
            break
    return Fills.from_lists(fb, fa, fq, fp, ff), rejections, halted_at


def run_backtest(
    strategy: Strategy,
    data: Bars | Sequence[Bars],
    config: BacktestConfig | None = None,
    mode: Literal["event", "vectorized"] = "event",
) -> BacktestResult:
    if mode == "event":
        return run_event(strategy, data, config)
    if mode == "vectorized":
        return run_vectorized(strategy, data, config)
    raise ValueError(f"unknown mode {mode!r}: event or vectorized")
