"""Multi-venue view: consolidated best bid/ask, merged depth and the all-in cost of a trade on each venue.

Pure functions over `OrderBook`s and per-venue taker fees (the router and the agent call these), plus
`compare_venues`, which fetches the books from the configured venues (sync; sim fallback per venue).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from trading.exchanges import ExchangeError, MarketSource, background, get_market_source
from trading.types import OrderBook, Side


@dataclass(frozen=True, slots=True)
class VenueQuote:
    exchange: str
    bid: float | None
    ask: float | None
    bid_size: float
    ask_size: float
    taker_fee: float
    effective_bid: float | None  # what selling one unit at the bid nets after the taker fee
    effective_ask: float | None  # what buying one unit at the ask costs with the taker fee
    timestamp_ms: int
    simulated: bool = False


@dataclass(frozen=True, slots=True)
class ConsolidatedQuote:
    symbol: str
    venues: tuple[VenueQuote, ...]
    best_bid: VenueQuote | None  # highest raw bid
    best_ask: VenueQuote | None  # lowest raw ask
    best_effective_bid: VenueQuote | None  # best net of fees
    best_effective_ask: VenueQuote | None

    @property
    def crossed(self) -> bool:
        """True when buying on one venue and selling on another pays even after taker fees."""
        b, a = self.best_effective_bid, self.best_effective_ask
        return bool(b and a and b.exchange != a.exchange and b.effective_bid and a.effective_ask
                    and b.effective_bid > a.effective_ask)

    @property
    def spread(self) -> float | None:
        if self.best_bid and self.best_ask and self.best_bid.bid and self.best_ask.ask:
            return self.best_ask.ask - self.best_bid.bid
        return None


@dataclass(frozen=True, slots=True)
class MergedLevel:
    price: float
    amount: float
    exchange: str
    effective_price: float


@dataclass(frozen=True, slots=True)
class VenueCost:
    exchange: str
    side: Side
    amount: float  # requested
    filled: float  # available in the visible book (< amount: not enough depth)
    avg_price: float | None
    fee: float  # quote currency
    total: float  # buy: quote paid incl. fee; sell: quote received net of fee
    effective_price: float | None  # total / filled
    slippage_bps: float | None  # avg price vs the venue's top of book
    simulated: bool = False

    @property
    def complete(self) -> bool:
        return self.filled >= self.amount - 1e-12


def _fee(fees: Mapping[str, float], exchange: str) -> float:
    return float(fees.get(exchange, fees.get("*", 0.001)))


def venue_quote(book: OrderBook, fee: float) -> VenueQuote:
    bid = book.bids[0] if book.bids else None
    ask = book.asks[0] if book.asks else None
    return VenueQuote(
        exchange=book.exchange, bid=bid.price if bid else None, ask=ask.price if ask else None,
        bid_size=bid.amount if bid else 0.0, ask_size=ask.amount if ask else 0.0, taker_fee=fee,
        effective_bid=bid.price * (1 - fee) if bid else None, effective_ask=ask.price * (1 + fee) if ask else None,
        timestamp_ms=book.timestamp_ms, simulated=book.simulated,
    )


def consolidate(books: Sequence[OrderBook], fees: Mapping[str, float]) -> ConsolidatedQuote:
    """Best bid/ask across venues, raw and net of each venue's taker fee."""
    if not books:
        raise ValueError("consolidate needs at least one order book")
    symbols = {b.symbol for b in books}
    if len(symbols) != 1:
        raise ValueError(f"books for different symbols: {sorted(symbols)}")
    quotes = tuple(venue_quote(b, _fee(fees, b.exchange)) for b in books)
    bids = [q for q in quotes if q.bid is not None]
    asks = [q for q in quotes if q.ask is not None]
    return ConsolidatedQuote(
        symbol=books[0].symbol, venues=quotes,
        best_bid=max(bids, key=lambda q: q.bid or 0.0, default=None),
        best_ask=min(asks, key=lambda q: q.ask or float("inf"), default=None),
        best_effective_bid=max(bids, key=lambda q: q.effective_bid or 0.0, default=None),
        best_effective_ask=min(asks, key=lambda q: q.effective_ask or float("inf"), default=None),
    )


def merged_depth(books: Sequence[OrderBook], fees: Mapping[str, float], depth: int = 20
                 ) -> tuple[list[MergedLevel], list[MergedLevel]]:
    """All venues' levels in one ladder, ordered by fee-adjusted price (best first), each tagged with its venue."""
    bids: list[MergedLevel] = []
    asks: list[MergedLevel] = []
    for book in books:
        fee = _fee(fees, book.exchange)
        bids.extend(MergedLevel(lv.price, lv.amount, book.exchange, lv.price * (1 - fee)) for lv in book.bids)
        asks.extend(MergedLevel(lv.price, lv.amount, book.exchange, lv.price * (1 + fee)) for lv in book.asks)
    bids.sort(key=lambda lv: -lv.effective_price)
    asks.sort(key=lambda lv: lv.effective_price)
    return bids[:depth], asks[:depth]


def venue_cost(book: OrderBook, fee: float, side: Side, amount: float) -> VenueCost:
    """Walk one venue's visible book for `amount` (base units): average price, fee and all-in total."""
    if amount <= 0:
        raise ValueError("amount must be positive")
    levels = book.asks if side is Side.BUY else book.bids
    filled = notional = 0.0
    for lv in levels:
        take = min(amount - filled, lv.amount)
        filled += take
        notional += take * lv.price
        if filled >= amount - 1e-12:
            break
    if filled <= 0:
        return VenueCost(book.exchange, side, amount, 0.0, None, 0.0, 0.0, None, None, book.simulated)
    avg = notional / filled
    fee_cost = notional * fee
    total = notional + fee_cost if side is Side.BUY else notional - fee_cost
    top = levels[0].price
    slip = (avg / top - 1) * 1e4 if side is Side.BUY else (1 - avg / top) * 1e4
    return VenueCost(book.exchange, side, amount, filled, avg, fee_cost, total, total / filled, slip, book.simulated)


def rank_venues(books: Sequence[OrderBook], fees: Mapping[str, float], side: Side, amount: float
                ) -> list[VenueCost]:
    """Venues ordered from cheapest (buy) / best-paying (sell) all-in; venues that cannot fill come last."""
    costs = [venue_cost(b, _fee(fees, b.exchange), side, amount) for b in books]

    def key(c: VenueCost) -> tuple[int, float]:
        price = c.effective_price if c.effective_price is not None else (float("inf") if side is Side.BUY else 0.0)
        return (0 if c.complete else 1, price if side is Side.BUY else -price)

    return sorted(costs, key=key)


def best_split(books: Sequence[OrderBook], fees: Mapping[str, float], side: Side, amount: float
               ) -> dict[str, float]:
    """Greedy split of `amount` across venues by fee-adjusted price (the cheapest liquidity first)."""
    bids, asks = merged_depth(books, fees, depth=10_000)
    ladder = asks if side is Side.BUY else bids
    split: dict[str, float] = {}
    left = amount
    for lv in ladder:
        if left <= 1e-12:
            break
        take = min(left, lv.amount)
        split[lv.exchange] = split.get(lv.exchange, 0.0) + take
        left -= take
    return split


@dataclass
class VenueComparison:
    symbol: str
    quote: ConsolidatedQuote | None
    ranking: list[VenueCost]
    split: dict[str, float]
    fees: dict[str, float]
    errors: dict[str, str] = field(default_factory=dict)
    simulated: dict[str, bool] = field(default_factory=dict)
    failures: dict[str, BaseException] = field(default_factory=dict)  # the exceptions behind `errors`


async def _books(sources: Mapping[str, MarketSource], symbol: str, depth: int
                 ) -> tuple[list[OrderBook], dict[str, float], dict[str, BaseException]]:
    async def one(name: str, source: MarketSource) -> tuple[OrderBook, float]:
        await source.adapter.load_markets()
        fee = source.adapter.market(symbol).taker_fee
        return await source.adapter.fetch_order_book(symbol, depth), fee

    names = list(sources)
    results = await asyncio.gather(*(one(n, sources[n]) for n in names), return_exceptions=True)
    books: list[OrderBook] = []
    fees: dict[str, float] = {}
    errs: dict[str, BaseException] = {}
    for name, res in zip(names, results, strict=True):
        if isinstance(res, BaseException):
            errs[name] = res
        else:
            book, fee = res
            books.append(book)
            fees[book.exchange] = fee
    return books, fees, errs


def compare_venues(symbol: str, exchanges: Sequence[str] | None = None, *, side: Side = Side.BUY,
                   amount: float | None = None, depth: int = 50, settings: object = None,
                   sources: Mapping[str, MarketSource] | None = None) -> VenueComparison:
    """Fetch `symbol`'s book on every venue (default: settings.exchanges) and compare them all-in.

    `amount` (base units) ranks venues by the cost of that size; without it, by the top-of-book size.
    Venues that fail are listed in `errors`; venues served by the simulator are flagged in `simulated`.
    """
    if sources is None:
        if exchanges is None:
            if settings is None:
                from core.settings import get_settings

                settings = get_settings()
            exchanges = list(getattr(settings, "exchanges", ["binance"]))
        sources = {}
        failures: dict[str, BaseException] = {}
        for name in exchanges:
            try:
                sources[name] = get_market_source(settings, name)
            except ExchangeError as exc:
                failures[name] = exc
    else:
        failures = {}
    books, fees, fetch_failures = background.run(_books(sources, symbol, depth), timeout=120)
    failures.update(fetch_failures)
    errs = {name: str(exc) if isinstance(exc, ExchangeError) else f"{type(exc).__name__}: {exc}"
            for name, exc in failures.items()}
    if not books:
        return VenueComparison(symbol, None, [], {}, fees, errs, {}, failures)
    size = amount if amount is not None else min(
        (lv.amount for b in books for lv in ((b.asks if side is Side.BUY else b.bids)[:1])), default=1.0)
    return VenueComparison(
        symbol=symbol, quote=consolidate(books, fees), ranking=rank_venues(books, fees, side, size),
        split=best_split(books, fees, side, size), fees=fees, errors=errs,
        simulated={b.exchange: b.simulated or sources[b.exchange].simulated for b in books
                   if b.exchange in sources},
        failures=failures,
    )
