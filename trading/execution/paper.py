"""Paper exchange: fills against a live or simulated order book with fees, slippage, latency, partial fills.

- Market orders walk the opposite side of the book (taker fee, plus `slippage_bps` against the trader);
  depth that runs out leaves the remainder unfilled and the order `canceled` (IOC): partial fills happen.
- Limit orders take whatever crosses at once (taker), then rest; each later look at the book (`poll`, or any
  query of the order) fills a resting order as maker up to `fill_ratio` of the depth at or through its price.
- Balances are per venue; an order the balance cannot cover is refused (`InsufficientFunds`).
- A client order id can be used once (a repeat is refused, like Binance's duplicate-id error).
- With a `db`, orders and balances are written through to Mongo: a restarted process sees the same venue, and so
  does another process on the same database (the CLI while the server runs): every write bumps a revision, and an
  instance whose revision is behind reloads the venue before it reads or changes it.
- With `stop_kinds` (the live venue's answer, when paper trading on its data), sell stops rest untriggered until a
  look at the book finds the best bid at or below the trigger, then take liquidity as a market order or as a limit
  at their limit price, as the live venue would hold them (it triggers on trades; paper sees only books).
"""

from __future__ import annotations

import asyncio
import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

from pymongo.database import Database

from core.clock import now_ms
from trading.exchanges.errors import InsufficientFunds, OrderNotFound, OrderRejected
from trading.execution.venue import MarketSource
from trading.types import Balance, BookLevel, ExchangeOrder, Market, OrderBook, OrderType, Side, Trade, stop_shape_error

_EPS = 1e-12


def _order_to_doc(o: ExchangeOrder) -> dict[str, Any]:
    return {
        "exchange": o.exchange,
        "symbol": o.symbol,
        "client_order_id": o.client_order_id,
        "exchange_order_id": o.exchange_order_id,
        "side": o.side.value,
        "type": o.type.value,
        "amount": o.amount,
        "price": o.price,
        "status": o.status,
        "filled": o.filled,
        "average": o.average,
        "fee_cost": o.fee_cost,
        "fee_currency": o.fee_currency,
        "timestamp_ms": o.timestamp_ms,
        "trigger_price": o.trigger_price,
        "fills": [
            {"price": t.price, "amount": t.amount, "timestamp_ms": t.timestamp_ms, "trade_id": t.trade_id}
            for t in o.fills
        ],
    }


def _order_from_doc(d: Mapping[str, Any]) -> ExchangeOrder:
    side = Side(d["side"])
    return ExchangeOrder(
        exchange=d["exchange"],
        symbol=d["symbol"],
        client_order_id=d["client_order_id"],
        exchange_order_id=d.get("exchange_order_id"),
        side=side,
        type=OrderType(d["type"]),
        amount=float(d["amount"]),
        price=d.get("price"),
        status=d["status"],
        filled=float(d.get("filled", 0.0)),
        average=d.get("average"),
        fee_cost=float(d.get("fee_cost", 0.0)),
        fee_currency=d.get("fee_currency"),
        timestamp_ms=int(d.get("timestamp_ms", 0)),
        trigger_price=d.get("trigger_price"),
        fills=[
            Trade(
                d["exchange"],
                d["symbol"],
                int(f["timestamp_ms"]),
                float(f["price"]),
                float(f["amount"]),
                side,
                f.get("trade_id"),
            )
            for f in d.get("fills", [])
        ],
    )


class PaperExchange:
    """An `OrderVenue` that simulates execution on top of a `MarketSource` (live adapter or simulator)."""

    simulated = True

    def __init__(
        self,
        source: MarketSource,
        *,
        balances: Mapping[str, float] | None = None,
        slippage_bps: float = 2.0,
        latency_s: float = 0.0,
        fill_ratio: float = 1.0,
        db: Database[dict[str, Any]] | None = None,
        clock: Callable[[], int] = now_ms,
        exchange_id: str | None = None,
        stop_kinds: Callable[[str], str | None] | None = None,
    ) -> None:
        if not 0 < fill_ratio <= 1:
            raise ValueError("fill_ratio must be in (0, 1]")
        self.source = source
        self.exchange_id = exchange_id or source.exchange_id
        self.slippage = slippage_bps / 10_000.0
        self.latency_s = latency_s
        self.fill_ratio = fill_ratio
        self.clock = clock
        self._orders: dict[str, ExchangeOrder] = {}
        self._reserved: dict[str, float] = {}  # client id -> funds still held for an open order
        self._armed: set[str] = set()  # client ids of stops whose trigger has not been reached
        self._stop_kinds = stop_kinds
        self._balances: dict[str, Balance] = {}
        self._seq = 0
        self._rev = 0  # revision of the stored venue this instance holds (see `_refresh`)
        self._lock = asyncio.Lock()
        self._col = db["paper_orders"] if db is not None else None
        self._bal_col = db["paper_balances"] if db is not None else None
        loaded = self._load()
        if not loaded:
            for asset, amount in (balances or {}).items():
                self._balances[asset] = Balance(asset, float(amount), 0.0)
            self._save_balances()

    # --- persistence ---
    def _load(self) -> bool:
        if self._col is None or self._bal_col is None:
            return False
        doc = self._bal_col.find_one({"_id": self.exchange_id})
        if doc is None:
            return False
        self._balances.clear()
        self._orders.clear()
        self._reserved.clear()
        self._armed.clear()
        for asset, (free, used) in doc["balances"].items():
            self._balances[asset] = Balance(asset, float(free), float(used))
        self._seq = int(doc.get("seq", 0))
        self._rev = int(doc.get("rev", 0))
        for d in self._col.find({"exchange": self.exchange_id}):
            o = _order_from_doc(d)
            self._orders[o.client_order_id] = o
            if o.status == "open":
                self._reserved[o.client_order_id] = float(d.get("reserved", 0.0))
                if d.get("armed"):
                    self._armed.add(o.client_order_id)
        return True

    def _refresh(self) -> None:
        """Reload the venue if another process changed it since this instance last read or wrote it."""
        if self._bal_col is None:
            return
        doc = self._bal_col.find_one({"_id": self.exchange_id}, {"rev": 1})
        if doc is not None and int(doc.get("rev", 0)) != self._rev:
            self._load()

    def _save_balances(self) -> None:
        if self._bal_col is not None:
            self._rev += 1
            self._bal_col.replace_one(
                {"_id": self.exchange_id},
                {
                    "_id": self.exchange_id,
                    "seq": self._seq,
                    "rev": self._rev,
                    "balances": {a: [b.free, b.used] for a, b in self._balances.items()},
                },
                upsert=True,
            )

    def _save(self, order: ExchangeOrder) -> None:
        if self._col is not None:
            doc = _order_to_doc(order)
            doc["_id"] = f"{self.exchange_id}:{order.client_order_id}"
            doc["reserved"] = self._reserved.get(order.client_order_id, 0.0)
            doc["armed"] = order.client_order_id in self._armed
            self._col.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        self._save_balances()

    # --- market data ---
    def market(self, symbol: str) -> Market:
        return self.source.market(symbol)

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        return await self.source.fetch_order_book(symbol, limit)

    # --- balances ---
    def _bal(self, asset: str) -> Balance:
        bal = self._balances.get(asset)
        if bal is None:
            bal = self._balances[asset] = Balance(asset, 0.0, 0.0)
        return bal

    async def fetch_balance(self) -> dict[str, Balance]:
        self._refresh()
        return {a: Balance(a, b.free, b.used) for a, b in self._balances.items()}

    def balances_snapshot(self) -> dict[str, float]:
        return {a: b.total for a, b in self._balances.items()}

    # --- orders ---
    async def create_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: float,
        price: float | None = None,
        *,
        client_order_id: str,
    ) -> ExchangeOrder:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        book = await self.source.fetch_order_book(symbol, 50)
        async with self._lock:
            self._refresh()
            if client_order_id in self._orders:
                raise OrderRejected(f"duplicate client order id {client_order_id}", exchange=self.exchange_id)
            mkt = self.market(symbol)
            self._validate(mkt, type, amount, price)
            order = self._new_order(mkt, client_order_id, side, type, amount, price)
            self._reserve(order, mkt, book)
            self._match(order, mkt, book, taker=True)
            self._end_market(order, mkt)
            self._orders[client_order_id] = order
            self._save(order)
            return copy.deepcopy(order)

    def _new_order(
        self, mkt: Market, client_order_id: str, side: Side, type: OrderType, amount: float, price: float | None,
        trigger_price: float | None = None,
    ) -> ExchangeOrder:
        order = ExchangeOrder(
            exchange=self.exchange_id,
            symbol=mkt.symbol,
            client_order_id=client_order_id,
            exchange_order_id=f"P{self.clock()}{self._seq:06d}",
            side=side,
            type=type,
            amount=amount,
            price=price,
            status="open",
            fee_currency=mkt.quote,
            timestamp_ms=self.clock(),
            trigger_price=trigger_price,
        )
        self._seq += 1
        return order

    def _end_market(self, order: ExchangeOrder, mkt: Market) -> None:
        """A market order takes what the book has at once (IOC): the rest is released and the order ends."""
        if order.type is OrderType.MARKET and order.status == "open":
            self._release(order, mkt)
            order.status = "closed" if order.filled >= order.amount - _EPS else "canceled"

    def native_stop_kind(self, symbol: str) -> str | None:
        return self._stop_kinds(symbol) if self._stop_kinds is not None else None

    def native_trailing(self, symbol: str) -> bool:
        return False  # paper sees the book only when asked: its high-water mark would lag the desk's

    async def create_stop_order(
        self,
        symbol: str,
        side: Side,
        amount: float,
        trigger_price: float,
        limit_price: float | None = None,
        *,
        client_order_id: str,
        trail_pct: float | None = None,
    ) -> ExchangeOrder:
        kind = self.native_stop_kind(symbol)
        if trail_pct is not None:
            raise OrderRejected(f"no trailing stops for {symbol} on paper", exchange=self.exchange_id)
        if kind is None or side is not Side.SELL:
            raise OrderRejected(f"no native {side.value} stops for {symbol}", exchange=self.exchange_id)
        if shape := stop_shape_error(symbol, kind, limit_price):
            raise OrderRejected(shape, exchange=self.exchange_id)
        if not (trigger_price > 0 and math.isfinite(trigger_price)):
            raise OrderRejected("stop needs a positive trigger price", exchange=self.exchange_id)
        book = await self.source.fetch_order_book(symbol, 50)
        async with self._lock:
            self._refresh()
            if client_order_id in self._orders:
                raise OrderRejected(f"duplicate client order id {client_order_id}", exchange=self.exchange_id)
            if book.best_bid is not None and book.best_bid <= trigger_price:
                raise OrderRejected("stop price would trigger immediately", exchange=self.exchange_id)
            mkt = self.market(symbol)
            type = OrderType.MARKET if limit_price is None else OrderType.LIMIT
            self._validate(mkt, type, amount, limit_price)
            order = self._new_order(mkt, client_order_id, side, type, amount, limit_price, trigger_price)
            self._reserve(order, mkt, book)
            self._armed.add(client_order_id)
            self._orders[client_order_id] = order
            self._save(order)
            return copy.deepcopy(order)

    def _validate(self, mkt: Market, type: OrderType, amount: float, price: float | None) -> None:
        if not (amount > 0 and math.isfinite(amount)):
            raise OrderRejected("amount must be positive", exchange=self.exchange_id)
        if mkt.min_amount is not None and amount < mkt.min_amount * (1 - 1e-9):
            raise OrderRejected(f"amount {amount} below minimum {mkt.min_amount}", exchange=self.exchange_id)
        step = mkt.amount_precision
        if step and abs(round(amount / step) * step - amount) > step * 1e-6:
            raise OrderRejected(f"amount {amount} not a multiple of step {step}", exchange=self.exchange_id)
        if type is OrderType.LIMIT:
            if price is None or not price > 0:
                raise OrderRejected("limit order needs a positive price", exchange=self.exchange_id)
            if mkt.min_cost is not None and amount * price < mkt.min_cost * (1 - 1e-9):
                raise OrderRejected(f"notional below minimum {mkt.min_cost}", exchange=self.exchange_id)

    def _reserve(self, order: ExchangeOrder, mkt: Market, book: OrderBook) -> None:
        if order.side is Side.BUY:
            if order.type is OrderType.LIMIT:
                assert order.price is not None
                need = order.amount * order.price * (1 + max(mkt.taker_fee, mkt.maker_fee))
            else:
                need = self._walk_cost(book.asks, order.amount) * (1 + self.slippage) * (1 + mkt.taker_fee)
            bal = self._bal(mkt.quote)
            if need > bal.free + 1e-9:
                raise InsufficientFunds(
                    f"insufficient {mkt.quote}: need {need:.8f}, free {bal.free:.8f}",
                    exchange=self.exchange_id,
                )
            bal.free -= need
            bal.used += need
            order_reserved = need
        else:
            bal = self._bal(mkt.base)
            if order.amount > bal.free + 1e-12:
                raise InsufficientFunds(
                    f"insufficient {mkt.base}: need {order.amount}, free {bal.free}",
                    exchange=self.exchange_id,
                )
            bal.free -= order.amount
            bal.used += order.amount
            order_reserved = order.amount
        self._reserved[order.client_order_id] = order_reserved

    def _release(self, order: ExchangeOrder, mkt: Market) -> None:
        left = self._reserved.pop(order.client_order_id, 0.0)
        if left <= 0:
            return
        bal = self._bal(mkt.quote if order.side is Side.BUY else mkt.base)
        bal.used = max(0.0, bal.used - left)
        bal.free += left

    @staticmethod
    def _walk_cost(levels: tuple[BookLevel, ...], amount: float) -> float:
        left, cost = amount, 0.0
        last = 0.0
        for lvl in levels:
            take = min(left, lvl.amount)
            cost += take * lvl.price
            left -= take
            last = lvl.price
            if left <= _EPS:
                break
        return cost + max(left, 0.0) * last

    def _match(self, order: ExchangeOrder, mkt: Market, book: OrderBook, *, taker: bool) -> None:
        """Fill `order` against `book` (levels we have not consumed before, scaled by fill_ratio)."""
        is_buy = order.side is Side.BUY
        levels = book.asks if is_buy else book.bids
        fee_rate = mkt.taker_fee if taker else mkt.maker_fee
        left = order.amount - order.filled
        ratio = 1.0 if (taker and order.type is OrderType.MARKET) else self.fill_ratio
        step = mkt.amount_precision
        for lvl in levels:
            if left <= _EPS:
                break
            if order.type is OrderType.LIMIT:
                assert order.price is not None
                if (is_buy and lvl.price > order.price + _EPS) or (not is_buy and lvl.price < order.price - _EPS):
                    break
            take = min(left, lvl.amount * ratio)
            if step:
                take = math.floor(take / step + 1e-9) * step
            if take <= _EPS:
                continue
            if order.type is OrderType.MARKET:
                px = lvl.price * (1 + self.slippage) if is_buy else lvl.price * (1 - self.slippage)
            elif taker:
                px = lvl.price
            else:
                assert order.price is not None
                px = order.price  # resting maker fill at the order's own price
            self._apply_fill(order, mkt, take, px, fee_rate)
            left -= take
        if order.filled >= order.amount - _EPS:
            order.status = "closed"
            self._release(order, mkt)

    def _apply_fill(self, order: ExchangeOrder, mkt: Market, amount: float, price: float, fee_rate: float) -> None:
        notional = amount * price
        fee = notional * fee_rate
        quote, base = self._bal(mkt.quote), self._bal(mkt.base)
        reserved = self._reserved.get(order.client_order_id, 0.0)
        if order.side is Side.BUY:
            spend = notional + fee
            from_reserve = min(spend, reserved)
            quote.used = max(0.0, quote.used - from_reserve)
            quote.free -= spend - from_reserve
            self._reserved[order.client_order_id] = reserved - from_reserve
            base.free += amount
        else:
            from_reserve = min(amount, reserved)
            base.used = max(0.0, base.used - from_reserve)
            base.free -= amount - from_reserve
            self._reserved[order.client_order_id] = reserved - from_reserve
            quote.free += notional - fee
        prev = order.filled
        order.filled = prev + amount
        order.average = ((order.average or 0.0) * prev + price * amount) / order.filled
        order.fee_cost += fee
        order.fills.append(
            Trade(
                self.exchange_id,
                order.symbol,
                self.clock(),
                price,
                amount,
                order.side,
                f"{order.client_order_id}-{len(order.fills) + 1}",
            )
        )

    async def poll(self, symbol: str | None = None) -> int:
        """Match resting limit orders against fresh books; returns the number of orders that got fills."""
        self._refresh()
        symbols = sorted(
            {o.symbol for o in self._orders.values() if o.status == "open" and (symbol is None or o.symbol == symbol)}
        )
        touched = 0
        for sym in symbols:
            book = await self.source.fetch_order_book(sym, 50)
            async with self._lock:
                self._refresh()
                mkt = self.market(sym)
                for order in list(self._orders.values()):
                    if order.symbol != sym or order.status != "open":
                        continue
                    before = order.filled
                    taker = False
                    if order.client_order_id in self._armed:
                        assert order.trigger_price is not None
                        if book.best_bid is None or book.best_bid > order.trigger_price:
                            continue
                        self._armed.discard(order.client_order_id)  # triggered: it takes liquidity now
                        taker = True
                    self._match(order, mkt, book, taker=taker)
                    if taker:
                        self._end_market(order, mkt)
                    if order.filled > before:
                        touched += 1
                    if order.filled > before or taker:
                        self._save(order)
        return touched

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        self._refresh()
        order = self._orders.get(client_order_id)
        if order is None:
            return None
        if order.status == "open":
            await self.poll(symbol)
        return copy.deepcopy(self._orders[client_order_id])

    async def cancel_order(
        self, symbol: str, *, client_order_id: str | None = None, exchange_order_id: str | None = None
    ) -> ExchangeOrder:
        async with self._lock:
            self._refresh()
            order = self._orders.get(client_order_id or "")
            if order is None and exchange_order_id is not None:
                order = next((o for o in self._orders.values() if o.exchange_order_id == exchange_order_id), None)
            if order is None:
                raise OrderNotFound(f"no order {client_order_id or exchange_order_id}", exchange=self.exchange_id)
            if order.status == "open":
                order.status = "canceled"
                self._armed.discard(order.client_order_id)
                self._release(order, self.market(order.symbol))
                self._save(order)
            return copy.deepcopy(order)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        self._refresh()
        return [
            copy.deepcopy(o)
            for o in self._orders.values()
            if o.status == "open" and (symbol is None or o.symbol == symbol)
        ]

    async def close(self) -> None:
        return None
