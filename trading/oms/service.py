"""TradingService: the one entry point of the money path (desk, HTTP, Slack, CLI and tools call this).

    propose -> RiskGate -> pending_approval (expires) -> approve (authorised, maybe four-eyes) -> RiskGate again
    -> approved -> children (algo slices x router allocations), each through the RiskGate right before sending
    -> venue (paper or live) -> fills -> portfolio, audit log

Safety rules kept here:
- a child order is marked `submitted` *before* it is sent; if the process dies or the venue's answer is lost,
  the child is never sent again: the reconciler looks it up by client order id (found -> recorded once; not
  found -> `unresolved`, until the exchange or an admin resolves it);
- a second approval click, a Slack retry, or an approval after expiry changes nothing (guarded transitions);
- every fill is recorded once (unique id from the client order id and the cumulative filled amount);
- breaches move the desk to REDUCING/HALTED; only an admin resumes; the kill switch cancels and halts.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database

from core.clock import now_ms
from core.metrics import GATE_REJECTIONS
from trading.exchanges.errors import OrderNotFound, OrderRejected
from trading.execution.algos import Algo, Slice, iceberg, twap, volume_profile, vwap
from trading.execution.router import VenueQuote, affordable_qty, route
from trading.execution.venue import NativeStopVenue, OrderVenue
from trading.oms.models import AT_VENUE, LIVE, TERMINAL, OrderState, exchange_status_to_state
from trading.oms.native_stops import NativeStop, filled_by_venue, native_spec, stranded, venue_trails
from trading.oms.store import Doc, OmsStore
from trading.portfolio.book import Portfolio, Valuation, split_symbol
from trading.risk.gate import CheckResult, Decision, DeskState, MarketView, OrderIntent, PortfolioView, RiskGate
from trading.risk.limits import RiskLimits, scale_limits
from trading.risk.metrics import book_report
from trading.risk.sizing import periods_per_year, vol_regime
from trading.risk.stops import StopKind, StopRule, evaluate, exit_level_problems, trailing
from trading.types import ExchangeOrder, Market, OrderBook, OrderType, Side

log = logging.getLogger(__name__)
S = OrderState
_EPS = 1e-12


class TradingError(Exception):
    """A readable refusal (unknown order, not allowed, no market data)."""


class MarketDataUnavailable(TradingError):
    pass


class NotAuthorised(TradingError):
    pass


@dataclass(frozen=True)
class OrderRequest:
    """What a requester asks for. Validated again by the gate; the agent can only ever create one of these."""

    symbol: str
    side: Side
    qty: float
    type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    venue: str | None = None  # None: the smart router chooses (and may split across venues)
    algo: Algo = Algo.NONE
    slices: int = 1
    duration_s: float = 0.0
    display_qty: float | None = None  # iceberg clip size
    reduce_only: bool = False
    allow_resize: bool = False
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop_pct: float | None = None
    note: str = ""

    def intent(self, qty: float | None = None) -> OrderIntent:
        return OrderIntent(
            self.symbol,
            self.side,
            self.qty if qty is None else qty,
            self.type,
            self.limit_price,
            self.reduce_only,
            self.allow_resize,
        )

    def invalid(self) -> str | None:
        """Why this request cannot be recorded (numbers that are not finite, not positive or out of range), else
        None. The front doors' models refuse these first; this guards every other caller (strategies, stops)."""
        for name, value, positive in (
            ("qty", self.qty, True),
            ("limit_price", self.limit_price, True),
            ("display_qty", self.display_qty, True),
            ("stop_loss", self.stop_loss, True),
            ("take_profit", self.take_profit, True),
            ("trailing_stop_pct", self.trailing_stop_pct, True),
            ("duration_s", self.duration_s, False),
        ):
            if value is None:
                continue
            if not math.isfinite(value) or (value <= 0 if positive else value < 0):
                return f"{name} must be a finite {'positive' if positive else 'non-negative'} number, got {value}"
        if self.trailing_stop_pct is not None and self.trailing_stop_pct >= 1:
            return f"trailing_stop_pct is a fraction below 1, got {self.trailing_stop_pct}"
        if self.slices < 1:
            return f"slices must be at least 1, got {self.slices}"
        return None

    def to_doc(self) -> Doc:
        d = asdict(self)
        d["side"] = self.side.value
        d["type"] = self.type.value
        d["algo"] = self.algo.value
        return d

    @classmethod
    def from_doc(cls, d: Mapping[str, Any]) -> OrderRequest:
        return cls(
            symbol=d["symbol"],
            side=Side(d["side"]),
            qty=float(d["qty"]),
            type=OrderType(d["type"]),
            limit_price=d.get("limit_price"),
            venue=d.get("venue"),
            algo=Algo(d.get("algo", "none")),
            slices=int(d.get("slices", 1)),
            duration_s=float(d.get("duration_s", 0.0)),
            display_qty=d.get("display_qty"),
            reduce_only=bool(d.get("reduce_only", False)),
            allow_resize=bool(d.get("allow_resize", False)),
            stop_loss=d.get("stop_loss"),
            take_profit=d.get("take_profit"),
            trailing_stop_pct=d.get("trailing_stop_pct"),
            note=str(d.get("note", "")),
        )


@dataclass
class ServiceConfig:
    approval_ttl_s: int = 900
    four_eyes: bool = False
    approvers: frozenset[str] | None = None  # None: whoever the front door authorised (scope `approve`)
    market_max_age_ms: int = 30_000
    live: bool = False
    iceberg_wait_s: float = 30.0  # how long an iceberg clip may rest before the remainder is cancelled
    poll_interval_s: float = 0.5
    # volatility regime: buys get notional limits scaled by recent/whole-window realised vol of these candles
    vol_regime: bool = True
    vol_timeframe: str = "1h"
    vol_bars: int = 168  # the baseline window (a week of hours)
    vol_recent_bars: int = 24  # the current regime (the last day)
    vol_floor: float = 0.25  # limits never shrink below this fraction
    vol_ttl_s: float = 300.0  # candles are re-read at most this often per symbol
    # stop-losses on live venues that list a stop order type are also placed there (see trading/oms/native_stops.py)
    native_stops: bool = True
    native_stop_limit_pct: float = 0.01  # a stop-limit's limit sits this far below its trigger


@dataclass
class ActionResult:
    status: str  # executed | approved | rejected | expired | already_decided | not_found | forbidden | ...
    order: Doc | None = None
    fills: list[Doc] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> Doc:
        return {
            "status": self.status,
            "order": public_order(self.order) if self.order else None,
            "fills": [public_fill(f) for f in self.fills],
            "reasons": list(self.reasons),
        }


@dataclass
class ReconcileReport:
    checked: int = 0
    updated: int = 0
    unresolved: int = 0
    mismatches: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    finalized_orders: int = 0

    def to_dict(self) -> Doc:
        return asdict(self)


def _count(col: Any, query: Doc) -> int:
    # count_documents (an aggregation) has been seen to hang on the embedded server; a projected find does not
    return sum(1 for _ in col.find(query, {"_id": 1}))


def public_order(doc: Doc) -> Doc:
    out = {k: v for k, v in doc.items() if k not in ("_id",)}
    out["id"] = doc["_id"]
    return out


def public_fill(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k not in ("_id", "seq")} | {"id": doc["_id"]}


Alert = Callable[[str, Doc], Awaitable[None] | None]
STOP_CLAIM_MS = 120_000  # a stop claim older than this was left by a process that died mid-exit
# gate checks whose refusal a later moment can lift: a fired stop stays armed when its exit meets only these
_STOP_TRANSIENT = frozenset(
    {"desk_state", "symbol_halt", "orders_per_minute", "daily_loss", "drawdown", "market_price"}
)
_REGIME_SCALED = ("max_order_notional", "max_position", "gross_exposure", "net_exposure")


def _check_failed(exc: BaseException) -> str:
    """The refusal recorded when the risk check itself failed (a bug or a broken input, never a pass)."""
    return f"risk check failed ({type(exc).__name__}: {str(exc)[:200]}); the order is refused"


def _note_regime(decision: Decision, regime: Doc) -> None:
    """Record the volatility scaling on the decision; when a scaled limit binds, say so in its reasons."""
    text = (
        f"volatility regime: notional limits scaled to {100 * float(regime['factor']):.0f}% "
        f"(realised vol {100 * float(regime['current_vol']):.0f}% over the last {regime['recent_bars']} "
        f"{regime['timeframe']} bars vs {100 * float(regime['baseline_vol']):.0f}% over {regime['baseline_bars']})"
    )
    decision.checks.append(CheckResult("vol_regime", True, None, text))
    bound = any(c.name in _REGIME_SCALED and not c.passed for c in decision.checks) or any(
        c.name == "resize" and any(n in (c.detail or "") for n in _REGIME_SCALED) for c in decision.checks
    )
    if bound:
        decision.reasons.append(text)
_PENDING_BUY_FEE = 0.001  # fee reserved on open buys when counting spendable cash
_VALUE_METRICS = ("equity", "gross_exposure", "net_exposure", "unrealised_pnl", "drawdown")
RECONCILE_GRACE_MS = 60_000  # the timer leaves unanswered sends younger than this to the process that sent them


class TradingService:
    def __init__(
        self,
        db: Database[Doc],
        venues: Mapping[str, OrderVenue],
        limits: RiskLimits,
        *,
        config: ServiceConfig | None = None,
        initial_balances: Mapping[str, Mapping[str, float]] | None = None,
        clock: Callable[[], int] = now_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        alert: Alert | None = None,
    ) -> None:
        if not venues:
            raise ValueError("at least one venue")
        self.store = OmsStore(db)
        self.venues = dict(venues)
        self.default_venue = next(iter(self.venues))
        self.limits = limits
        self.config = config or ServiceConfig()
        self.clock = clock
        self.sleep = sleep
        self._alert = alert
        self._books: dict[tuple[str, str], tuple[int, OrderBook]] = {}
        self._apply_lock = asyncio.Lock()
        self._running: set[str] = set()
        self._cancel_requested: set[str] = set()
        self._reconcile_task: asyncio.Task[None] | None = None
        self._stop_watch_task: asyncio.Task[None] | None = None
        self._unwatched: set[str] = set()  # symbols with armed stops but no fresh price (alerted once)
        self._regimes: dict[str, Doc] = {}  # symbol -> last volatility-regime measurement (see refresh_vol_regime)
        self.alerts: list[Doc] = []
        meta = self.store.meta.find_one({"_id": "initial"})
        if meta is None:
            init = {v: dict(a) for v, a in (initial_balances or {}).items()}
            self.store.meta.update_one({"_id": "initial"}, {"$setOnInsert": {"balances": init}}, upsert=True)
            meta = self.store.meta.find_one({"_id": "initial"})
        assert meta is not None
        self._initial: dict[str, dict[str, float]] = meta["balances"]
        self._fills_seen = -1  # fill count the in-memory fold reflects (fills are append-only: count = version)
        self._last_seq = -1  # the highest `seq` folded in
        self._portfolio = Portfolio(self._initial)
        self._sync_portfolio()

    # ================================================================== the book (one source of truth: Mongo)
    @property
    def portfolio(self) -> Portfolio:
        """Positions and cash folded from the fills in Mongo, refolded when any process (this one, the CLI, another
        replica) has recorded a fill since: every reader sees every process's fills at once. The check costs one
        collection-count read (~1 ms on nx-27017)."""
        self._sync_portfolio()
        return self._portfolio

    def _sync_portfolio(self) -> None:
        """Fold in the fills recorded since the last look: the new ones in `seq` order when they all come after
        what was folded (the usual case: one query), else a full refold, so the result always equals a replay of
        the whole collection (what a restart computes)."""
        count = self.store.fill_count()
        if count == self._fills_seen:
            return
        if self._fills_seen >= 0 and count > self._fills_seen:
            new = self.store.fills_after(self._last_seq)
            if self._fills_seen + len(new) == count:
                for f in new:
                    self._portfolio.apply_fill(
                        f["venue"], f["symbol"], f["side"], float(f["qty"]), float(f["price"]),
                        float(f.get("fee_cost", 0.0)), f.get("fee_currency"),
                    )
                self._fills_seen = count
                self._last_seq = int(new[-1]["seq"]) if new else self._last_seq
                return
        fills = self.store.all_fills()  # a fill landed behind the last one folded (another process): refold all
        self._portfolio = Portfolio.replay(self._initial, fills)
        # the count as the store reports it (a metadata count can drift after an unclean database shutdown: the
        # deltas stay right, and a fill recorded meanwhile only costs one more refold)
        self._fills_seen = count
        self._last_seq = max((int(f["seq"]) for f in fills), default=-1)

    # ================================================================== lifecycle
    async def start(
        self, reconcile_interval_s: float | None = None, stop_watch_interval_s: float | None = None
    ) -> ReconcileReport:
        """Reconcile with the venues (always on start); optionally keep reconciling (and expiring stale proposals)
        on a timer, and watch armed stops by polling the venues' books. The held symbols are priced here too, so a
        restarted desk values its book before its first request (a symbol no venue prices stays `unknown`)."""
        report = await self.reconcile()
        try:
            await self.refresh_market()
        except Exception as exc:  # no market at start: marks stay unknown (never a loss) until a refresh succeeds
            log.warning("no marks at start: %s", exc)
        if reconcile_interval_s:
            self._reconcile_task = asyncio.create_task(self._reconcile_loop(reconcile_interval_s))
        if stop_watch_interval_s:
            self._stop_watch_task = asyncio.create_task(self._stop_watch_loop(stop_watch_interval_s))
        return report

    async def _reconcile_loop(self, interval_s: float) -> None:
        while True:
            await self.sleep(interval_s)
            try:
                await self.reconcile(startup=False)
                self.expire_due()
            except Exception:  # keep the timer alive; the failure is logged and alerted
                log.exception("reconcile failed")

    async def _stop_watch_loop(self, interval_s: float) -> None:
        while True:
            await self.sleep(interval_s)
            try:
                await self.watch_stops()
            except Exception:  # keep watching; the failure is logged
                log.exception("stop watch failed")

    async def stop(self) -> None:
        self.cancel_timers()

    def cancel_timers(self) -> None:
        """Stop the reconcile and stop-watch timers; callable from any thread (each task's own loop cancels it)."""
        for task in (self._reconcile_task, self._stop_watch_task):
            if task is not None and not task.done():
                task.get_loop().call_soon_threadsafe(task.cancel)
        self._reconcile_task = None
        self._stop_watch_task = None

    async def _emit(self, kind: str, payload: Doc) -> None:
        entry = {"kind": kind, "ts_ms": self.clock(), **payload}
        self.alerts.append(entry)
        self.store.audit(f"alert.{kind}", "system", payload.get("order_id"), payload=payload)
        log.warning("ALERT %s %s", kind, payload)
        if self._alert is not None:
            res = self._alert(kind, entry)
            if asyncio.iscoroutine(res):
                await res

    # ================================================================== market data
    async def refresh_market(self, symbols: list[str] | None = None) -> None:
        """Fetch fresh books for `symbols` (default: allowed symbols with positions or live orders) on all venues."""
        syms = symbols or sorted(
            set(self.portfolio.consolidated())
            | {d["symbol"] for d in self.store.orders.find({"state": {"$in": [s.value for s in LIVE]}}, {"symbol": 1})}
        )
        for symbol in syms:
            for name, venue in self.venues.items():
                try:
                    book = await venue.fetch_order_book(symbol, 20)
                except Exception as exc:  # one venue down must not stop the others
                    log.warning("book %s %s: %s", name, symbol, exc)
                    continue
                self._books[(name, symbol)] = (self.clock(), book)
        await self.refresh_vol_regime(syms)
        self._mark_to_market()

    async def refresh_vol_regime(self, symbols: list[str]) -> None:
        """Measure each symbol's volatility regime from the venues' candles (at most every `vol_ttl_s`).

        A failed read keeps the previous measurement (marked with the error); without any measurement the factor
        is 1, i.e. the configured limits, which the regime can only ever tighten."""
        if not self.config.vol_regime:
            return
        now = self.clock()
        for symbol in symbols:
            hit = self._regimes.get(symbol)
            if hit is not None and now - int(hit["checked_ms"]) < self.config.vol_ttl_s * 1000:
                continue
            measured = await self._measure_regime(symbol)
            if "error" in measured and hit is not None and hit.get("source"):
                measured = {**hit, "error": measured["error"], "checked_ms": now}
            self._regimes[symbol] = measured

    async def _measure_regime(self, symbol: str) -> Doc:
        cfg = self.config
        errors: list[str] = []
        for name in [self.default_venue, *(v for v in self.venues if v != self.default_venue)]:
            venue: Any = self.venues[name]
            fetch = getattr(venue, "fetch_ohlcv", None) or getattr(getattr(venue, "source", None), "fetch_ohlcv", None)
            if fetch is None:
                continue
            try:
                candles = await fetch(symbol, cfg.vol_timeframe, None, cfg.vol_bars)
                closes = [float(c.close) for c in candles]
                regime = vol_regime(closes, cfg.vol_recent_bars, periods_per_year(cfg.vol_timeframe), cfg.vol_floor)
            except Exception as exc:  # one venue without candles must not stop the others
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                continue
            return {
                **regime.to_dict(),
                "source": name,
                "timeframe": cfg.vol_timeframe,
                "measured_ms": self.clock(),
                "checked_ms": self.clock(),
            }
        return {
            "factor": 1.0,
            "source": None,
            "error": "; ".join(errors) or "no venue serves candles",
            "checked_ms": self.clock(),
        }

    def limits_for(self, request: OrderRequest) -> tuple[RiskLimits, Doc | None]:
        """The limits a request is checked against: buys under a raised volatility regime get the notional limits
        scaled down by the regime factor (never up). Sells keep the configured limits: on spot a sell only reduces
        exposure, and a protective exit must not shrink when the market turns wild."""
        regime = self._regimes.get(request.symbol)
        if regime is None or request.side is not Side.BUY:
            return self.limits, None
        factor = min(1.0, float(regime.get("factor", 1.0)))
        if not factor < 1.0:
            return self.limits, None
        return scale_limits(self.limits, factor), regime

    def set_book(self, venue: str, book: OrderBook) -> None:
        """Feed a book from a stream (market-data helper) instead of polling."""
        self._books[(venue, book.symbol)] = (self.clock(), book)

    def _fresh_book(self, venue: str, symbol: str) -> OrderBook | None:
        hit = self._books.get((venue, symbol))
        if hit is None or self.clock() - hit[0] > self.config.market_max_age_ms:
            return None
        return hit[1]

    def marks(self) -> dict[str, float]:
        best: dict[str, list[float]] = {}
        for (_venue, symbol), (_ts, book) in self._books.items():
            if book.mid is not None:
                best.setdefault(symbol, []).append(book.mid)
        return {s: sum(v) / len(v) for s, v in best.items()}

    def _market_view(self, symbol: str, venue: str | None = None) -> MarketView:
        names = [venue] if venue else list(self.venues)
        bids: list[float] = []
        asks: list[float] = []
        for name in names:
            book = self._fresh_book(name, symbol)
            if book is None:
                continue
            if book.best_bid is not None:
                bids.append(book.best_bid)
            if book.best_ask is not None:
                asks.append(book.best_ask)
        if not bids or not asks:
            raise MarketDataUnavailable(f"no fresh order book for {symbol}; refresh market data and retry")
        bid, ask = max(bids), min(asks)
        mkt = self._market(venue or self.default_venue, symbol)
        return MarketView(symbol, bid, ask, (bid + ask) / 2.0, mkt)

    def _market(self, venue: str, symbol: str) -> Market | None:
        try:
            return self.venues[venue].market(symbol)
        except Exception:  # unknown symbol on this venue: the gate still checks without exchange minimums
            return None

    # ================================================================== equity, breaches, desk
    def valuation(self) -> Valuation:
        """The book at the current marks; unknown (equity None) while a held symbol has no mark."""
        return self.portfolio.valuation(self.marks())

    def _mark_to_market(self) -> tuple[Valuation, float, float]:
        """Value the book, track peak and day-start equity, and escalate on a loss-limit breach. An unknown equity
        (a held symbol not yet priced, e.g. right after a restart) moves nothing: an unknown mark is not a loss."""
        valuation = self.valuation()
        st = self.store.risk_state.find_one({"_id": "equity"})
        if valuation.equity is None:
            if st is None:
                return valuation, 0.0, 0.0
            return valuation, float(st["peak"]), float(st["day_start"])
        equity = valuation.equity
        day = datetime.fromtimestamp(self.clock() / 1000, UTC).strftime("%Y-%m-%d")
        st = self.store.risk_state.find_one_and_update(
            {"_id": "equity"},
            {"$max": {"peak": equity}, "$setOnInsert": {"day": day, "day_start": equity}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert st is not None
        if st.get("day") != day:
            st = self.store.risk_state.find_one_and_update(
                {"_id": "equity", "day": st.get("day")},
                {"$set": {"day": day, "day_start": equity}},
                return_document=ReturnDocument.AFTER,
            ) or self.store.risk_state.find_one({"_id": "equity"})
        assert st is not None
        self.store.risk_state.update_one({"_id": "curve"}, {"$set": {f"p.{day}": equity}}, upsert=True)
        peak, day_start = float(st["peak"]), float(st["day_start"])
        if peak > 0 and (peak - equity) / peak >= self.limits.max_drawdown_pct:
            self._escalate(DeskState.HALTED, f"drawdown {(peak - equity) / peak:.2%} from peak")
        elif day_start > 0 and (day_start - equity) / day_start >= self.limits.max_daily_loss_pct:
            self._escalate(DeskState.REDUCING, f"daily loss {(day_start - equity) / day_start:.2%}")
        return valuation, peak, day_start

    def _escalate(self, to: DeskState, reason: str) -> None:
        expected = [DeskState.ACTIVE] if to is DeskState.REDUCING else [DeskState.ACTIVE, DeskState.REDUCING]
        if self.store.set_desk_state(to, expected, "risk", reason):
            self.alerts.append({"kind": "desk", "state": to.value, "reason": reason, "ts_ms": self.clock()})
            log.warning("desk -> %s: %s", to.value, reason)

    def desk_state(self) -> DeskState:
        return DeskState(self.store.desk_state()["state"])

    # Desk control (halt, reduce-only, resume, kill, settling unresolved children) is authorised by the front door
    # that authenticated the caller: HTTP by the API key's id and `admin` scope, Slack by the Slack user id in
    # SLACK_ADMINS, the CLI by access to the desk's data. `actor` is only recorded, never compared with a list: it is
    # a label (an API key's name is free text) and no label may grant or deny a right.
    def halt(self, actor: str, reason: str = "manual halt") -> Doc:
        self.store.set_desk_state(DeskState.HALTED, list(DeskState), actor, reason)
        return self.store.desk_state()

    def reduce_only(self, actor: str, reason: str = "manual reduce-only") -> Doc:
        self.store.set_desk_state(DeskState.REDUCING, list(DeskState), actor, reason)
        return self.store.desk_state()

    def resume(self, actor: str, reason: str = "manual resume", *, reset_baselines: bool = False) -> Doc:
        """`reset_baselines` accepts the current loss: peak and day start become today's equity."""
        if reset_baselines:
            equity = self.valuation().equity
            if equity is None:
                raise TradingError(
                    f"{self.valuation().unknown_reason()}: refresh market data before resetting the loss baselines"
                )
            self.store.risk_state.update_one(
                {"_id": "equity"}, {"$set": {"peak": equity, "day_start": equity}}, upsert=True
            )
            self.store.audit("risk.baselines_reset", actor, None, equity=equity)
        self.store.set_desk_state(DeskState.ACTIVE, list(DeskState), actor, reason)
        return self.store.desk_state()

    def resume_symbol(self, symbol: str, actor: str) -> bool:
        return self.store.resume_symbol(symbol, actor)

    async def kill(self, actor: str, reason: str = "kill switch") -> Doc:
        """Halt, stop running algos, cancel pending proposals and every open order at every venue."""
        self.store.set_desk_state(DeskState.HALTED, list(DeskState), actor, reason)
        self._cancel_requested.update(self._running)
        cancelled_proposals = 0
        for doc in list(self.store.orders.find({"state": S.PENDING_APPROVAL.value})):
            if self.store.transition(doc["_id"], [S.PENDING_APPROVAL], S.CANCELLED, {"reason": reason}, actor=actor):
                cancelled_proposals += 1
        cancelled, errors = await self._cancel_open_children(None, actor)
        for doc in list(self.store.orders.find({"state": {"$in": [S.APPROVED.value]}})):
            if doc["_id"] not in self._running:
                self.store.transition(doc["_id"], [S.APPROVED], S.CANCELLED, {"reason": reason}, actor=actor)
        await self._emit(
            "kill_switch",
            {
                "actor": actor,
                "reason": reason,
                "cancelled_orders": cancelled,
                "cancelled_proposals": cancelled_proposals,
                "errors": errors,
            },
        )
        return {
            "desk": self.store.desk_state(),
            "cancelled_orders": cancelled,
            "cancelled_proposals": cancelled_proposals,
            "errors": errors,
        }

    async def _cancel_open_children(self, order_id: str | None, actor: str) -> tuple[int, list[str]]:
        query: Doc = {"state": {"$in": [S.SUBMITTED.value, S.PARTIALLY_FILLED.value]}}
        if order_id is not None:
            query["order_id"] = order_id
        cancelled = 0
        errors: list[str] = []
        for child in list(self.store.children.find(query)):
            venue = self.venues.get(child["venue"])
            if venue is None:
                errors.append(f"{child['_id']}: unknown venue {child['venue']}")
                continue
            try:
                eo = await venue.cancel_order(child["symbol"], client_order_id=child["_id"])
            except OrderNotFound:
                eo = None
            except Exception as exc:  # reported; reconciliation settles it later
                errors.append(f"{child['_id']}: {exc}")
                continue
            if eo is not None:
                await self._apply_exchange_order(child["_id"], eo)
                cancelled += 1
        return cancelled, errors

    async def cancel_order(self, order_id: str, actor: str) -> ActionResult:
        doc = self.store.get_order(order_id)
        if doc is None:
            return ActionResult("not_found", reasons=[f"no order {order_id}"])
        state = S(doc["state"])
        if state is S.PENDING_APPROVAL:
            new = self.store.transition(
                order_id, [S.PENDING_APPROVAL], S.CANCELLED, {"reason": "cancelled"}, actor=actor
            )
            return ActionResult("cancelled" if new else "already_decided", new or self.store.get_order(order_id))
        if state in TERMINAL:
            return ActionResult("already_decided", doc)
        self._cancel_requested.add(order_id)
        _, errors = await self._cancel_open_children(order_id, actor)
        if order_id not in self._running:
            self.store.orders.update_one({"_id": order_id}, {"$set": {"plan_done": True}})
            await self._refresh_parent(order_id)
        return ActionResult("cancel_requested", self.store.get_order(order_id), reasons=errors)

    # ================================================================== gate views
    def _pending(self, exclude_order: str | None) -> tuple[dict[str, float], dict[str, float], float]:
        buys: dict[str, float] = {}
        sells: dict[str, float] = {}
        marks = self.marks()
        for doc in self.store.orders.find({"state": {"$in": [s.value for s in LIVE]}}):
            if doc["_id"] == exclude_order:
                continue
            remaining = float(doc.get("approved_qty", doc["request"]["qty"])) - float(doc.get("filled_qty", 0.0))
            if remaining <= 0:
                continue
            sym = doc["request"]["symbol"]
            target = buys if doc["request"]["side"] == "buy" else sells
            target[sym] = target.get(sym, 0.0) + remaining
        if exclude_order is not None:
            for child in self.store.children.find(
                {"order_id": exclude_order, "state": {"$in": [s.value for s in AT_VENUE]}}
            ):
                remaining = float(child["qty"]) - float(child.get("filled", 0.0))
                target = buys if child["side"] == "buy" else sells
                target[child["symbol"]] = target.get(child["symbol"], 0.0) + max(remaining, 0.0)
        notional = sum(q * marks.get(s, 0.0) for s, q in buys.items())
        return buys, sells, notional

    def _spendable(self, venue: str | None, pending_buy_notional: float) -> float:
        """Quote cash (one venue, or all) not already promised to open buys, their fees included."""
        return self.portfolio.quote_cash(venue) - pending_buy_notional * (1 + _PENDING_BUY_FEE)

    def portfolio_view(self, *, venue: str | None = None, exclude_order: str | None = None) -> PortfolioView:
        marks = self.marks()
        valuation, peak, day_start = self._mark_to_market()
        book = self._portfolio  # as _mark_to_market just synced it (one version check per view)
        gross, net = book.exposures(marks)  # the priced part (an unknown equity admits reducing orders only)
        buys, sells, pending_notional = self._pending(exclude_order)
        cash = self._spendable(venue, pending_notional)
        since = self.clock() - 60_000
        recent = _count(self.store.children, {"sent_ms": {"$gte": since}})
        return PortfolioView(
            equity=valuation.cash + net if valuation.equity is None else valuation.equity,
            cash_free=cash,
            positions=book.consolidated(),
            gross_notional=gross,
            net_notional=net,
            peak_equity=peak,
            day_start_equity=day_start,
            pending_buy=buys,
            pending_sell=sells,
            pending_buy_notional=pending_notional,
            orders_last_minute=recent,
            desk_state=self.desk_state(),
            halted_symbols=frozenset(self.store.halted_symbols()),
            equity_unknown=valuation.unknown_reason(),
        )

    def check(
        self,
        request: OrderRequest,
        *,
        venue: str | None = None,
        exclude_order: str | None = None,
        qty: float | None = None,
    ) -> Decision:
        market = self._market_view(request.symbol, venue or request.venue)
        view = self.portfolio_view(venue=venue, exclude_order=exclude_order)
        limits, regime = self.limits_for(request)
        decision = RiskGate.check(request.intent(qty), view, market, limits)
        if regime is not None:
            _note_regime(decision, regime)
        if not decision.approved:
            for result in decision.checks:
                if not result.passed:
                    GATE_REJECTIONS.labels(result.name).inc()
        if decision.desk_transition is not None:
            self._escalate(decision.desk_transition, "; ".join(decision.reasons) or "limit breach")
        return decision

    def _check_exit_levels(self, request: OrderRequest, decision: Decision) -> None:
        """Refuse (in `decision`) a stop-loss or take-profit on the wrong side of the market or of the limit price:
        a buy's stop above the bid would sell the moment the buy fills."""
        if request.stop_loss is None and request.take_profit is None:
            return
        market = self._market_view(request.symbol, request.venue)
        problems = exit_level_problems(
            request.side.value,
            stop_loss=request.stop_loss,
            take_profit=request.take_profit,
            bid=market.bid,
            ask=market.ask,
            limit_price=decision.price if request.type is OrderType.LIMIT else None,
            tick=market.market.price_precision if market.market is not None else None,
        )
        if problems:
            decision.approved = False
            decision.reasons.extend(problems)
            decision.checks.append(CheckResult("exit_levels", False, None, "; ".join(problems)))

    # ================================================================== proposals and approvals
    def propose(self, request: OrderRequest, requester: str, *, source: str = "user") -> ActionResult:
        """Record a proposal; the gate runs now. Passing -> pending_approval (with expiry); failing -> rejected."""
        if request.venue is not None and request.venue not in self.venues:
            raise TradingError(f"unknown venue {request.venue}; venues: {', '.join(self.venues)}")
        invalid = request.invalid()
        if invalid is not None:
            raise TradingError(invalid)
        order_id = uuid.uuid4().hex[:16]
        now = self.clock()
        self.store.insert_order(
            {
                "_id": order_id,
                "state": S.PROPOSED.value,
                "request": request.to_doc(),
                "requester": requester,
                "source": source,
                "created_ms": now,
                "updated_ms": now,
                "version": 0,
                "child_seq": 0,
                "filled_qty": 0.0,
                "avg_price": None,
                "fee_quote": 0.0,
            }
        )
        self.store.audit("order.proposed", requester, order_id, source=source, request=request.to_doc())
        try:
            decision = self.check(request)
        except MarketDataUnavailable as exc:
            doc = self.store.transition(order_id, [S.PROPOSED], S.REJECTED, {"reasons": [str(exc)]}, actor="risk")
            return ActionResult("rejected", doc, reasons=[str(exc)])
        except Exception as exc:  # never a stuck `proposed` order: any failure before a decision is a refusal
            log.exception("risk check failed for order %s", order_id)
            reason = _check_failed(exc)
            doc = self.store.transition(order_id, [S.PROPOSED], S.REJECTED, {"reasons": [reason]}, actor="risk")
            return ActionResult("rejected", doc, reasons=[reason])
        self._check_exit_levels(request, decision)
        if not decision.approved:
            doc = self.store.transition(
                order_id,
                [S.PROPOSED],
                S.REJECTED,
                {"reasons": decision.reasons, "decision": decision.to_dict()},
                actor="risk",
            )
            return ActionResult("rejected", doc, reasons=decision.reasons)
        doc = self.store.transition(
            order_id,
            [S.PROPOSED],
            S.PENDING_APPROVAL,
            {
                "decision": decision.to_dict(),
                "proposed_qty": decision.qty,
                "limit_price": decision.price,
                "expires_ms": now + self.config.approval_ttl_s * 1000,
                "headroom": decision.headroom_text(),
            },
            actor="risk",
        )
        return ActionResult("pending_approval", doc, reasons=decision.reasons)

    async def propose_async(self, request: OrderRequest, requester: str, *, source: str = "user") -> ActionResult:
        await self.refresh_market([request.symbol])
        return self.propose(request, requester, source=source)

    def expire_due(self) -> int:
        """Expire every pending approval past its deadline (expiry means reject)."""
        n = 0
        for doc in list(
            self.store.orders.find({"state": S.PENDING_APPROVAL.value, "expires_ms": {"$lte": self.clock()}})
        ):
            if self.store.transition(doc["_id"], [S.PENDING_APPROVAL], S.EXPIRED, {"reason": "approval expired"}):
                n += 1
        # A proposal is decided within the request that made it; one still `proposed` a minute later lost its
        # process between the record and the decision: it is refused, never left undecided.
        orphan = "no risk decision was recorded (the process stopped between the proposal and its check)"
        for doc in list(
            self.store.orders.find({"state": S.PROPOSED.value, "created_ms": {"$lte": self.clock() - 60_000}})
        ):
            if self.store.transition(doc["_id"], [S.PROPOSED], S.REJECTED, {"reasons": [orphan]}, actor="risk"):
                n += 1
        return n

    def reject(
        self, order_id: str, approver: str, reason: str = "rejected by approver", *, preauthorised: bool = False
    ) -> ActionResult:
        doc = self.store.get_order(order_id)
        if doc is None:
            return ActionResult("not_found", reasons=[f"no order {order_id}"])
        if not preauthorised and self.config.approvers is not None and approver not in self.config.approvers:
            return ActionResult("forbidden", doc, reasons=[f"{approver} is not an approver"])
        new = self.store.transition(
            order_id, [S.PENDING_APPROVAL], S.REJECTED, {"rejected_by": approver, "reasons": [reason]}, actor=approver
        )
        if new is None:
            return ActionResult("already_decided", self.store.get_order(order_id))
        self.store.approvals.update_one(
            {"_id": order_id},
            {"$setOnInsert": {"decision": "reject", "by": approver, "ts_ms": self.clock(), "reason": reason}},
            upsert=True,
        )
        return ActionResult("rejected", new, reasons=[reason])

    async def approve(
        self, order_id: str, approver: str, *, execute: bool = True, preauthorised: bool = False
    ) -> ActionResult:
        """`preauthorised`: the front door already checked this person's right to approve (an API key with the
        `approve` scope); the approver allowlist (Slack user ids) then does not apply. Four-eyes always does."""
        doc = self.store.get_order(order_id)
        if doc is None:
            return ActionResult("not_found", reasons=[f"no order {order_id}"])
        if doc["state"] != S.PENDING_APPROVAL.value:
            return ActionResult("already_decided", doc, reasons=[f"order is {doc['state']}"])
        if not preauthorised and self.config.approvers is not None and approver not in self.config.approvers:
            return ActionResult("forbidden", doc, reasons=[f"{approver} is not an approver"])
        if self.config.four_eyes and approver == doc.get("requester"):
            return ActionResult("forbidden", doc, reasons=["four-eyes: the requester cannot approve their own order"])
        if self.clock() >= int(doc["expires_ms"]):
            new = self.store.transition(
                order_id, [S.PENDING_APPROVAL], S.EXPIRED, {"reason": "approval expired"}, actor=approver
            )
            return ActionResult(
                "expired" if new else "already_decided",
                new or self.store.get_order(order_id),
                reasons=["approval expired"],
            )
        request = OrderRequest.from_doc(doc["request"])
        decision: Decision | None = None
        try:
            await self.refresh_market([request.symbol])
            decision = self.check(request, exclude_order=order_id)
            self._check_exit_levels(request, decision)
            reasons = decision.reasons
        except MarketDataUnavailable as exc:
            reasons = [str(exc)]
        except Exception as exc:  # a failed check refuses the approval (recorded below), never leaves it pending
            log.exception("risk check failed at approval of order %s", order_id)
            decision, reasons = None, [_check_failed(exc)]
        if decision is None or not decision.approved:
            new = self.store.transition(
                order_id,
                [S.PENDING_APPROVAL],
                S.REJECTED,
                {"reasons": reasons, "rejected_by": "risk"},
                actor="risk",
                note="gate failed at approval",
            )
            return ActionResult(
                "rejected" if new else "already_decided", new or self.store.get_order(order_id), reasons=reasons
            )
        qty = min(decision.qty, float(doc.get("proposed_qty", request.qty)))
        new = self.store.transition(
            order_id,
            [S.PENDING_APPROVAL],
            S.APPROVED,
            {
                "approved_by": approver,
                "approved_ms": self.clock(),
                "approved_qty": qty,
                "approval_decision": decision.to_dict(),
            },
            actor=approver,
        )
        if new is None:  # someone else decided between our read and our write
            return ActionResult("already_decided", self.store.get_order(order_id))
        self.store.approvals.update_one(
            {"_id": order_id},
            {"$setOnInsert": {"decision": "approve", "by": approver, "ts_ms": self.clock()}},
            upsert=True,
        )
        if not execute:
            return ActionResult("approved", new)
        await self.execute(order_id)
        final = self.store.get_order(order_id)
        fills = list(self.store.fills.find({"order_id": order_id}).sort([("seq", ASCENDING)]))
        # the reply states where the order really is: `executed` only when it filled; otherwise its state
        # (`submitted` for a resting limit order, `partially_filled`, `failed`, `unresolved`, ...)
        state = str((final or {}).get("state") or "")
        status = "executed" if state in ("", S.FILLED.value) else state
        return ActionResult(status, final, fills, reasons=(final or {}).get("reasons", []))

    # ================================================================== execution
    async def _vwap_weights(self, request: OrderRequest) -> list[float]:
        """Volume share of each slice's hour over the last week of hourly candles (uniform when unavailable)."""
        n = max(1, request.slices)
        venue: Any = self.venues[request.venue or self.default_venue]
        fetch = getattr(venue, "fetch_ohlcv", None) or getattr(getattr(venue, "source", None), "fetch_ohlcv", None)
        if fetch is None:
            return [1.0] * n
        try:
            candles = await fetch(request.symbol, "1h", None, 168)
        except Exception as exc:  # no candles: fall back to an even schedule
            log.info("vwap profile unavailable (%s); using even slices", exc)
            return [1.0] * n
        hourly = volume_profile(candles, 24)
        start_hour = (self.clock() // 3_600_000) % 24
        span_h = max(request.duration_s / 3600.0, 1e-9)
        return [hourly[int(start_hour + i * span_h / n) % 24] + 1e-12 for i in range(n)]

    async def _plan(self, request: OrderRequest, qty: float) -> list[Slice]:
        mkt = self._market(request.venue or self.default_venue, request.symbol)
        step = mkt.amount_precision if mkt else None
        min_qty = (mkt.min_amount or 0.0) if mkt else 0.0
        if request.algo is Algo.TWAP:
            return twap(qty, max(1, request.slices), request.duration_s, step=step, min_qty=min_qty)
        if request.algo is Algo.VWAP:
            weights = await self._vwap_weights(request)
            return vwap(qty, weights, request.duration_s, step=step, min_qty=min_qty)
        if request.algo is Algo.ICEBERG:
            return iceberg(qty, request.display_qty or qty, step=step, min_qty=min_qty)
        return [Slice(0, qty, 0.0)]

    async def execute(self, order_id: str, slices: list[Slice] | None = None) -> Doc | None:
        """Send an approved order: algo slices x router allocations, each child gated right before sending."""
        doc = self.store.get_order(order_id)
        if doc is None or doc["state"] != S.APPROVED.value or order_id in self._running:
            return doc
        self._running.add(order_id)
        try:
            request = OrderRequest.from_doc(doc["request"])
            qty = float(doc.get("approved_qty", request.qty))
            plan = slices if slices is not None else await self._plan(request, qty)
            start = time.monotonic()
            sent_any = False
            stop_reason: str | None = None
            for sl in plan:
                if order_id in self._cancel_requested:
                    stop_reason = "cancel requested"
                    break
                wait = sl.offset_s - (time.monotonic() - start)
                if wait > 0:
                    await self.sleep(wait)
                stop_reason = await self._send_slice(order_id, request, sl, sent_any)
                sent_any = sent_any or bool(_count(self.store.children, {"order_id": order_id}))
                if stop_reason:
                    break
                if sl.wait_for_previous:
                    await self._await_children(order_id)
            fields: Doc = {"plan_done": True}
            if stop_reason:
                fields["stop_reason"] = stop_reason
            self.store.orders.update_one({"_id": order_id}, {"$set": fields})
            if not sent_any:
                self.store.transition(
                    order_id,
                    [S.APPROVED],
                    S.REJECTED,
                    {"reasons": [stop_reason or "nothing to send"]},
                    actor="risk",
                    note="nothing sent",
                )
        finally:
            self._running.discard(order_id)
            self._cancel_requested.discard(order_id)
        await self._refresh_parent(order_id)
        return self.store.get_order(order_id)

    async def _await_children(self, order_id: str) -> None:
        deadline = time.monotonic() + self.config.iceberg_wait_s
        while time.monotonic() < deadline:
            open_children = list(
                self.store.children.find(
                    {"order_id": order_id, "state": {"$in": [S.SUBMITTED.value, S.PARTIALLY_FILLED.value]}}
                )
            )
            if not open_children:
                return
            for child in open_children:
                venue = self.venues[child["venue"]]
                try:
                    eo = await venue.fetch_order_by_client_id(child["symbol"], child["_id"])
                except Exception:  # keep waiting; reconciliation settles it
                    eo = None
                if eo is not None:
                    await self._apply_exchange_order(child["_id"], eo)
            await self.sleep(self.config.poll_interval_s)
        await self._cancel_open_children(order_id, "iceberg-timeout")

    async def _send_slice(self, order_id: str, request: OrderRequest, sl: Slice, sent_any: bool) -> str | None:
        """Route one slice and send its children. Returns a reason to stop the parent, or None."""
        doc = self.store.get_order(order_id)
        assert doc is not None
        remaining = float(doc.get("approved_qty", request.qty)) - self._committed_qty(order_id)
        qty = min(sl.qty, remaining)
        if qty <= _EPS:
            return None
        venues = [request.venue] if request.venue else list(self.venues)
        try:
            await self.refresh_market([request.symbol])
        except Exception as exc:  # a book failure only narrows the choice of venues
            log.warning("refresh before routing failed: %s", exc)
        quotes: list[VenueQuote] = []
        with_book: list[str] = []
        for name in venues:
            book = self._fresh_book(name, request.symbol)
            mkt = self._market(name, request.symbol)
            if book is None or mkt is None:
                continue
            with_book.append(name)
            cap = self._venue_capacity(order_id, request, name, book, mkt)
            if cap > _EPS:
                quotes.append(VenueQuote(name, book, mkt.taker_fee, cap))
        if not with_book:
            return f"no venue with a fresh book for {request.symbol}"
        if not quotes:
            what = "quote balance" if request.side is Side.BUY else f"{split_symbol(request.symbol)[0]} balance"
            return f"no venue has the {what} for {request.symbol} ({', '.join(with_book)})"
        limit = request.limit_price if request.type is OrderType.LIMIT else None
        if len(quotes) == 1:
            allocations = [(quotes[0].venue, min(qty, quotes[0].max_qty))]
        else:
            plan = route(request.side, qty, quotes, limit_price=limit)
            allocations = [(a.venue, a.qty) for a in plan.allocations]
            if request.type is OrderType.LIMIT:
                # the rest of a limit order rests where funds remain, best single venue first
                best = plan.best_single_venue or quotes[0].venue
                for vq in sorted(quotes, key=lambda x: x.venue != best):
                    placed = sum(x for _, x in allocations)
                    room = vq.max_qty - sum(x for v, x in allocations if v == vq.venue)
                    if qty - placed <= _EPS:
                        break
                    if room > _EPS:
                        allocations.append((vq.venue, min(room, qty - placed)))
            if not allocations:
                return f"no liquidity for {request.symbol} on {', '.join(q.venue for q in quotes)}"
        unplaced = qty - sum(x for _, x in allocations)
        if unplaced > _EPS:
            self.store.audit(
                "route.capped", "oms", order_id, qty=qty, unplaced=unplaced, why="venue balances", venues=with_book
            )
        merged: dict[str, float] = {}
        for venue, q in allocations:
            merged[venue] = merged.get(venue, 0.0) + q
        for venue, q in merged.items():
            reason = await self._send_child(order_id, request, venue, q)
            if reason:
                return reason
        return None

    def _venue_capacity(
        self, order_id: str, request: OrderRequest, venue: str, book: OrderBook, mkt: Market
    ) -> float:
        """What this venue's own balance allows (base qty): its base holding for sells; for buys the quote cash
        the gate would count for a child here (fees included), at the gate's price for the order type."""
        base, quote = split_symbol(request.symbol)
        if request.side is Side.SELL:
            held = self.portfolio.cash.get(venue, {}).get(base, 0.0)
            resting = sum(  # base the venue holds for our open sells there
                max(0.0, float(c["qty"]) - float(c.get("filled", 0.0)))
                for c in self.store.children.find(
                    {"venue": venue, "symbol": request.symbol, "side": "sell",
                     "state": {"$in": [s.value for s in AT_VENUE]}}
                )
            )
            return max(0.0, held - resting)
        # the gate's spendable cash for a child here (without the mark-to-market writes of a whole portfolio view)
        pending_notional = self._pending(order_id)[2]
        cash = min(self._spendable(venue, pending_notional), self.portfolio.cash.get(venue, {}).get(quote, 0.0))
        if cash <= 0 or book.best_ask is None:
            return 0.0
        limits, _ = self.limits_for(request)
        if request.type is OrderType.LIMIT and request.limit_price:
            ref = request.limit_price
        else:
            ref = book.best_ask * (1.0 + limits.market_slippage_pct)
        gate_cap = cash / (ref * (1.0 + mkt.taker_fee))
        limit = request.limit_price if request.type is OrderType.LIMIT else None
        cap = min(gate_cap, affordable_qty(book, cash, mkt.taker_fee, limit_price=limit))
        step = mkt.amount_precision
        # floored to the venue's step, so the gate's own rounding never leaves a sliver of the split unsent
        return math.floor(cap / step + 1e-9) * step if step and step > 0 else cap

    def _committed_qty(self, order_id: str) -> float:
        """Quantity already sent (at venue or filled), so slices never exceed the approved quantity."""
        total = 0.0
        for child in self.store.children.find({"order_id": order_id}):
            st = S(child["state"])
            if st in AT_VENUE or st is S.APPROVED:
                total += float(child["qty"])
            else:
                total += float(child.get("filled", 0.0))
        return total

    async def _send_child(
        self, order_id: str, request: OrderRequest, venue_name: str, qty: float, native: NativeStop | None = None
    ) -> str | None:
        """Gate, record and send one child order (`native`: as a stop the venue holds until its trigger trades)."""
        venue = self.venues[venue_name]
        decision = self.check(request, venue=venue_name, exclude_order=order_id, qty=qty)
        if not decision.approved:
            self.store.audit(
                "child.gate_rejected", "risk", order_id, venue=venue_name, qty=qty, reasons=decision.reasons
            )
            return "risk gate rejected child order: " + "; ".join(decision.reasons)
        seq = self.store.next_child_seq(order_id)
        coid = f"cqa-{order_id}-{seq}"
        now = self.clock()
        child: Doc = {
            "_id": coid,
            "order_id": order_id,
            "seq": seq,
            "venue": venue_name,
            "symbol": request.symbol,
            "side": request.side.value,
            "type": native.kind if native else request.type.value,
            "qty": decision.qty,
            "price": native.limit if native else decision.price,
            "trigger": native.trigger if native else None,
            "trail_pct": native.trail_pct if native else None,
            "state": S.APPROVED.value,
            "acked": False,
            "filled": 0.0,
            "avg_price": None,
            "fee_cost": 0.0,
            "fee_currency": None,
            "created_ms": now,
            "updated_ms": now,
            "version": 0,
        }
        self.store.insert_child(child)
        # Mark as submitted BEFORE sending: after this line the child is never sent again.
        sent = self.store.transition(
            coid, [S.APPROVED], S.SUBMITTED, {"sent_ms": self.clock()}, collection="children", actor="oms"
        )
        if sent is None:
            return "child order changed state before sending"
        parent = self.store.get_order(order_id)
        if parent is not None and parent["state"] == S.APPROVED.value:
            self.store.transition(order_id, [S.APPROVED], S.SUBMITTED, actor="oms")
        try:
            if native is None:
                eo = await venue.create_order(
                    request.symbol, request.side, request.type, decision.qty, decision.price, client_order_id=coid
                )
            else:
                assert isinstance(venue, NativeStopVenue)
                eo = await venue.create_stop_order(
                    request.symbol, request.side, decision.qty, native.trigger, native.limit, client_order_id=coid,
                    trail_pct=native.trail_pct,
                )
        except OrderRejected as exc:
            self.store.transition(
                coid,
                [S.SUBMITTED],
                S.FAILED,
                {"error": str(exc), "acked": True},
                collection="children",
                actor=venue_name,
            )
            return f"venue {venue_name} rejected the order: {exc}"
        except Exception as exc:  # outcome unknown: never re-send; the reconciler asks the venue by client id
            self.store.transition(
                coid,
                [S.SUBMITTED],
                S.UNRESOLVED,
                {"error": f"{type(exc).__name__}: {exc}"},
                collection="children",
                actor="oms",
            )
            await self._emit(
                "order_unresolved",
                {"order_id": order_id, "client_order_id": coid, "venue": venue_name, "error": str(exc)},
            )
            return f"outcome unknown at {venue_name}: {exc}"
        await self._apply_exchange_order(coid, eo)
        return None

    # ================================================================== applying venue reports
    async def _apply_exchange_order(self, coid: str, eo: ExchangeOrder) -> bool:
        """Record what the venue says about a child: fills (once), state. Returns True on a change."""
        async with self._apply_lock:
            child = self.store.get_child(coid)
            if child is None:
                return False
            old_filled = float(child.get("filled", 0.0))
            new_filled = float(eo.filled)
            if new_filled < old_filled - 1e-9:
                await self._mismatch(child, f"venue reports filled {new_filled} < recorded {old_filled}")
                return False
            frm = S(child["state"])
            to = exchange_status_to_state(eo.status, new_filled, float(child["qty"]))
            if frm in TERMINAL:
                if new_filled > old_filled + 1e-9:
                    await self._mismatch(child, f"fills after terminal state {frm.value}")
                return False
            if to is S.UNRESOLVED or (to is frm and abs(new_filled - old_filled) <= 1e-12 and child.get("acked")):
                return False
            if to is S.SUBMITTED and frm is S.PARTIALLY_FILLED:
                to = S.PARTIALLY_FILLED
            if new_filled > old_filled + 1e-12:
                delta = new_filled - old_filled
                avg_new = eo.average if eo.average else (eo.price or 0.0)
                old_avg = float(child.get("avg_price") or 0.0)
                price = (avg_new * new_filled - old_avg * old_filled) / delta
                fee_delta = max(0.0, float(eo.fee_cost) - float(child.get("fee_cost", 0.0)))
                fill = {
                    "_id": f"{coid}:{new_filled:.12g}",
                    "order_id": child["order_id"],
                    "client_order_id": coid,
                    "venue": child["venue"],
                    "symbol": child["symbol"],
                    "side": child["side"],
                    "qty": delta,
                    "price": price,
                    "fee_cost": fee_delta,
                    "fee_currency": eo.fee_currency,
                    "ts_ms": self.clock(),
                }
                if self.store.record_fill(fill):
                    self._sync_portfolio()  # folds ours in (with any another process recorded meanwhile)
            updated = self.store.update_child_fill(
                child,
                to,
                {
                    "filled": new_filled,
                    "avg_price": eo.average,
                    "fee_cost": float(eo.fee_cost),
                    "fee_currency": eo.fee_currency,
                    "acked": True,
                    "exchange_order_id": eo.exchange_order_id,
                    "exchange_status": eo.status,
                },
            )
        if updated is not None:
            await self._refresh_parent(child["order_id"])
        return updated is not None

    async def _mismatch(self, child: Doc, why: str) -> None:
        self.store.halt_symbol(child["symbol"], f"reconciliation mismatch on {child['_id']}: {why}")
        await self._emit(
            "reconcile_mismatch",
            {
                "order_id": child["order_id"],
                "client_order_id": child["_id"],
                "venue": child["venue"],
                "symbol": child["symbol"],
                "why": why,
            },
        )

    async def _refresh_parent(self, order_id: str) -> None:
        """Derive the parent's fill totals and state from its children."""
        parent = self.store.get_order(order_id)
        if parent is None:
            return
        pstate = S(parent["state"])
        if pstate in TERMINAL or pstate in (S.PROPOSED, S.PENDING_APPROVAL):
            return
        children = self.store.children_of(order_id)
        filled = sum(float(c.get("filled", 0.0)) for c in children)
        cost = sum(float(c.get("filled", 0.0)) * float(c.get("avg_price") or 0.0) for c in children)
        fills = list(self.store.fills.find({"order_id": order_id}))
        fee_quote = sum(
            float(f["fee_cost"]) * (float(f["price"]) if f.get("fee_currency") == split_symbol(f["symbol"])[0] else 1.0)
            for f in fills
        )
        totals = {"filled_qty": filled, "avg_price": cost / filled if filled > 0 else None, "fee_quote": fee_quote}
        states = [S(c["state"]) for c in children]
        approved_qty = float(parent.get("approved_qty", parent["request"]["qty"]))
        plan_done = bool(parent.get("plan_done")) and order_id not in self._running
        if any(s is S.UNRESOLVED for s in states):
            target = S.UNRESOLVED
        elif plan_done and all(s in TERMINAL for s in states):
            if filled >= approved_qty * (1 - 1e-9) and filled > 0:
                target = S.FILLED
            elif filled > 0 or any(s is S.CANCELLED for s in states):
                target = S.CANCELLED
            else:
                target = S.FAILED
        elif filled > 0:
            target = S.PARTIALLY_FILLED
        else:
            target = S.SUBMITTED
        if target is pstate:
            self.store.update_fields(order_id, pstate, totals)
            return
        if pstate is S.APPROVED and target not in (S.SUBMITTED, S.CANCELLED, S.FAILED, S.UNRESOLVED):
            self.store.transition(order_id, [S.APPROVED], S.SUBMITTED, actor="oms")
            pstate = S.SUBMITTED
        if target is S.SUBMITTED and pstate is S.PARTIALLY_FILLED:
            self.store.update_fields(order_id, pstate, totals)
            return
        new = self.store.transition(order_id, [pstate], target, totals, actor="oms")
        if new is not None and (target is S.FILLED or (target is S.CANCELLED and filled > 0)):
            self._arm_stops(order_id)
            await self._place_native_stops(order_id)
        if new is not None and target in TERMINAL and new.get("native_stop"):
            await self._native_stop_ended(new)

    # ================================================================== reconciliation
    async def reconcile(self, *, startup: bool = True) -> ReconcileReport:
        """Settle every child that is (or may be) at a venue from the venue's own record, by client order id.

        `startup=False` is the timer's pass while other desk processes (a CLI command, a second worker) may be
        executing against the same database: it leaves alone what only a crash explains (children never marked
        sent, parents whose plan is unfinished) and children sent in the last `RECONCILE_GRACE_MS`, whose answer
        may still be on its way to the process that sent them.
        """
        report = ReconcileReport()
        recent = self.clock() - RECONCILE_GRACE_MS
        # children created but never marked sent (crash between insert and send): they were never sent
        for child in list(self.store.children.find({"state": S.APPROVED.value}) if startup else []):
            if child["order_id"] in self._running:
                continue
            self.store.transition(
                child["_id"],
                [S.APPROVED],
                S.CANCELLED,
                {"reason": "never sent (restart)"},
                collection="children",
                actor="reconcile",
            )
        for child in list(self.store.children.find({"state": {"$in": [s.value for s in AT_VENUE]}})):
            if S(child["state"]) is S.SUBMITTED and not child.get("acked"):
                if child["order_id"] in self._running:
                    continue  # being sent right now by this process
                if not startup and int(child.get("sent_ms") or child.get("created_ms") or 0) > recent:
                    continue  # perhaps being sent right now by another process
            report.checked += 1
            venue = self.venues.get(child["venue"])
            if venue is None:
                report.errors.append(f"{child['_id']}: venue {child['venue']} not configured")
                continue
            try:
                eo = await venue.fetch_order_by_client_id(child["symbol"], child["_id"])
            except Exception as exc:  # venue down: try again next time
                report.errors.append(f"{child['_id']}: {exc}")
                continue
            if eo is None:
                if child.get("acked"):
                    report.mismatches.append(child["_id"])
                    await self._mismatch(child, "venue does not know an order it acknowledged")
                    self.store.transition(
                        child["_id"],
                        [S(child["state"])],
                        S.UNRESOLVED,
                        {"error": "missing at venue"},
                        collection="children",
                        actor="reconcile",
                    )
                elif child["state"] != S.UNRESOLVED.value:
                    self.store.transition(
                        child["_id"],
                        [S.SUBMITTED],
                        S.UNRESOLVED,
                        {"error": "not found at venue after send; outcome unknown"},
                        collection="children",
                        actor="reconcile",
                    )
                    await self._refresh_parent(child["order_id"])
                report.unresolved += 1
                continue
            if await self._apply_exchange_order(child["_id"], eo):
                report.updated += 1
            if self.store.children.find_one({"_id": child["_id"], "state": S.UNRESOLVED.value}):
                report.unresolved += 1
        # venue orders with our prefix that we have no record of
        for name, venue in self.venues.items():
            try:
                open_orders = await venue.fetch_open_orders(None)
            except Exception as exc:  # not every venue lists all symbols at once
                report.errors.append(f"{name} open orders: {exc}")
                continue
            for eo in open_orders:
                if eo.client_order_id.startswith("cqa-") and self.store.get_child(eo.client_order_id) is None:
                    report.mismatches.append(eo.client_order_id)
                    self.store.halt_symbol(eo.symbol, f"unknown open order {eo.client_order_id} at {name}")
                    await self._emit(
                        "reconcile_mismatch",
                        {
                            "client_order_id": eo.client_order_id,
                            "venue": name,
                            "symbol": eo.symbol,
                            "why": "unknown open order",
                        },
                    )
        # parents whose execution was interrupted (restart): finish them from their children
        for parent in list(self.store.orders.find({"state": {"$in": [s.value for s in LIVE]}})):
            if parent["_id"] in self._running or (not startup and not parent.get("plan_done")):
                continue
            if not parent.get("plan_done"):
                self.store.orders.update_one(
                    {"_id": parent["_id"]},
                    {"$set": {"plan_done": True, "stop_reason": "execution interrupted (restart); remainder not sent"}},
                )
                if S(parent["state"]) is S.APPROVED and not self.store.children_of(parent["_id"]):
                    self.store.transition(
                        parent["_id"],
                        [S.APPROVED],
                        S.CANCELLED,
                        {"reason": "execution interrupted before sending"},
                        actor="reconcile",
                    )
                    report.finalized_orders += 1
                    continue
            before = parent["state"]
            await self._refresh_parent(parent["_id"])
            after = self.store.get_order(parent["_id"])
            if after is not None and after["state"] != before:
                report.finalized_orders += 1
        self.store.audit("reconcile", "system", None, **{k: v for k, v in report.to_dict().items()})
        return report

    async def resolve_unresolved(self, client_order_id: str, actor: str, outcome: str) -> bool:
        """Admin: settle an unresolved child whose venue record is gone ('failed' = never executed)."""
        if outcome not in ("failed", "cancelled"):
            raise TradingError("outcome must be 'failed' or 'cancelled'")
        child = self.store.get_child(client_order_id)
        if child is None or child["state"] != S.UNRESOLVED.value:
            return False
        ok = (
            self.store.transition(
                client_order_id, [S.UNRESOLVED], S(outcome), {"resolved_by": actor}, collection="children", actor=actor
            )
            is not None
        )
        await self._refresh_parent(child["order_id"])
        return ok

    # ================================================================== stops
    def _arm_stops(self, order_id: str) -> None:
        doc = self.store.get_order(order_id)
        if doc is None or doc["request"]["side"] != "buy":
            return
        req = OrderRequest.from_doc(doc["request"])
        qty = float(doc.get("filled_qty", 0.0))
        if qty <= 0:
            return
        rules: list[StopRule] = []
        if req.stop_loss:
            rules.append(StopRule(f"{order_id}-sl", req.symbol, qty, StopKind.STOP_LOSS, req.stop_loss, order_id))
        if req.take_profit:
            rules.append(StopRule(f"{order_id}-tp", req.symbol, qty, StopKind.TAKE_PROFIT, req.take_profit, order_id))
        if req.trailing_stop_pct:
            px = float(doc.get("avg_price") or 0.0)
            if px > 0:
                rules.append(trailing(f"{order_id}-ts", req.symbol, qty, px, req.trailing_stop_pct, order_id))
        for r in rules:
            self.store.stops.update_one({"_id": r.id}, {"$setOnInsert": r.to_doc()}, upsert=True)
            self.store.audit("stop.armed", "oms", order_id, id=r.id, kind=r.kind.value, trigger=r.trigger)

    # ------------------------------------------------------------------ stops held by the venue
    async def _place_native_stops(self, order_id: str) -> None:
        """Place the stop an executed buy armed on the venues that hold stops themselves, one reduce-only sell stop
        per venue for what was bought there. It passes the gate now, exactly like the desk's own exit would, and is
        approved by the order that armed it. A spot venue locks the base for one sell, so a group gets one venue
        stop: its stop-loss, else its trailing stop where every venue can trail it. Where a venue cannot hold it,
        or the gate or the venue refuses it, the desk keeps watching the rule (as it does every take-profit, and
        every stop on the simulated venue).
        """
        if not self.config.native_stops:
            return
        armed = [StopRule.from_doc(d) for d in self.store.stops.find({"group": order_id, "active": True})]
        by_venue = filled_by_venue(self.store.children_of(order_id))
        if not armed or not by_venue:
            return
        symbol = armed[0].symbol
        kinds: dict[str, str | None] = {}
        trails = True
        for venue_name in by_venue:
            venue = self.venues.get(venue_name)
            if isinstance(venue, NativeStopVenue):
                kinds[venue_name] = venue.native_stop_kind(symbol)
                trails = trails and venue.native_trailing(symbol)
            else:
                kinds[venue_name], trails = None, False
        if None in kinds.values():
            return  # the desk fires a rule for the whole position or not at all: it watches this one
        rule = next((r for r in armed if r.kind is StopKind.STOP_LOSS), None)
        if rule is None and trails:
            rule = next((r for r in armed if r.kind is StopKind.TRAILING_STOP and venue_trails(r.trail_pct)), None)
        if rule is None:
            return
        placed: list[str] = []
        for venue_name, qty in sorted(by_venue.items()):
            exit_id = await self._send_native_stop(rule, venue_name, min(qty, rule.qty), str(kinds[venue_name]))
            if exit_id is None:
                break
            placed.append(exit_id)
        else:
            return
        # one venue refused: a partly venue-held rule would leave the rest unwatched, so the desk keeps it all
        if placed:
            await self._cancel_natives(self._live_natives(rule.group), "another venue refused its part")

    async def _send_native_stop(self, rule: StopRule, venue_name: str, qty: float, kind: str) -> str | None:
        request = OrderRequest(
            symbol=rule.symbol,
            side=Side.SELL,
            qty=qty,
            venue=venue_name,
            reduce_only=True,
            allow_resize=True,
            note=f"native {rule.kind.value} {rule.id} at {rule.trigger}",
        )
        market = self._market(venue_name, rule.symbol)
        try:
            spec = native_spec(
                rule.id, kind, rule.trigger, self.config.native_stop_limit_pct,
                market.price_precision if market else None,
                rule.trail_pct if rule.kind is StopKind.TRAILING_STOP else None,
            )
        except ValueError as exc:
            self.store.audit(
                "stop.native_refused", "desk:stops", None, id=rule.id, venue=venue_name, reasons=[str(exc)]
            )
            return None
        result = self.propose(request, "desk:stops", source="stop")
        if result.status != "pending_approval" or result.order is None:
            self.store.audit(
                "stop.native_refused", "desk:stops", None, id=rule.id, venue=venue_name, reasons=result.reasons
            )
            return None
        exit_id = str(result.order["_id"])
        approved = self.store.transition(
            exit_id,
            [S.PENDING_APPROVAL],
            S.APPROVED,
            {
                "approved_by": f"stop:{rule.id}",
                "approved_ms": self.clock(),
                "approved_qty": float(result.order.get("proposed_qty") or qty),
                "native_stop": rule.id,
                "stop_group": rule.group,
            },
            actor="desk:stops",
        )
        if approved is None:
            return None
        # linked before sending: a crash after the send still finds the venue stop through its rule
        linked = [*self._native_ids(rule.id), exit_id]
        self.store.stops.update_one({"_id": rule.id}, {"$set": {"native_orders": linked}})
        self._running.add(exit_id)
        try:
            reason = await self._send_child(exit_id, request, venue_name, qty, native=spec)
            fields: Doc = {"plan_done": True}
            if reason:
                fields["stop_reason"] = reason
            self.store.orders.update_one({"_id": exit_id}, {"$set": fields})
            if not self.store.children_of(exit_id):
                self.store.transition(
                    exit_id, [S.APPROVED], S.REJECTED, {"reasons": [reason or "nothing sent"]}, actor="risk"
                )
        finally:
            self._running.discard(exit_id)
        await self._refresh_parent(exit_id)
        final = self.store.get_order(exit_id) or {}
        if S(final.get("state", S.FAILED.value)) in (S.REJECTED, S.FAILED):
            await self._emit(
                "stop_native_refused",
                {"rule": rule.id, "symbol": rule.symbol, "venue": venue_name, "reason": reason, "watched": True},
            )
            return None
        self.store.audit("stop.native_placed", "desk:stops", exit_id, id=rule.id, venue=venue_name, kind=spec.kind,
                         trigger=spec.trigger, limit=spec.limit, qty=qty)
        return exit_id

    def _native_ids(self, rule_id: str) -> list[str]:
        doc = self.store.stops.find_one({"_id": rule_id}, {"native_orders": 1})
        return list((doc or {}).get("native_orders") or [])

    def _live_natives(self, group: str, rule_id: str | None = None) -> list[Doc]:
        """The group's (or one rule's) venue-held stops that are (or may be) still at a venue."""
        query: Doc = {"stop_group": group, "state": {"$in": [st.value for st in LIVE]}}
        if rule_id is not None:
            query["native_stop"] = rule_id
        return list(self.store.orders.find(query))

    async def _poll_natives(self, exits: list[Doc]) -> None:
        """Ask the venues what became of these stops now (the reconcile timer would, later)."""
        for exit_doc in exits:
            for child in self.store.children_of(exit_doc["_id"]):
                if S(child["state"]) not in AT_VENUE:
                    continue
                try:
                    eo = await self.venues[child["venue"]].fetch_order_by_client_id(child["symbol"], child["_id"])
                except Exception as exc:  # the venue is down: reconciliation settles it later
                    log.warning("stop %s: venue %s did not answer: %s", child["_id"], child["venue"], exc)
                    continue
                if eo is not None:
                    await self._apply_exchange_order(child["_id"], eo)

    async def _cancel_natives(self, exits: list[Doc], why: str) -> list[str]:
        """Cancel venue-held stops (one-cancels-other, or the desk taking over). Returns those still live."""
        for exit_doc in exits:
            self.store.orders.update_one({"_id": exit_doc["_id"]}, {"$set": {"desk_cancel": why}})
            await self.cancel_order(exit_doc["_id"], "desk:stops")
        return [d["_id"] for d in exits if S((self.store.get_order(d["_id"]) or d)["state"]) in LIVE]

    async def _native_stop_ended(self, exit_doc: Doc) -> None:
        """A venue-held stop reached a final state: book what it sold against its rule's group, disarm the group when
        nothing is left to protect, and say so when the desk has to watch the rule again."""
        rule_id = str(exit_doc["native_stop"])
        group = str(exit_doc.get("stop_group") or "")
        filled = float(exit_doc.get("filled_qty") or 0.0)
        if filled > 0:
            self._shrink_group(group, filled)
            self.store.audit("stop.native_filled", "desk:stops", exit_doc["_id"], id=rule_id, qty=filled)
            await self._emit(
                "stop_fired",
                {"rule": rule_id, "symbol": exit_doc["request"]["symbol"], "order_id": exit_doc["_id"],
                 "filled": filled, "avg_price": exit_doc.get("avg_price"), "native": True},
            )
        symbol = exit_doc["request"]["symbol"]
        live = self._live_natives(group)
        rule = self.store.stops.find_one({"_id": rule_id})
        if rule is None or not rule.get("active"):
            return
        if not live and (
            self.portfolio.consolidated().get(symbol, 0.0) <= _EPS or float(rule.get("qty") or 0.0) <= _EPS
        ):
            why = "native stop executed"
            spent: Doc = {"active": False, "fired_ms": self.clock(), "spent": why}
            self.store.stops.update_one({"_id": rule_id}, {"$set": spent})
            self._disarm_group(group, rule_id, why)
            return
        if filled <= 0 and not exit_doc.get("desk_cancel"):
            # cancelled or expired at the venue by someone else (or the kill switch): the desk watches it again
            await self._emit(
                "stop_native_lost",
                {"rule": rule_id, "symbol": symbol, "order_id": exit_doc["_id"], "state": exit_doc["state"],
                 "watched": True},
            )

    def add_stop(self, rule: StopRule, actor: str) -> None:
        self.store.stops.update_one({"_id": rule.id}, {"$setOnInsert": rule.to_doc()}, upsert=True)
        self.store.audit("stop.armed", actor, None, id=rule.id, kind=rule.kind.value, trigger=rule.trigger)

    def stops(self, symbol: str | None = None) -> list[Doc]:
        q: Doc = {"active": True}
        if symbol:
            q["symbol"] = symbol
        return list(self.store.stops.find(q))

    def exit_price(self, symbol: str) -> float | None:
        """The price a protective sell would get now: the best fresh bid across venues (None without one)."""
        bids = [
            book.best_bid
            for name in self.venues
            if (book := self._fresh_book(name, symbol)) is not None and book.best_bid is not None
        ]
        return max(bids) if bids else None

    async def watch_stops(self) -> list[ActionResult]:
        """One pass of the stop watcher: refresh the books of symbols with armed stops and evaluate them at the best
        bid (a stop's exit is a sell). A symbol without a fresh price raises one `stop_unwatched` alert until a
        price returns, rather than firing on stale data."""
        symbols = sorted({d["symbol"] for d in self.store.stops.find({"active": True}, {"symbol": 1})})
        self._unwatched &= set(symbols)
        if not symbols:
            return []
        await self.refresh_market(symbols)
        results: list[ActionResult] = []
        for symbol in symbols:
            price = self.exit_price(symbol)
            if price is None:
                if symbol not in self._unwatched:
                    self._unwatched.add(symbol)
                    await self._emit("stop_unwatched", {"symbol": symbol, "reason": "no fresh order book"})
                continue
            self._unwatched.discard(symbol)
            results += await self.on_price(symbol, price)
        return results

    async def on_price(self, symbol: str, price: float) -> list[ActionResult]:
        """Evaluate stop rules for `symbol` at `price`; fired rules become reduce-only sells through the gate.

        A rule is claimed atomically before its exit is tried (two watchers never fire one stop twice) and stays
        armed until its exit executes or the position it protects is gone: an exit refused for a transient reason
        (desk halted or reducing, symbol halted, no fresh book, order-rate limit) releases the claim, raises one
        `stop_blocked` alert per blocked episode, and fires again on a later price."""
        results: list[ActionResult] = []
        for doc in list(self.store.stops.find({"symbol": symbol, "active": True})):
            rule = StopRule.from_doc(doc)
            fired, updated = evaluate(rule, price)
            held = self._live_natives(rule.group, rule.id)
            if held:
                if not fired:
                    if updated.trigger != rule.trigger:  # the venue trails on its own; keep the desk's view in step
                        self.store.stops.update_one(
                            {"_id": rule.id, "active": True},
                            {"$set": {"trigger": updated.trigger, "high_water": updated.high_water}},
                        )
                    continue
                await self._poll_natives(held)  # the venue has probably triggered it: book its fills now
                was = [d["_id"] for d in held]
                held = self._live_natives(rule.group, rule.id)
                for exit_id in sorted(set(was) - {d["_id"] for d in held}):
                    final = self.store.get_order(exit_id) or {}
                    if float(final.get("filled_qty") or 0.0) > 0:
                        fills = list(self.store.fills.find({"order_id": exit_id}))
                        status = "executed" if final["state"] == S.FILLED.value else str(final["state"])
                        results.append(ActionResult(status, final, fills))
                limits = [c.get("price") for d in held for c in self.store.children_of(d["_id"])
                          if float(c.get("filled") or 0.0) <= 0]
                if not held or not stranded(limits, price):
                    continue
                # the market fell through the stop-limit's limit: take over with a market exit through the gate
                if await self._cancel_natives(held, f"stranded below its limit at {price}"):
                    continue  # the venue has not confirmed the cancel yet: try again on the next price
                if not (self.store.stops.find_one({"_id": rule.id, "active": True})):
                    continue
            if not fired:
                sets: Doc = {}
                if updated.trigger != rule.trigger:
                    sets.update(trigger=updated.trigger, high_water=updated.high_water)
                if doc.get("blocked"):
                    sets["blocked"] = False  # the price came back above the trigger: that blocked episode is over
                if sets:
                    self.store.stops.update_one({"_id": rule.id, "active": True}, {"$set": sets})
                continue
            now = self.clock()
            token = uuid.uuid4().hex
            claimed = self.store.stops.find_one_and_update(
                {
                    "_id": rule.id,
                    "active": True,
                    "$or": [{"claim": None}, {"claim_ms": {"$lt": now - STOP_CLAIM_MS}}],
                },
                {"$set": {"claim": token, "claim_ms": now}},
                return_document=ReturnDocument.AFTER,
            )
            if claimed is None:
                continue  # another watcher is firing it right now, or it was just spent
            results.append(await self._protective_exit(StopRule.from_doc(claimed), price, token))
        return results

    async def _spend_stop(self, rule: StopRule, token: str, why: str) -> None:
        """The stop did its job (or has nothing left to protect): disarm it and its one-cancels-other group."""
        spent = self.store.stops.find_one_and_update(
            {"_id": rule.id, "claim": token},
            {"$set": {"active": False, "claim": None, "blocked": False, "fired_ms": self.clock(), "spent": why}},
        )
        if spent is not None:
            self._disarm_group(rule.group, rule.id, why)

    def _disarm_group(self, group: str, rule_id: str, why: str) -> None:
        """One-cancels-other: the rest of a spent rule's group goes with it."""
        self.store.stops.update_many({"group": group, "active": True}, {"$set": {"active": False}})
        self.store.audit("stop.spent", "desk:stops", None, id=rule_id, why=why)

    def _shrink_group(self, group: str, sold: float) -> None:
        """Part of the position a group protects was sold: its rules now protect what is left."""
        for sibling in self.store.stops.find({"group": group, "active": True}):
            left = max(0.0, float(sibling["qty"]) - sold)
            self.store.stops.update_one({"_id": sibling["_id"]}, {"$set": {"qty": left}})

    async def _block_stop(self, rule: StopRule, token: str, reasons: list[str]) -> ActionResult:
        """A transient refusal: release the claim, keep the rule armed, alert once per blocked episode."""
        before = self.store.stops.find_one_and_update(
            {"_id": rule.id, "claim": token},
            {"$set": {"claim": None, "blocked": True, "blocked_reasons": reasons}},
            return_document=ReturnDocument.BEFORE,
        )
        if before is not None and not before.get("blocked"):
            await self._emit(
                "stop_blocked", {"rule": rule.id, "symbol": rule.symbol, "reasons": reasons, "armed": True}
            )
        return ActionResult("blocked", reasons=reasons)

    async def _protective_exit(self, rule: StopRule, price: float, token: str) -> ActionResult:
        natives = self._live_natives(rule.group)
        if natives:  # one-cancels-other: the venue's stop holds the position this exit sells
            still = await self._cancel_natives(natives, f"{rule.kind.value} {rule.id} fired")
            if still:
                waiting = f"waiting for the venue to cancel stop(s) {', '.join(still)}"
                return await self._block_stop(rule, token, [waiting])
        held = self.portfolio.consolidated().get(rule.symbol, 0.0)
        if held <= _EPS:
            await self._spend_stop(rule, token, "position gone")
            await self._emit("stop_spent", {"rule": rule.id, "symbol": rule.symbol, "why": "position gone"})
            return ActionResult("spent", reasons=[f"no {rule.symbol} position left to protect"])
        _buys, sells, _ = self._pending(None)
        available = held - sells.get(rule.symbol, 0.0)
        if available <= _EPS:  # other sells (perhaps an earlier exit whose outcome is unknown) cover the position
            return await self._block_stop(rule, token, [f"open sells already cover the {rule.symbol} position"])
        request = OrderRequest(
            symbol=rule.symbol,
            side=Side.SELL,
            qty=min(rule.qty, available),
            reduce_only=True,
            allow_resize=True,
            note=f"{rule.kind.value} {rule.id} at {price}",
        )
        try:
            decision = self.check(request)
        except MarketDataUnavailable as exc:
            return await self._block_stop(rule, token, [str(exc)])
        if not decision.approved:
            failed = {c.name for c in decision.checks if not c.passed}
            if failed & _STOP_TRANSIENT or not failed:
                return await self._block_stop(rule, token, decision.reasons)
            # a refusal no later price changes (below the exchange minimum, off the allowlist): disarm and say so
            await self._spend_stop(rule, token, "refused: " + "; ".join(decision.reasons))
            await self._emit(
                "stop_blocked",
                {"rule": rule.id, "symbol": rule.symbol, "reasons": decision.reasons, "armed": False},
            )
            return ActionResult("rejected", reasons=decision.reasons)
        result = self.propose(request, "desk:stops", source="stop")
        if result.status != "pending_approval" or result.order is None:
            return await self._block_stop(rule, token, result.reasons)
        order_id = result.order["_id"]
        # A protective exit was approved together with the order that armed it: no second human click.
        approved = self.store.transition(
            order_id,
            [S.PENDING_APPROVAL],
            S.APPROVED,
            {"approved_by": f"stop:{rule.id}", "approved_ms": self.clock(), "approved_qty": decision.qty},
            actor="desk:stops",
        )
        if approved is None:
            return await self._block_stop(rule, token, ["exit order changed state before approval"])
        await self.execute(order_id)
        final = self.store.get_order(order_id) or {}
        fills = list(self.store.fills.find({"order_id": order_id}))
        filled = float(final.get("filled_qty") or 0.0)
        if filled >= request.qty * (1 - 1e-9) or self.portfolio.consolidated().get(rule.symbol, 0.0) <= _EPS:
            await self._spend_stop(rule, token, f"exit {order_id} executed")
            return ActionResult("executed", final, fills)
        if filled > 0:
            self._shrink_group(rule.group, filled)  # what is left stays protected by the same (smaller) rules
            self.store.stops.update_one({"_id": rule.id, "claim": token}, {"$set": {"claim": None}})
            return ActionResult("partially_filled", final, fills)
        reasons = list(final.get("reasons") or []) + ([final["stop_reason"]] if final.get("stop_reason") else [])
        await self._block_stop(rule, token, reasons or [f"exit {order_id} ended {final.get('state')} with no fill"])
        return ActionResult(str(final.get("state") or "failed"), final, fills, reasons=reasons)

    # ================================================================== read side
    def get_order(self, order_id: str) -> Doc | None:
        doc = self.store.get_order(order_id)
        if doc is None:
            return None
        out = public_order(doc)
        out["children"] = [public_order(c) for c in self.store.children_of(order_id)]
        return out

    def list_orders(self, state: str | None = None, symbol: str | None = None, limit: int = 50) -> list[Doc]:
        q: Doc = {}
        if state:
            q["state"] = state
        if symbol:
            q["request.symbol"] = symbol
        return [public_order(d) for d in self.store.orders.find(q).sort([("created_ms", DESCENDING)]).limit(limit)]

    def positions(self, by_venue: bool = False) -> Doc:
        """Positions at their marks. A position with no mark yet reads `mark: null, mark_state: "unknown"`, and then
        equity and exposure are unknown too (`equity: null`, `equity_state` says which symbols lack a mark)."""
        marks = self.marks()
        book = self.portfolio
        valuation = book.valuation(marks)
        return {
            "positions": book.rows(marks) if by_venue else book.consolidated_rows(marks),
            "cash": {
                v: {a: round(x, 8) for a, x in assets.items() if abs(x) > 1e-12}
                for v, assets in book.cash.items()
            },
            "equity": None if valuation.equity is None else round(valuation.equity, 8),
            "equity_state": "known" if valuation.known else valuation.unknown_reason(),
            "unmarked": list(valuation.unmarked),
        }

    def risk_status(self) -> Doc:
        marks = self.marks()
        valuation, peak, day_start = self._mark_to_market()
        book = self._portfolio  # as _mark_to_market just synced it
        gross, net = book.exposures(marks)
        known = valuation.equity is not None
        equity = valuation.equity if valuation.equity is not None else valuation.cash + net
        curve_doc = self.store.risk_state.find_one({"_id": "curve"}) or {}
        curve = [float(v) for _k, v in sorted((curve_doc.get("p") or {}).items())]
        report = book_report(
            equity=equity,
            peak_equity=peak,
            gross=gross,
            net=net,
            realised=book.realised(),
            unrealised=book.unrealised(marks),
            equity_curve=curve,
        )
        desk = self.store.desk_state()
        return {
            "desk_state": desk["state"],
            "desk_reason": desk.get("reason"),
            "halted_symbols": self.store.halted_symbols(),
            "limits": self.limits.to_dict(),
            # with a held symbol unpriced, the book's value-based figures are unknown, not a loss
            "metrics": report.to_dict() if known else {**report.to_dict(), **dict.fromkeys(_VALUE_METRICS)},
            "equity": valuation.equity,
            "equity_state": "known" if known else valuation.unknown_reason(),
            "unmarked": list(valuation.unmarked),
            "day_start_equity": day_start,
            "peak_equity": peak,
            "daily_loss_pct": (max(0.0, (day_start - equity) / day_start) if day_start > 0 else 0.0) if known else None,
            "utilisation": {
                "gross_exposure": gross / self.limits.max_gross_exposure
                if known and self.limits.max_gross_exposure else None,
                "net_exposure": net / self.limits.max_net_exposure if known and self.limits.max_net_exposure else None,
            },
            "pending_approvals": _count(self.store.orders, {"state": S.PENDING_APPROVAL.value}),
            "unresolved_orders": _count(self.store.children, {"state": S.UNRESOLVED.value}),
            "mode": "live" if self.config.live else "paper",
            "vol_regime": {
                symbol: {
                    **{k: v for k, v in regime.items() if k != "checked_ms"},
                    "scaled_limits": {
                        f: getattr(scale_limits(self.limits, min(1.0, float(regime["factor"]))), f)
                        for f in ("max_order_notional", "max_position_notional", "max_gross_exposure",
                                  "max_net_exposure")
                    },
                }
                for symbol, regime in sorted(self._regimes.items())
            },
            "stops": self.stops_view(),
            "alerts": self.alerts[-10:],
        }

    def stops_view(self) -> list[Doc]:
        """Armed stop rules and who holds each: the venue(s) (a venue-held stop-loss) or the desk (watching)."""
        query: Doc = {"native_stop": {"$exists": True}, "state": {"$in": [x.value for x in LIVE]}}
        live_exits = {d["_id"]: d for d in self.store.orders.find(query)}
        out: list[Doc] = []
        for rule in self.stops():
            venues = sorted(
                {str(live_exits[i]["request"].get("venue")) for i in rule.get("native_orders") or [] if i in live_exits}
            )
            out.append({
                "id": rule["_id"], "symbol": rule["symbol"], "kind": rule["kind"], "trigger": rule["trigger"],
                "qty": rule["qty"], "held_by": [f"venue:{v}" for v in venues] or ["desk"],
            })
        return out
