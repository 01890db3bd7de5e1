"""`replay`: an exchange that plays stored candles forward, one candle per step, without look-ahead.

The replay clock is the close of the current candle: everything the adapter returns was known at that moment
(tickers and books come from that candle's close, fetch_ohlcv never returns a later candle). Orders fill at the
current synthetic bid/ask (market) or when a later candle trades through the limit price (limit), with the taker or
maker fee. `watch_*` advance the clock by one candle per call, so streaming consumers and strategies can be run
over history unchanged.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from trading.exchanges import errors
from trading.exchanges.base import FixedMarkets, settle_fill, timeframe_ms
from trading.market_data.candles import CandleStore
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


class ReplayFinished(errors.ExchangeError):
    """The stored history is exhausted."""


class ReplayExchange(FixedMarkets):
    simulated = True

    def __init__(
        self,
        store: CandleStore,
        *,
        source_exchange: str,
        timeframe: str = "1h",
        symbols: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        exchange_id: str = "replay",
        spread_bps: float = 2.0,
        taker_fee: float = 0.001,
        maker_fee: float = 0.001,
        stream_interval_s: float = 0.0,
        balances: dict[str, float] | None = None,
    ) -> None:
        self.exchange_id = exchange_id
        self.source_exchange = source_exchange
        self.timeframe = timeframe
        self.step = timeframe_ms(timeframe)
        self.spread_bps = spread_bps
        self.stream_interval_s = stream_interval_s
        self._store = store
        stored = {s["symbol"] for s in store.series()
                  if s["exchange"] == source_exchange and s["timeframe"] == timeframe}
        wanted = list(symbols) if symbols is not None else sorted(stored)
        missing = [s for s in wanted if s not in stored]
        if missing:
            raise errors.UnknownSymbol(missing[0], stored, exchange=f"replay of {source_exchange} {timeframe}")
        if not wanted:
            raise errors.ExchangeError(f"replay: no stored {timeframe} candles for {source_exchange}; "
                                       "run `crypto-agent data download` or `data import` first")
        self._candles: dict[str, list[Candle]] = {
            s: store.load(source_exchange, s, timeframe, start_ms=None, end_ms=end_ms) for s in wanted}
        firsts = [c[0].timestamp_ms for c in self._candles.values() if c]
        lasts = [c[-1].timestamp_ms for c in self._candles.values() if c]
        self.start_ms = max(firsts) if start_ms is None else max(start_ms, min(firsts))
        self.end_ms = max(lasts)
        self.cursor_ms = self.start_ms  # open time of the current (just closed) candle
        self._markets = {s: Market(exchange=exchange_id, symbol=s, base=s.split("/")[0], quote=s.split("/")[-1],
                                   price_precision=None, amount_precision=None, min_amount=None, min_cost=None,
                                   taker_fee=taker_fee, maker_fee=maker_fee) for s in wanted}
        self._balances = {k: [v, 0.0] for k, v in (balances or {"USDT": 100_000.0}).items()}
        self._orders: dict[str, ExchangeOrder] = {}
        self._seq = 0

    # ------------------------------------------------------------------ the replay clock
    @property
    def now_ms(self) -> int:
        return self.cursor_ms + self.step  # the current candle has closed

    async def fetch_time(self) -> int:
        return self.now_ms

    def advance(self, candles: int = 1) -> bool:
        """Move forward; False (and no move) when the history is exhausted."""
        target = self.cursor_ms + candles * self.step
        if target > self.end_ms:
            return False
        for _ in range(candles):
            self.cursor_ms += self.step
            self._fill_resting()
        return True

    def _index(self, symbol: str, ts: int) -> int:
        """Index of the last candle with open time <= ts (-1 if none)."""
        rows = self._candles[symbol]
        lo, hi = 0, len(rows)
        while lo < hi:
            mid = (lo + hi) // 2
            if rows[mid].timestamp_ms <= ts:
                lo = mid + 1
            else:
                hi = mid
        return lo - 1

    def _current(self, symbol: str) -> Candle:
        self.market(symbol)
        i = self._index(symbol, self.cursor_ms)
        if i < 0:
            raise errors.ExchangeError(f"replay: no {symbol} candle at or before the replay time")
        return self._candles[symbol][i]

    def _quote(self, symbol: str) -> tuple[float, float, float]:
        close = self._current(symbol).close
        half = close * self.spread_bps / 20_000
        return close, close - half, close + half

    # ------------------------------------------------------------------ markets and data

    async def fetch_ticker(self, symbol: str) -> Ticker:
        last, bid, ask = self._quote(symbol)
        rows = self._candles[symbol]
        i = self._index(symbol, self.cursor_ms)
        day = rows[max(0, i - 86_400_000 // self.step + 1): i + 1]
        open_24h = day[0].open
        return Ticker(exchange=self.exchange_id, symbol=symbol, timestamp_ms=self.now_ms, bid=bid, ask=ask,
                      last=last, open_24h=open_24h, high_24h=max(c.high for c in day),
                      low_24h=min(c.low for c in day), base_volume_24h=sum(c.volume for c in day),
                      quote_volume_24h=sum(c.volume * c.close for c in day),
                      change_pct_24h=(last / open_24h - 1) * 100 if open_24h else None, simulated=True)

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        candle = self._current(symbol)
        _, bid, ask = self._quote(symbol)
        gap = max((candle.high - candle.low) / 20, bid * 1e-5)
        size = max(candle.volume / 50, 1e-9)
        bids = tuple(BookLevel(bid - i * gap, size * (1 + i * 0.2)) for i in range(limit) if bid - i * gap > 0)
        asks = tuple(BookLevel(ask + i * gap, size * (1 + i * 0.2)) for i in range(limit))
        return OrderBook(self.exchange_id, symbol, self.now_ms, bids, asks,
                         nonce=self.cursor_ms // self.step, simulated=True)

    async def fetch_ohlcv(self, symbol: str, timeframe: str = "1h", since: int | None = None,
                          limit: int = 500) -> list[Candle]:
        self.market(symbol)
        step = timeframe_ms(timeframe)
        if step % self.step:
            raise errors.UnsupportedOperation(f"replay holds {self.timeframe} candles; ask for {self.timeframe} "
                                              "or a multiple of it", exchange=self.exchange_id)
        rows = self._candles[symbol][: self._index(symbol, self.cursor_ms) + 1]  # nothing after the clock
        if step != self.step:
            rows = _resample(rows, step, complete_before=self.now_ms)
        if since is not None:
            rows = [c for c in rows if c.timestamp_ms >= since][:limit]
        else:
            rows = rows[-limit:]
        return rows

    async def fetch_trades(self, symbol: str, since: int | None = None, limit: int = 100) -> list[Trade]:
        rows = await self.fetch_ohlcv(symbol, self.timeframe, since, limit)
        return [Trade(self.exchange_id, symbol, c.timestamp_ms + self.step - 1, c.close, c.volume, None,
                      f"replay-{c.timestamp_ms}") for c in rows]

    # ------------------------------------------------------------------ orders
    def _bal(self, asset: str) -> list[float]:
        return self._balances.setdefault(asset, [0.0, 0.0])

    def _fill(self, order: ExchangeOrder, price: float, fee_rate: float) -> None:
        m = self._markets[order.symbol]
        qty = order.amount - order.filled
        cost = qty * price
        fee = cost * fee_rate
        settle_fill(self._bal(m.quote), self._bal(m.base), order, qty, cost, fee)
        order.fills.append(Trade(self.exchange_id, order.symbol, self.now_ms, price, qty, order.side,
                                 f"replay-t{len(order.fills)}-{order.client_order_id}"))
        order.filled = order.amount
        order.average = price
        order.fee_cost += fee
        order.fee_currency = m.quote
        order.status = "closed"

    def _fill_resting(self) -> None:
        for order in self._orders.values():
            if order.status != "open" or order.price is None:
                continue
            candle = self._current(order.symbol)
            if (order.side is Side.BUY and candle.low <= order.price) or \
                    (order.side is Side.SELL and candle.high >= order.price):
                self._fill(order, order.price, self._markets[order.symbol].maker_fee)

    async def create_order(self, symbol: str, side: Side, type: OrderType, amount: float,
                           price: float | None = None, *, client_order_id: str) -> ExchangeOrder:
        m = self.market(symbol)
        if client_order_id in self._orders:
            raise errors.OrderRejected(f"replay: duplicate client order id {client_order_id}",
                                       exchange=self.exchange_id)
        if amount <= 0 or (type is OrderType.LIMIT and (price is None or price <= 0)):
            raise errors.OrderRejected("replay: amount must be positive and limit orders need a positive price",
                                       exchange=self.exchange_id)
        _, bid, ask = self._quote(symbol)
        touch = ask if side is Side.BUY else bid
        marketable = type is OrderType.MARKET or (price is not None and (
            (side is Side.BUY and price >= ask) or (side is Side.SELL and price <= bid)))
        ref = touch if marketable else (price or touch)
        quote, base = self._bal(m.quote), self._bal(m.base)
        need = amount * ref * (1 + m.taker_fee) if side is Side.BUY else amount
        have = quote[0] if side is Side.BUY else base[0]
        if need > have + 1e-9:
            raise errors.InsufficientFunds(f"replay: need {need:.8g} {m.quote if side is Side.BUY else m.base}, "
                                           f"have {have:.8g}", exchange=self.exchange_id)
        self._seq += 1
        order = ExchangeOrder(self.exchange_id, symbol, client_order_id, f"replay-{self._seq}", side, type, amount,
                              price, "open", timestamp_ms=self.now_ms)
        self._orders[client_order_id] = order
        if marketable:
            if type is OrderType.LIMIT and price is not None:  # lock then release at fill, like a resting order
                if side is Side.BUY:
                    quote[0] -= amount * price
                    quote[1] += amount * price
                else:
                    base[0] -= amount
                    base[1] += amount
            self._fill(order, touch, m.taker_fee)
        elif side is Side.BUY:
            quote[0] -= amount * (price or 0.0)
            quote[1] += amount * (price or 0.0)
        else:
            base[0] -= amount
            base[1] += amount
        return dataclasses.replace(order, fills=list(order.fills))

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        self.market(symbol)  # an unknown symbol is UnknownSymbol, as on every venue
        order = self._orders.get(client_order_id)
        return dataclasses.replace(order, fills=list(order.fills)) if order and order.symbol == symbol else None

    async def cancel_order(self, symbol: str, *, client_order_id: str | None = None,
                           exchange_order_id: str | None = None) -> ExchangeOrder:
        self.market(symbol)
        order = self._orders.get(client_order_id or "") if client_order_id else next(
            (o for o in self._orders.values() if o.exchange_order_id == exchange_order_id), None)
        if order is None or order.symbol != symbol or order.status != "open":
            raise errors.OrderNotFound(f"replay: no open order {client_order_id or exchange_order_id}",
                                       exchange=self.exchange_id)
        m = self._markets[symbol]
        left = order.amount - order.filled
        if order.side is Side.BUY:
            q = self._bal(m.quote)
            q[0] += left * (order.price or 0.0)
            q[1] -= left * (order.price or 0.0)
        else:
            b = self._bal(m.base)
            b[0] += left
            b[1] -= left
        order.status = "canceled"
        return dataclasses.replace(order, fills=list(order.fills))

    async def fetch_open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        if symbol is not None:
            self.market(symbol)
        return [dataclasses.replace(o, fills=list(o.fills)) for o in self._orders.values()
                if o.status == "open" and (symbol is None or o.symbol == symbol)]

    async def fetch_balance(self) -> dict[str, Balance]:
        return {a: Balance(a, v[0], v[1]) for a, v in self._balances.items() if v[0] or v[1]}

    # ------------------------------------------------------------------ streams: one candle per update
    async def _step(self) -> None:
        if self.stream_interval_s:
            await asyncio.sleep(self.stream_interval_s)
        if not self.advance():
            raise ReplayFinished(f"replay of {self.source_exchange} {self.timeframe} finished at "
                                 f"{self.end_ms}", exchange=self.exchange_id)

    async def watch_ticker(self, symbol: str) -> Ticker:
        self.market(symbol)
        await self._step()
        return await self.fetch_ticker(symbol)

    async def watch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        self.market(symbol)
        await self._step()
        return await self.fetch_order_book(symbol, limit)

    async def watch_trades(self, symbol: str) -> list[Trade]:
        self.market(symbol)
        await self._step()
        return (await self.fetch_trades(symbol, None, 1))[-1:]

    async def watch_ohlcv(self, symbol: str, timeframe: str = "1m") -> list[Candle]:
        self.market(symbol)
        await self._step()
        return (await self.fetch_ohlcv(symbol, self.timeframe, None, 1))[-1:]

    async def close(self) -> None:
        return None


def _resample(rows: list[Candle], step: int, *, complete_before: int) -> list[Candle]:
    """Aggregate candles into `step` buckets; only buckets that closed before `complete_before`."""
    out: list[Candle] = []
    bucket: list[Candle] = []
    key = None
    for c in rows:
        k = c.timestamp_ms - c.timestamp_ms % step
        if key is not None and k != key:
            out.append(_merge(key, bucket))
            bucket = []
        key = k
        bucket.append(c)
    if bucket and key is not None and key + step <= complete_before:
        out.append(_merge(key, bucket))
    return out


def _merge(ts: int, rows: list[Candle]) -> Candle:
    return Candle(ts, rows[0].open, max(c.high for c in rows), min(c.low for c in rows), rows[-1].close,
                  sum(c.volume for c in rows))
