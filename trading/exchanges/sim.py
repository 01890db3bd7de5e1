"""`sim`: a seeded market generator behind the ExchangeAdapter interface, so the whole product runs offline.

Model (per symbol, shared by every simulated venue so that venues agree up to a small basis):
- daily log-returns from a stochastic-volatility process (AR(1) log-variance: volatility clustering) with
  Student-t shocks (fat tails), anchored so that the price on 2024-01-01 equals the symbol's anchor price;
- inside each day, a one-minute path from the same kind of process, bridged to start and end on the daily levels;
- spread and book depth widen with the current minute volatility; each venue has its own fee, spread and basis.

Everything is a pure function of (seed, symbol, time), so two instances with the same seed agree and history does
not change between runs. The clock is injectable (tests freeze it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from core.clock import now_ms
from trading.exchanges import errors
from trading.exchanges.base import TIMEFRAME_MS, FixedMarkets, settle_fill, timeframe_floor, timeframe_ms
from trading.types import (
    Balance,
    BookLevel,
    Candle,
    ExchangeOrder,
    Market,
    OrderBook,
    OrderType,
    Side,
    Ticker,
    Trade,
)

DAY_MS = 86_400_000
MIN_MS = 60_000
EPOCH_MS = 1_483_228_800_000  # 2017-01-01: first simulated day
ANCHOR_MS = 1_704_067_200_000  # 2024-01-01: anchor prices hold here
N_DAYS = 12_000  # through 2049


@dataclass(frozen=True, slots=True)
class SimSymbol:
    symbol: str
    anchor: float
    daily_vol: float  # typical daily return volatility
    tick: float
    step: float
    min_amount: float
    min_cost: float = 5.0


SIM_SYMBOLS: dict[str, SimSymbol] = {s.symbol: s for s in (
    SimSymbol("BTC/USDT", 42_000.0, 0.030, 0.01, 0.00001, 0.00001),
    SimSymbol("ETH/USDT", 2_300.0, 0.038, 0.01, 0.0001, 0.0001),
    SimSymbol("SOL/USDT", 100.0, 0.055, 0.01, 0.001, 0.001),
    SimSymbol("BNB/USDT", 310.0, 0.035, 0.01, 0.001, 0.001),
    SimSymbol("XRP/USDT", 0.62, 0.045, 0.0001, 0.1, 0.1),
    SimSymbol("ADA/USDT", 0.59, 0.048, 0.0001, 0.1, 0.1),
    SimSymbol("DOGE/USDT", 0.09, 0.055, 0.00001, 1.0, 1.0),
    SimSymbol("AVAX/USDT", 38.0, 0.060, 0.01, 0.01, 0.01),
    SimSymbol("LINK/USDT", 15.0, 0.050, 0.001, 0.01, 0.01),
    SimSymbol("LTC/USDT", 73.0, 0.040, 0.01, 0.001, 0.001),
    SimSymbol("BTC/USDC", 42_000.0, 0.030, 0.01, 0.00001, 0.00001),
    SimSymbol("ETH/USDC", 2_300.0, 0.038, 0.01, 0.0001, 0.0001),
    SimSymbol("ETH/BTC", 0.0548, 0.025, 0.00001, 0.0001, 0.0001, 0.0001),
)}

# Venue personalities: taker fee, maker fee, spread multiplier, depth multiplier.
VENUES: dict[str, tuple[float, float, float, float]] = {
    "sim": (0.001, 0.001, 1.0, 1.0),
    "binance": (0.001, 0.001, 1.0, 1.0),
    "okx": (0.001, 0.0008, 1.1, 0.8),
    "bybit": (0.001, 0.001, 1.2, 0.7),
    "kraken": (0.0026, 0.0016, 1.6, 0.5),
    "coinbase": (0.006, 0.004, 1.8, 0.6),
    "kucoin": (0.001, 0.001, 1.5, 0.5),
}


def _seed(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _sv_returns(rng: np.random.Generator, n: int, vol: float, phi: float, eta: float, df: float = 4.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic-volatility returns: log-variance AR(1) (clustering) times unit-variance Student-t (fat tails)."""
    noise = rng.standard_normal(n) * eta
    h = lfilter([1.0], [1.0, -phi], noise)  # zero-mean AR(1)
    h -= (eta**2 / (1 - phi**2)) / 2  # E[exp(h)] ~ 1
    sigma = vol * np.exp(h / 2)
    shocks = rng.standard_t(df, n) / math.sqrt(df / (df - 2))
    return sigma * shocks, sigma


class _Path:
    """Price path of one symbol for one seed: cached daily levels + per-day minute paths."""

    def __init__(self, spec: SimSymbol, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        rng = np.random.default_rng(_seed(seed, spec.symbol, "daily"))
        rets, sigma = _sv_returns(rng, N_DAYS, spec.daily_vol, phi=0.97, eta=0.25)
        levels = np.concatenate([[0.0], np.cumsum(rets)])
        anchor_day = (ANCHOR_MS - EPOCH_MS) // DAY_MS
        self.log_levels = levels - levels[anchor_day] + math.log(spec.anchor)
        self.daily_sigma = sigma
        self._days: OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()  # history requests run in worker threads

    def day(self, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log close per minute, minute sigma, volume per minute) for day index d since EPOCH."""
        with self._lock:
            hit = self._days.get(d)
            if hit is not None:
                self._days.move_to_end(d)
                return hit
        if d < 0 or d >= N_DAYS:
            raise errors.ExchangeError(f"sim: no data for day {d} (range 2017-01-01 .. 2049)", exchange="sim")
        rng = np.random.default_rng(_seed(self.seed, self.spec.symbol, "day", d))
        day_sigma = float(self.daily_sigma[d])
        rets, sigma = _sv_returns(rng, 1440, day_sigma / math.sqrt(1440), phi=0.995, eta=0.08)
        walk = np.cumsum(rets)
        start, end = self.log_levels[d], self.log_levels[d + 1]
        frac = np.arange(1, 1441) / 1440.0
        closes = start + walk - frac * (walk[-1] - (end - start))
        volume = (self.spec.min_cost * 2000 / math.exp(start)) * (0.3 + np.abs(rets) / (sigma + 1e-12)) \
            * rng.lognormal(0.0, 0.5, 1440)
        with self._lock:
            self._days[d] = (closes, sigma, volume)
            if len(self._days) > 400:
                self._days.popitem(last=False)
        return closes, sigma, volume

    def minutes(self, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Minute candles with open time in [start_ms, end_ms): times, open, high, low, close, volume."""
        first = (start_ms - EPOCH_MS) // MIN_MS
        last = (end_ms - EPOCH_MS + MIN_MS - 1) // MIN_MS
        if last <= first:
            empty = np.empty(0)
            return np.empty(0, dtype=np.int64), empty, empty, empty, np.stack([empty, empty])
        d0, d1 = first // 1440, (last - 1) // 1440
        closes, sigmas, vols = [], [], []
        for d in range(d0, d1 + 1):
            c, s, v = self.day(d)
            closes.append(c)
            sigmas.append(s)
            vols.append(v)
        c_all = np.concatenate(closes)
        s_all = np.concatenate(sigmas)
        v_all = np.concatenate(vols)
        prev = np.concatenate([[self.log_levels[d0]], c_all[:-1]])
        lo, hi = first - d0 * 1440, last - d0 * 1440
        c, o, s, v = c_all[lo:hi], prev[lo:hi], s_all[lo:hi], v_all[lo:hi]
        rng = np.random.default_rng(_seed(self.seed, self.spec.symbol, "wick", first, last))
        wick_hi = np.abs(rng.standard_normal(len(c))) * s * 0.6
        wick_lo = np.abs(rng.standard_normal(len(c))) * s * 0.6
        times = EPOCH_MS + np.arange(first, last, dtype=np.int64) * MIN_MS
        opens, closes_ = np.exp(o), np.exp(c)
        highs = np.maximum(opens, closes_) * np.exp(wick_hi)
        lows = np.minimum(opens, closes_) * np.exp(-wick_lo)
        return times, opens, highs, lows, np.stack([closes_, v])

    def price_at(self, ts_ms: int) -> tuple[float, float]:
        """(price, minute sigma) at a moment: linear inside the minute between its open and close."""
        m = (ts_ms - EPOCH_MS) // MIN_MS
        d = m // 1440
        closes, sigma, _ = self.day(d)
        i = m - d * 1440
        prev = closes[i - 1] if i > 0 else self.log_levels[d]
        frac = ((ts_ms - EPOCH_MS) % MIN_MS) / MIN_MS
        return math.exp(prev + (closes[i] - prev) * frac), float(sigma[i])


def _round(value: float, step: float) -> float:
    digits = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return round(round(value / step) * step, digits)


class SimExchange(FixedMarkets):
    """Seeded simulated venue implementing ExchangeAdapter (public data, streams, orders against its own book)."""

    simulated = True

    def __init__(
        self,
        exchange_id: str = "sim",
        *,
        seed: int = 7,
        clock: Callable[[], int] | None = None,
        stream_interval_s: float = 1.0,
        balances: dict[str, float] | None = None,
        symbols: dict[str, SimSymbol] | None = None,
    ) -> None:
        self.exchange_id = exchange_id
        self.seed = seed
        self._clock = clock or now_ms
        self.stream_interval_s = stream_interval_s
        self._specs = dict(symbols or SIM_SYMBOLS)
        taker, maker, self._spread_mult, self._depth_mult = VENUES.get(exchange_id, VENUES["sim"])
        self._fees = (taker, maker)
        self._basis = ((_seed(exchange_id) % 21) - 10) * 0.5e-4 if exchange_id not in ("sim", "binance") else 0.0
        self._paths: dict[str, _Path] = {}
        self._balances: dict[str, list[float]] = {k: [v, 0.0] for k, v in (balances or {"USDT": 100_000.0}).items()}
        self._orders: dict[str, ExchangeOrder] = {}
        self._order_seq = 0
        self._trade_seq = 0
        self._last_trade_ms: dict[str, int] = {}
        self._markets = {
            sym: Market(exchange=exchange_id, symbol=sym, base=sym.split("/")[0], quote=sym.split("/")[1],
                        price_precision=s.tick, amount_precision=s.step, min_amount=s.min_amount,
                        min_cost=s.min_cost, max_amount=1e9, taker_fee=taker, maker_fee=maker)
            for sym, s in self._specs.items()
        }

    # ------------------------------------------------------------------ helpers
    def now_ms(self) -> int:
        return int(self._clock())

    async def fetch_time(self) -> int:
        return self.now_ms()

    def _spec(self, symbol: str) -> SimSymbol:
        """The symbol's generator parameters; an unknown symbol raises `UnknownSymbol` (with nearby names)."""
        spec = self._specs.get(symbol)
        if spec is None:
            raise errors.UnknownSymbol(symbol, self._markets, exchange=self.exchange_id)
        return spec

    def _path(self, symbol: str) -> _Path:
        path = self._paths.get(symbol)
        if path is None:
            path = self._paths[symbol] = _Path(self._spec(symbol), self.seed)
        return path

    def _quote(self, symbol: str, ts: int) -> tuple[float, float, float, float]:
        """(last, bid, ask, minute sigma) at ts, with this venue's basis and spread."""
        spec = self._spec(symbol)
        price, sigma = self._path(symbol).price_at(ts)
        price *= 1 + self._basis
        half = price * (0.2e-4 + 0.3 * sigma) * self._spread_mult / 2
        half = max(half, spec.tick)
        bid = _round(price - half, spec.tick)
        ask = max(_round(price + half, spec.tick), bid + spec.tick)
        return _round(price, spec.tick), bid, ask, sigma

    # ------------------------------------------------------------------ markets

    # ------------------------------------------------------------------ public data
    async def fetch_ticker(self, symbol: str) -> Ticker:
        now = self.now_ms()
        last, bid, ask, _ = self._quote(symbol, now)
        candles = self._candles(symbol, "1m", now - DAY_MS + 1, now + 1)
        open_24h = candles[0].open * (1 + self._basis) if candles else last
        high = max((c.high for c in candles), default=last) * (1 + self._basis)
        low = min((c.low for c in candles), default=last) * (1 + self._basis)
        volume = sum(c.volume for c in candles)
        return Ticker(exchange=self.exchange_id, symbol=symbol, timestamp_ms=now, bid=bid, ask=ask, last=last,
                      open_24h=open_24h, high_24h=max(high, last), low_24h=min(low, last), base_volume_24h=volume,
                      quote_volume_24h=volume * last, change_pct_24h=(last / open_24h - 1) * 100,
                      simulated=True)

    def _book(self, symbol: str, ts: int, limit: int) -> OrderBook:
        spec = self._spec(symbol)
        _, bid, ask, sigma = self._quote(symbol, ts)
        rng = np.random.default_rng(_seed(self.seed, self.exchange_id, symbol, "book", ts // 1000))
        gap = max(spec.tick, bid * sigma * 0.5 * self._spread_mult)
        # depth in base units: roughly $250k near the touch for a calm market, thinner when volatile
        calm = 0.0004 / max(sigma, 1e-6)
        base_size = 25_000.0 / bid * min(calm, 2.0) * self._depth_mult
        sizes_b = base_size * rng.lognormal(0.0, 0.6, limit) * (1 + np.arange(limit) * 0.15)
        sizes_a = base_size * rng.lognormal(0.0, 0.6, limit) * (1 + np.arange(limit) * 0.15)
        bids = tuple(BookLevel(_round(bid - i * gap, spec.tick), _round(float(sizes_b[i]), spec.step) or spec.step)
                     for i in range(limit) if bid - i * gap > 0)
        asks = tuple(BookLevel(_round(ask + i * gap, spec.tick), _round(float(sizes_a[i]), spec.step) or spec.step)
                     for i in range(limit))
        return OrderBook(exchange=self.exchange_id, symbol=symbol, timestamp_ms=ts, bids=bids, asks=asks,
                         nonce=ts // 100, simulated=True)

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        self.market(symbol)
        return self._book(symbol, self.now_ms(), max(1, min(limit, 500)))

    def _candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> list[Candle]:
        step = timeframe_ms(timeframe)
        times, o, h, low, cv = self._path(symbol).minutes(start_ms, end_ms)
        if len(times) == 0:
            return []
        c, v = cv[0], cv[1]
        if step == MIN_MS:
            return [Candle(int(t), float(a), float(b), float(x), float(y), float(z))
                    for t, a, b, x, y, z in zip(times, o, h, low, c, v, strict=True)]
        buckets = np.array([timeframe_floor(int(t), timeframe) for t in times[[0, -1]]])
        keys = (times - buckets[0]) // step
        out: list[Candle] = []
        edges = np.flatnonzero(np.diff(keys)) + 1
        for seg in np.split(np.arange(len(times)), edges):
            if len(seg) == 0:
                continue
            i, j = seg[0], seg[-1]
            out.append(Candle(int(buckets[0] + keys[i] * step), float(o[i]), float(h[seg].max()),
                              float(low[seg].min()), float(c[j]), float(v[seg].sum())))
        return out

    async def fetch_ohlcv(self, symbol: str, timeframe: str = "1h", since: int | None = None,
                          limit: int = 500) -> list[Candle]:
        step = timeframe_ms(timeframe)
        self.market(symbol)
        limit = max(1, min(limit, 1500))
        now = self.now_ms()
        if since is None:
            start = timeframe_floor(now, timeframe) - (limit - 1) * step
        else:
            start = timeframe_floor(max(since, EPOCH_MS) + step - 1, timeframe)
        start = max(start, timeframe_floor(EPOCH_MS + step - 1, timeframe))
        end = min(start + limit * step, now + 1)
        return (await asyncio.to_thread(self._candles, symbol, timeframe, start, end))[:limit]

    def _trades_between(self, symbol: str, start_ms: int, end_ms: int, limit: int) -> list[Trade]:
        """About two trades per second; each second's trades are a pure function of (seed, venue, symbol, second)."""
        out: list[Trade] = []
        spec = self._spec(symbol)
        for sec in range(end_ms // 1000, start_ms // 1000 - 1, -1):
            rng = np.random.default_rng(_seed(self.seed, self.exchange_id, symbol, "trades", sec))
            n = int(rng.poisson(2.0))
            for k in range(n):
                ts = sec * 1000 + int(rng.integers(0, 1000))
                if ts < start_ms or ts > end_ms:
                    continue
                _, bid, ask, _ = self._quote(symbol, ts)
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                amount = _round(float(rng.lognormal(0, 1.2)) * 500.0 / bid, spec.step) or spec.step
                out.append(Trade(self.exchange_id, symbol, ts, ask if side is Side.BUY else bid, amount, side,
                                 f"{sec}-{k}"))
            if len(out) >= limit:
                break
        out.sort(key=lambda t: t.timestamp_ms)
        return out[-limit:]

    async def fetch_trades(self, symbol: str, since: int | None = None, limit: int = 100) -> list[Trade]:
        self.market(symbol)
        now = self.now_ms()
        start = since if since is not None else now - 120_000
        return self._trades_between(symbol, start, now, max(1, min(limit, 1000)))

    # ------------------------------------------------------------------ orders against the generated book
    def _bal(self, asset: str) -> list[float]:
        return self._balances.setdefault(asset, [0.0, 0.0])

    def _match(self, order: ExchangeOrder, book: OrderBook, limit_price: float | None) -> None:
        m = self._markets[order.symbol]
        levels = book.asks if order.side is Side.BUY else book.bids
        remaining = order.amount - order.filled
        cost = 0.0
        qty = 0.0
        for lvl in levels:
            if limit_price is not None and ((order.side is Side.BUY and lvl.price > limit_price) or
                                            (order.side is Side.SELL and lvl.price < limit_price)):
                break
            take = min(remaining - qty, lvl.amount)
            qty += take
            cost += take * lvl.price
            if qty >= remaining - 1e-15:
                break
        if qty <= 0:
            return
        price = cost / qty
        fee = cost * (m.maker_fee if order.status == "open" and order.filled == 0 and limit_price else m.taker_fee)
        self._trade_seq += 1
        order.fills.append(Trade(self.exchange_id, order.symbol, book.timestamp_ms, price, qty, order.side,
                                 f"sim-t{self._trade_seq}"))
        total_cost = (order.average or 0.0) * order.filled + cost
        order.filled += qty
        order.average = total_cost / order.filled
        order.fee_cost += fee
        order.fee_currency = m.quote
        settle_fill(self._bal(m.quote), self._bal(m.base), order, qty, cost, fee)
        if order.filled >= order.amount - 1e-12:
            order.status = "closed"

    def _sweep(self) -> None:
        """Fill resting limit orders the current market has crossed."""
        now = self.now_ms()
        for order in self._orders.values():
            if order.status == "open" and order.type is OrderType.LIMIT:
                self._match(order, self._book(order.symbol, now, 20), order.price)

    async def create_order(self, symbol: str, side: Side, type: OrderType, amount: float,
                           price: float | None = None, *, client_order_id: str) -> ExchangeOrder:
        m = self.market(symbol)
        existing = self._orders.get(client_order_id)
        if existing is not None:
            raise errors.OrderRejected(f"{self.exchange_id}: duplicate client order id {client_order_id}",
                                       exchange=self.exchange_id)
        if amount <= 0 or (m.min_amount is not None and amount < m.min_amount):
            raise errors.OrderRejected(f"{self.exchange_id}: amount {amount} below minimum {m.min_amount} for {symbol}",
                                       exchange=self.exchange_id)
        if type is OrderType.LIMIT and (price is None or price <= 0):
            raise errors.OrderRejected(f"{self.exchange_id}: limit order needs a positive price",
                                       exchange=self.exchange_id)
        now = self.now_ms()
        book = self._book(symbol, now, 50)
        ref = price if price is not None else (book.best_ask if side is Side.BUY else book.best_bid) or 0.0
        if m.min_cost is not None and amount * ref < m.min_cost:
            raise errors.OrderRejected(f"{self.exchange_id}: notional {amount * ref:.2f} below minimum {m.min_cost}",
                                       exchange=self.exchange_id)
        quote, base = self._bal(m.quote), self._bal(m.base)
        need = amount * ref * (1 + m.taker_fee) if side is Side.BUY else amount
        have = quote[0] if side is Side.BUY else base[0]
        if need > have + 1e-9:
            asset = m.quote if side is Side.BUY else m.base
            raise errors.InsufficientFunds(f"{self.exchange_id}: need {need:.8g} {asset}, have {have:.8g}",
                                           exchange=self.exchange_id)
        self._order_seq += 1
        order = ExchangeOrder(exchange=self.exchange_id, symbol=symbol, client_order_id=client_order_id,
                              exchange_order_id=f"sim-{self._order_seq}", side=side, type=type, amount=amount,
                              price=price, status="open", timestamp_ms=now)
        if type is OrderType.LIMIT and price is not None:
            if side is Side.BUY:
                quote[0] -= amount * price
                quote[1] += amount * price
            else:
                base[0] -= amount
                base[1] += amount
        self._orders[client_order_id] = order
        self._match(order, book, price if type is OrderType.LIMIT else None)
        if type is OrderType.MARKET and order.status == "open":
            order.status = "closed" if order.filled > 0 else "rejected"  # market orders never rest
        return _copy(order)

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        self.market(symbol)
        self._sweep()
        order = self._orders.get(client_order_id)
        return _copy(order) if order is not None and order.symbol == symbol else None

    async def cancel_order(self, symbol: str, *, client_order_id: str | None = None,
                           exchange_order_id: str | None = None) -> ExchangeOrder:
        self.market(symbol)
        self._sweep()
        order = None
        if client_order_id is not None:
            order = self._orders.get(client_order_id)
        else:
            order = next((o for o in self._orders.values() if o.exchange_order_id == exchange_order_id), None)
        if order is None or order.symbol != symbol:
            raise errors.OrderNotFound(f"{self.exchange_id}: no order {client_order_id or exchange_order_id}",
                                       exchange=self.exchange_id)
        if order.status != "open":
            raise errors.OrderNotFound(f"{self.exchange_id}: order {order.client_order_id} is {order.status}",
                                       exchange=self.exchange_id)
        m = self._markets[symbol]
        left = order.amount - order.filled
        if order.side is Side.BUY and order.price is not None:
            q = self._bal(m.quote)
            q[0] += left * order.price
            q[1] -= left * order.price
        elif order.side is Side.SELL:
            b = self._bal(m.base)
            b[0] += left
            b[1] -= left
        order.status = "canceled"
        return _copy(order)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        if symbol is not None:
            self.market(symbol)
        self._sweep()
        return [_copy(o) for o in self._orders.values()
                if o.status == "open" and (symbol is None or o.symbol == symbol)]

    async def fetch_balance(self) -> dict[str, Balance]:
        self._sweep()
        return {a: Balance(a, max(v[0], 0.0), max(v[1], 0.0)) for a, v in self._balances.items() if v[0] or v[1]}

    # ------------------------------------------------------------------ streams
    async def watch_ticker(self, symbol: str) -> Ticker:
        self.market(symbol)
        await asyncio.sleep(self.stream_interval_s)
        return await self.fetch_ticker(symbol)

    async def watch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        self.market(symbol)
        await asyncio.sleep(self.stream_interval_s)
        return await self.fetch_order_book(symbol, limit)

    async def watch_trades(self, symbol: str) -> list[Trade]:
        self.market(symbol)
        since = self._last_trade_ms.get(symbol, self.now_ms())
        await asyncio.sleep(self.stream_interval_s)
        now = self.now_ms()
        trades = [t for t in self._trades_between(symbol, since + 1, now, 1000) if t.timestamp_ms > since]
        self._last_trade_ms[symbol] = now
        return trades

    async def watch_ohlcv(self, symbol: str, timeframe: str = "1m") -> list[Candle]:
        self.market(symbol)
        await asyncio.sleep(self.stream_interval_s)
        return (await self.fetch_ohlcv(symbol, timeframe, None, 2))[-1:]

    async def close(self) -> None:
        return None


def _copy(order: ExchangeOrder) -> ExchangeOrder:
    return dataclasses.replace(order, fills=list(order.fills))


__all__ = ["SIM_SYMBOLS", "TIMEFRAME_MS", "VENUES", "SimExchange", "SimSymbol"]
