"""A Binance-shaped exchange on loopback for tests: REST (public + signed), a websocket stream, fault injection.

Start it from sync code (it runs its own event loop in a daemon thread):

    with FakeBinance() as fake:
        fake.set_price("BTC/USDT", 65_000.0)
        ex = open_exchange("binance", api_url=fake.url)

Point ccxt at it by replacing the origin of every `urls['api']` entry with `fake.url` (REST) and `fake.ws_url`
(websocket). Signed endpoints accept any signature. Faults are queued per path (or "*" for any path) and consumed
one per request: `fail(path, status, times, retry_after=...)`, `delay(path, seconds)`, `malformed(path)`;
`drop_websockets()` closes every open stream connection; `skip_depth_sequence(symbol)` makes the next depth diff
jump its update id (a gap a client must detect).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

Json = dict[str, Any]
PARAMS = web.RequestKey("params", dict)

INTERVAL_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}


@dataclass
class FakeMarket:
    symbol: str  # unified, e.g. BTC/USDT
    base: str
    quote: str
    last: float
    tick: float = 0.01
    step: float = 0.00001
    min_qty: float = 0.00001
    max_qty: float = 9000.0
    min_notional: float = 5.0
    spread_bps: float = 1.0
    listed_ms: int = 1_500_000_000_000  # 2017-07-14: klines start here
    open_24h: float | None = None
    volume_24h: float = 12_345.0
    book_version: int = 1_000
    kline_gaps: set[int] = field(default_factory=set)  # open times to leave out of /klines
    # what exchangeInfo lists (and the fake accepts); Binance spot lists STOP_LOSS only for some pairs
    order_types: tuple[str, ...] = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")

    @property
    def market_id(self) -> str:
        return f"{self.base}{self.quote}"

    def bid(self) -> float:
        return round_to(self.last * (1 - self.spread_bps / 20_000), self.tick)

    def ask(self) -> float:
        return max(round_to(self.last * (1 + self.spread_bps / 20_000), self.tick), self.bid() + self.tick)


@dataclass
class Fault:
    kind: str  # status | delay | malformed
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0
    body: str | None = None


_STOP_LIMIT_TYPES = ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
_STOP_TYPES = ("STOP_LOSS", "TAKE_PROFIT", *_STOP_LIMIT_TYPES)


def _stop_reached(otype: str, side: str, stop_price: float, last: float) -> bool:
    """Binance triggers on the last trade: a stop-loss when the price moves against the side, a take-profit when it
    moves in its favour."""
    loss = otype.startswith("STOP_LOSS")
    falls_to = (side == "SELL") == loss
    return last <= stop_price if falls_to else last >= stop_price


def round_to(value: float, step: float) -> float:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return round(round(value / step) * step, decimals)


def fmt(value: float) -> str:
    return f"{value:.8f}".rstrip("0").rstrip(".") if value != 0 else "0"


def kline_price(market: FakeMarket, index: int) -> float:
    """A deterministic smooth path: candle `index` (from listing) closes here; no randomness, so pages agree."""
    return market.last * (
        1.0 + 0.05 * math.sin(index * 0.013) + 0.01 * math.sin(index * 0.7) + 0.002 * math.cos(index * 3.1)
    )


class FakeBinance:
    def __init__(self, *, now_ms: int | None = None) -> None:
        self.markets: dict[str, FakeMarket] = {}
        self.fixed_now_ms = now_ms
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, query/form params)
        self.orders: dict[int, Json] = {}
        self.my_trades: list[Json] = []
        self.balances: dict[str, list[float]] = {"USDT": [100_000.0, 0.0], "BTC": [1.0, 0.0], "ETH": [10.0, 0.0]}
        self.auto_fill_market = True
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.RLock()
        self._order_ids = itertools.count(1_000_001)
        self._trade_ids = itertools.count(5_000_001)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._port = 0
        self._sockets: set[web.WebSocketResponse] = set()
        self._subs: dict[web.WebSocketResponse, set[str]] = {}
        self._skip_depth: set[str] = set()
        self._levels: dict[str, tuple[set[str], set[str]]] = {}  # price levels sent, per symbol: bids, asks
        self.ws_connections = 0
        for sym, price in (("BTC/USDT", 65_000.0), ("ETH/USDT", 3_200.0), ("SOL/USDT", 150.0)):
            self.add_market(sym, price)

    # ------------------------------------------------------------------ control from tests
    def add_market(self, symbol: str, last: float, **kwargs: Any) -> FakeMarket:
        base, quote = symbol.split("/")
        market = FakeMarket(symbol=symbol, base=base, quote=quote, last=last, **kwargs)
        if "open_24h" not in kwargs:
            market.open_24h = last * 0.98
        with self._lock:
            self.markets[symbol] = market
        return market

    def set_price(self, symbol: str, last: float, *, push: bool = True) -> None:
        """Trade at `last`: stop orders whose trigger it reaches become market or limit orders, as on Binance."""
        with self._lock:
            market = self.markets[symbol]
            market.last = last
            market.book_version += 3
            self._trigger_stops(market)
        if push:
            self._call_soon(self._push_market, symbol)

    def now_ms(self) -> int:
        return self.fixed_now_ms if self.fixed_now_ms is not None else int(time.time() * 1000)

    def fail(
        self, path: str, status: int, *, times: int = 1, retry_after: float | None = None, body: str | None = None
    ) -> None:
        """The next `times` requests to `path` (e.g. '/api/v3/ticker/24hr', or '*') answer `status` unprocessed."""
        for _ in range(times):
            self._push_fault(path, Fault("status", status=status, retry_after=retry_after, body=body))

    def delay(self, path: str, seconds: float, *, times: int = 1) -> None:
        """The next requests to `path` are handled (state changes included) after `seconds`: a client timeout."""
        for _ in range(times):
            self._push_fault(path, Fault("delay", seconds=seconds))

    def malformed(self, path: str, *, times: int = 1) -> None:
        """The next requests to `path` are processed, then answered with truncated JSON."""
        for _ in range(times):
            self._push_fault(path, Fault("malformed"))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for m, p, _ in self.requests if m == method and p == path)

    def drop_websockets(self) -> None:
        """Close every open websocket connection from the server side (clients must reconnect)."""
        self._call_soon(self._drop_all)

    def skip_depth_sequence(self, symbol: str) -> None:
        with self._lock:
            self._skip_depth.add(symbol)

    def skip_trade_ids(self, count: int) -> None:
        """The next trade id jumps by `count` (trades a client never saw: a trade-id gap)."""
        with self._lock:
            nxt = next(self._trade_ids)
            self._trade_ids = itertools.count(nxt + count)

    def push(self, symbol: str) -> None:
        """Send ticker, depth diff, a trade and a kline for `symbol` to its websocket subscribers now."""
        self._call_soon(self._push_market, symbol)

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}"

    def start(self) -> str:
        if self._thread is not None:
            return self.url
        self._thread = threading.Thread(target=self._run, name="fake-binance", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake binance did not start")
        return self.url

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        with contextlib.suppress(Exception):
            fut.result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeBinance:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        loop.run_until_complete(self._setup())
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _setup(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/api/v3/ping", self._ping)
        r.add_get("/api/v3/time", self._time)
        r.add_get("/api/v3/exchangeInfo", self._exchange_info)
        r.add_get("/api/v3/ticker/24hr", self._ticker)
        r.add_get("/api/v3/ticker/bookTicker", self._book_ticker)
        r.add_get("/api/v3/depth", self._depth)
        r.add_get("/api/v3/klines", self._klines)
        r.add_get("/api/v3/aggTrades", self._agg_trades)
        r.add_get("/api/v3/trades", self._trades)
        r.add_post("/api/v3/order", self._create_order)
        r.add_get("/api/v3/order", self._get_order)
        r.add_delete("/api/v3/order", self._cancel_order)
        r.add_get("/api/v3/openOrders", self._open_orders)
        r.add_get("/api/v3/allOrders", self._all_orders)
        r.add_get("/api/v3/myTrades", self._my_trades_handler)
        r.add_get("/api/v3/account", self._account)
        r.add_get("/ws", self._ws)
        r.add_get("/ws/{tail:.*}", self._ws)
        r.add_get("/stream", self._ws)
        r.add_get("/stream/{tail:.*}", self._ws)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def _shutdown(self) -> None:
        await self._drop_all()
        if self._runner is not None:
            await self._runner.cleanup()

    def _call_soon(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(fn(*args), loop)

    def _push_fault(self, path: str, fault: Fault) -> None:
        with self._lock:
            self._faults.setdefault(path, deque()).append(fault)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for key in (path, "*"):
                queue = self._faults.get(key)
                if queue:
                    return queue.popleft()
        return None

    # ------------------------------------------------------------------ plumbing
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(("/ws", "/stream")):
            return await handler(request)  # type: ignore[no-any-return]
        params: dict[str, str] = dict(request.query)
        if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
            form = await request.post()
            params.update({k: str(v) for k, v in form.items()})
        request[PARAMS] = params
        with self._lock:
            self.requests.append((request.method, request.path, params))
        fault = self._take_fault(request.path)
        if fault is not None:
            if fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
            elif fault.kind == "malformed":
                await handler(request)  # the request is processed; only the reply is garbled
                return web.Response(
                    status=200, text='{"symbol": "BTCUSDT", "lastPrice": ', content_type="application/json"
                )
            else:
                headers = {"Retry-After": fmt(fault.retry_after)} if fault.retry_after is not None else {}
                if fault.status >= 500:  # gateways answer HTML, not Binance JSON
                    return web.Response(status=fault.status, text=fault.body or f"<html>{fault.status}</html>",
                                        headers=headers, content_type="text/html")
                body = fault.body or json.dumps(
                    {"code": -1003 if fault.status in (418, 429) else -1000, "msg": f"injected fault {fault.status}"}
                )
                return web.Response(status=fault.status, text=body, headers=headers, content_type="application/json")
        return await handler(request)  # type: ignore[no-any-return]

    @staticmethod
    def _error(code: int, msg: str, status: int = 400) -> web.Response:
        return web.json_response({"code": code, "msg": msg}, status=status)

    def _market_by_id(self, market_id: str | None) -> FakeMarket | None:
        with self._lock:
            for market in self.markets.values():
                if market.market_id == market_id:
                    return market
        return None

    # ------------------------------------------------------------------ public REST
    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self.now_ms()})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        with self._lock:
            symbols = [self._symbol_info(m) for m in self.markets.values()]
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": self.now_ms(),
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": symbols,
            }
        )

    @staticmethod
    def _symbol_info(m: FakeMarket) -> Json:
        return {
            "symbol": m.market_id,
            "status": "TRADING",
            "baseAsset": m.base,
            "baseAssetPrecision": 8,
            "quoteAsset": m.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": list(m.order_types),
            "icebergAllowed": True,
            "ocoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt(m.tick),
                    "maxPrice": "1000000.00000000",
                    "tickSize": fmt(m.tick),
                },
                {"filterType": "LOT_SIZE", "minQty": fmt(m.min_qty), "maxQty": fmt(m.max_qty), "stepSize": fmt(m.step)},
                {
                    "filterType": "NOTIONAL",
                    "minNotional": fmt(m.min_notional),
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def _ticker_json(self, m: FakeMarket) -> Json:
        now = self.now_ms()
        open_ = m.open_24h or m.last
        change = m.last - open_
        return {
            "symbol": m.market_id,
            "priceChange": fmt(change),
            "priceChangePercent": f"{change / open_ * 100:.3f}",
            "weightedAvgPrice": fmt((m.last + open_) / 2),
            "prevClosePrice": fmt(open_),
            "lastPrice": fmt(m.last),
            "lastQty": "0.01",
            "bidPrice": fmt(m.bid()),
            "bidQty": "1.5",
            "askPrice": fmt(m.ask()),
            "askQty": "2.0",
            "openPrice": fmt(open_),
            "highPrice": fmt(max(m.last, open_) * 1.01),
            "lowPrice": fmt(min(m.last, open_) * 0.99),
            "volume": fmt(m.volume_24h),
            "quoteVolume": fmt(m.volume_24h * m.last),
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": 1,
            "lastId": 1000,
            "count": 1000,
        }

    async def _ticker(self, request: web.Request) -> web.Response:
        market_id = request[PARAMS].get("symbol")
        with self._lock:
            if market_id is None:
                return web.json_response([self._ticker_json(m) for m in self.markets.values()])
            market = self._market_by_id(market_id)
            if market is None:
                return self._error(-1121, "Invalid symbol.")
            return web.json_response(self._ticker_json(market))

    async def _book_ticker(self, request: web.Request) -> web.Response:
        market = self._market_by_id(request[PARAMS].get("symbol"))
        if market is None:
            return self._error(-1121, "Invalid symbol.")
        return web.json_response(
            {
                "symbol": market.market_id,
                "bidPrice": fmt(market.bid()),
                "bidQty": "1.5",
                "askPrice": fmt(market.ask()),
                "askQty": "2.0",
            }
        )

    def _published(self, symbol: str, bids: list[list[str]], asks: list[list[str]]) -> tuple[set[str], set[str]]:
        """Remember the price levels a client may hold (snapshots and diffs); returns the ones known before."""
        known = self._levels.setdefault(symbol, (set(), set()))
        before = (set(known[0]), set(known[1]))
        known[0].update(p for p, _ in bids)
        known[1].update(p for p, _ in asks)
        return before

    def _book_levels(self, m: FakeMarket, depth: int) -> tuple[list[list[str]], list[list[str]]]:
        bids = [[fmt(round_to(m.bid() - i * m.tick * 5, m.tick)), fmt(0.5 + 0.25 * i)] for i in range(depth)]
        asks = [[fmt(round_to(m.ask() + i * m.tick * 5, m.tick)), fmt(0.4 + 0.3 * i)] for i in range(depth)]
        return bids, asks

    async def _depth(self, request: web.Request) -> web.Response:
        market = self._market_by_id(request[PARAMS].get("symbol"))
        if market is None:
            return self._error(-1121, "Invalid symbol.")
        limit = min(int(request[PARAMS].get("limit", 100)), 5000)
        with self._lock:
            bids, asks = self._book_levels(market, min(limit, 50))
            version = market.book_version
            self._published(market.symbol, bids, asks)
        return web.json_response({"lastUpdateId": version, "bids": bids, "asks": asks})

    def klines(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[Any]]:
        market = self.markets[symbol]
        step = INTERVAL_MS[interval]
        now = self.now_ms()
        last_open = (now // step) * step
        first_open = ((market.listed_ms + step - 1) // step) * step
        if start_ms is not None:
            begin = max(first_open, ((start_ms + step - 1) // step) * step)
        elif end_ms is not None:
            begin = max(first_open, (end_ms // step) * step - (limit - 1) * step)
        else:
            begin = max(first_open, last_open - (limit - 1) * step)
        stop = last_open if end_ms is None else min(last_open, end_ms)
        rows: list[list[Any]] = []
        t = begin
        while t <= stop and len(rows) < limit:
            if t not in market.kline_gaps:
                i = (t - market.listed_ms) // step
                open_, close = kline_price(market, i - 1), kline_price(market, i)
                high = max(open_, close) * 1.002
                low = min(open_, close) * 0.998
                vol = 10.0 + (i % 7)
                rows.append(
                    [
                        t,
                        fmt(round_to(open_, market.tick)),
                        fmt(round_to(high, market.tick)),
                        fmt(round_to(low, market.tick)),
                        fmt(round_to(close, market.tick)),
                        fmt(vol),
                        t + step - 1,
                        fmt(vol * close),
                        100,
                        fmt(vol / 2),
                        fmt(vol * close / 2),
                        "0",
                    ]
                )
            t += step
        return rows

    async def _klines(self, request: web.Request) -> web.Response:
        p = request[PARAMS]
        market = self._market_by_id(p.get("symbol"))
        if market is None:
            return self._error(-1121, "Invalid symbol.")
        interval = p.get("interval", "1m")
        if interval not in INTERVAL_MS:
            return self._error(-1120, "Invalid interval.")
        limit = min(int(p.get("limit", 500)), 1000)
        start = int(p["startTime"]) if "startTime" in p else None
        end = int(p["endTime"]) if "endTime" in p else None
        with self._lock:
            rows = self.klines(market.symbol, interval, start, end, limit)
        return web.json_response(rows)

    def _recent_trades(self, m: FakeMarket, limit: int) -> list[tuple[int, float, float, int, bool]]:
        now = self.now_ms()
        out = []
        for i in range(limit):
            price = round_to(m.last * (1 + 0.0001 * math.sin(i)), m.tick)
            out.append((900_000 + i, price, 0.01 * (1 + i % 5), now - (limit - i) * 100, i % 2 == 0))
        return out

    async def _agg_trades(self, request: web.Request) -> web.Response:
        market = self._market_by_id(request[PARAMS].get("symbol"))
        if market is None:
            return self._error(-1121, "Invalid symbol.")
        limit = min(int(request[PARAMS].get("limit", 500)), 1000)
        return web.json_response(
            [
                {"a": tid, "p": fmt(price), "q": fmt(qty), "f": tid, "l": tid, "T": ts, "m": maker, "M": True}
                for tid, price, qty, ts, maker in self._recent_trades(market, limit)
            ]
        )

    async def _trades(self, request: web.Request) -> web.Response:
        market = self._market_by_id(request[PARAMS].get("symbol"))
        if market is None:
            return self._error(-1121, "Invalid symbol.")
        limit = min(int(request[PARAMS].get("limit", 500)), 1000)
        return web.json_response(
            [
                {
                    "id": tid,
                    "price": fmt(price),
                    "qty": fmt(qty),
                    "quoteQty": fmt(price * qty),
                    "time": ts,
                    "isBuyerMaker": maker,
                    "isBestMatch": True,
                }
                for tid, price, qty, ts, maker in self._recent_trades(market, limit)
            ]
        )

    # ------------------------------------------------------------------ signed REST (any signature accepted)
    def _order_json(self, order: Json, full: bool = False) -> Json:
        out = {k: v for k, v in order.items() if not k.startswith("_")}
        if not full:
            out.pop("fills", None)
        return out

    async def _create_order(self, request: web.Request) -> web.Response:
        p = request[PARAMS]
        market = self._market_by_id(p.get("symbol"))
        if market is None:
            return self._error(-1121, "Invalid symbol.")
        side, otype = p.get("side", "").upper(), p.get("type", "").upper()
        client_id = p.get("newClientOrderId") or f"fake-{next(self._order_ids)}"
        try:
            qty = float(p.get("quantity", "0"))
        except ValueError:
            return self._error(-1100, "Illegal characters found in parameter 'quantity'.")
        price = float(p["price"]) if "price" in p else None
        with self._lock:
            for existing in self.orders.values():
                if existing["clientOrderId"] == client_id and existing["status"] in ("NEW", "PARTIALLY_FILLED"):
                    return self._error(-2010, "Duplicate order sent.")
            if qty < market.min_qty:
                return self._error(-1013, "Filter failure: LOT_SIZE")
            ref_price = price if price is not None else market.last
            if qty * ref_price < market.min_notional:
                return self._error(-1013, "Filter failure: NOTIONAL")
            if otype in ("LIMIT", *_STOP_LIMIT_TYPES) and price is None:
                return self._error(-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
            stop_price: float | None = None
            trailing = int(p["trailingDelta"]) if "trailingDelta" in p else None
            if otype in _STOP_TYPES:
                if otype not in market.order_types:
                    return self._error(-1013, "Stop loss orders are not supported for this symbol.")
                if trailing is not None and not 10 <= trailing <= 2000:
                    return self._error(-1013, "Filter failure: TRAILING_DELTA")
                if "stopPrice" not in p and trailing is None:
                    return self._error(
                        -1102, "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed."
                    )
                # a trailing stop without stopPrice trails from the last price at placement
                stop_price = float(p["stopPrice"]) if "stopPrice" in p else 0.0
                if "stopPrice" in p and _stop_reached(otype, side, stop_price, market.last):
                    return self._error(-2010, "Stop price would trigger immediately.")
            fill_price = market.ask() if side == "BUY" else market.bid()
            marketable = stop_price is None and (
                otype == "MARKET"
                or (
                    price is not None
                    and ((side == "BUY" and price >= fill_price) or (side == "SELL" and price <= fill_price))
                )
            )
            quote_bal = self.balances.setdefault(market.quote, [0.0, 0.0])
            base_bal = self.balances.setdefault(market.base, [0.0, 0.0])
            need = qty * (fill_price if marketable else ref_price) if side == "BUY" else qty
            have = quote_bal[0] if side == "BUY" else base_bal[0]
            if need > have + 1e-12:
                return self._error(-2010, "Account has insufficient balance for requested action.")
            order_id = next(self._order_ids)
            now = self.now_ms()
            order: Json = {
                "symbol": market.market_id,
                "orderId": order_id,
                "orderListId": -1,
                "clientOrderId": client_id,
                "transactTime": now,
                "time": now,
                "updateTime": now,
                "workingTime": now,
                "price": fmt(price or 0.0),
                "origQty": fmt(qty),
                "executedQty": "0",
                "cummulativeQuoteQty": "0",
                "status": "NEW",
                "timeInForce": p.get("timeInForce", "GTC") if otype == "LIMIT" else "GTC",
                "type": otype,
                "side": side,
                "stopPrice": fmt(stop_price or 0.0),
                "fills": [],
                "selfTradePreventionMode": "EXPIRE_MAKER",
                "isWorking": stop_price is None,  # a stop works only once its trigger trades
                "origQuoteOrderQty": "0",
            }
            if trailing is not None:
                order.update(trailingDelta=trailing, _high=market.last)
            if marketable and self.auto_fill_market:
                self._fill(order, market, qty, fill_price)
            elif side == "BUY":
                quote_bal[0] -= need
                quote_bal[1] += need
            else:
                base_bal[0] -= qty
                base_bal[1] += qty
            self.orders[order_id] = order
        return web.json_response(self._order_json(order, full=True))

    def _trigger_stops(self, market: FakeMarket) -> None:
        """(lock held) Stops reached by the last trade start working: STOP_LOSS sells at the bid, STOP_LOSS_LIMIT
        sells at the bid while the bid is at or above its limit and otherwise rests at its limit."""
        for order in self.orders.values():
            if order["symbol"] != market.market_id or order["status"] != "NEW" or order["type"] not in _STOP_TYPES:
                continue
            if not order["isWorking"]:
                if "trailingDelta" in order and float(order["stopPrice"]) == 0.0:  # trailing sell stop
                    order["_high"] = max(order["_high"], market.last)
                    if market.last > order["_high"] * (1 - order["trailingDelta"] / 10_000):
                        continue
                elif not _stop_reached(order["type"], order["side"], float(order["stopPrice"]), market.last):
                    continue
                order.update(isWorking=True, workingTime=self.now_ms())
            price = market.bid() if order["side"] == "SELL" else market.ask()
            limit = float(order["price"])
            if order["type"] in _STOP_LIMIT_TYPES and (
                (order["side"] == "SELL" and price < limit) or (order["side"] == "BUY" and price > limit)
            ):
                continue  # rests at its limit until the market comes back to it
            qty = float(order["origQty"])
            locked = self.balances[market.base] if order["side"] == "SELL" else self.balances[market.quote]
            amount = qty if order["side"] == "SELL" else qty * limit
            locked[0] += amount
            locked[1] -= amount
            self._fill(order, market, qty, price)
            order["updateTime"] = self.now_ms()

    def _fill(self, order: Json, market: FakeMarket, qty: float, price: float) -> None:
        fee = qty * price * 0.001
        trade_id = next(self._trade_ids)
        order.update(
            executedQty=fmt(qty),
            cummulativeQuoteQty=fmt(qty * price),
            status="FILLED",
            fills=[
                {
                    "price": fmt(price),
                    "qty": fmt(qty),
                    "commission": fmt(fee),
                    "commissionAsset": market.quote,
                    "tradeId": trade_id,
                }
            ],
        )
        quote_bal = self.balances.setdefault(market.quote, [0.0, 0.0])
        base_bal = self.balances.setdefault(market.base, [0.0, 0.0])
        if order["side"] == "BUY":
            quote_bal[0] -= qty * price + fee
            base_bal[0] += qty
        else:
            base_bal[0] -= qty
            quote_bal[0] += qty * price - fee
        self.my_trades.append(
            {
                "symbol": market.market_id,
                "id": trade_id,
                "orderId": order["orderId"],
                "orderListId": -1,
                "price": fmt(price),
                "qty": fmt(qty),
                "quoteQty": fmt(qty * price),
                "commission": fmt(fee),
                "commissionAsset": market.quote,
                "time": self.now_ms(),
                "isBuyer": order["side"] == "BUY",
                "isMaker": False,
                "isBestMatch": True,
            }
        )

    def _find_order(self, p: dict[str, str]) -> Json | None:
        with self._lock:
            if "orderId" in p:
                return self.orders.get(int(p["orderId"]))
            cid = p.get("origClientOrderId")
            for order in self.orders.values():
                if order["clientOrderId"] == cid and order["symbol"] == p.get("symbol"):
                    return order
        return None

    async def _get_order(self, request: web.Request) -> web.Response:
        order = self._find_order(request[PARAMS])
        if order is None:
            return self._error(-2013, "Order does not exist.")
        return web.json_response(self._order_json(order))

    async def _cancel_order(self, request: web.Request) -> web.Response:
        order = self._find_order(request[PARAMS])
        if order is None:
            return self._error(-2011, "Unknown order sent.")
        with self._lock:
            if order["status"] not in ("NEW", "PARTIALLY_FILLED"):
                return self._error(-2011, "Unknown order sent.")
            order["status"] = "CANCELED"
            market = self._market_by_id(order["symbol"])
            assert market is not None
            qty = float(order["origQty"]) - float(order["executedQty"])
            if order["side"] == "BUY":
                locked = qty * float(order["price"])
                bal = self.balances[market.quote]
            else:
                locked = qty
                bal = self.balances[market.base]
            bal[0] += locked
            bal[1] -= locked
        return web.json_response(self._order_json(order))

    async def _open_orders(self, request: web.Request) -> web.Response:
        sym = request[PARAMS].get("symbol")
        with self._lock:
            rows = [
                self._order_json(o)
                for o in self.orders.values()
                if o["status"] in ("NEW", "PARTIALLY_FILLED") and (sym is None or o["symbol"] == sym)
            ]
        return web.json_response(rows)

    async def _all_orders(self, request: web.Request) -> web.Response:
        sym = request[PARAMS].get("symbol")
        with self._lock:
            rows = [self._order_json(o) for o in self.orders.values() if o["symbol"] == sym]
        return web.json_response(rows)

    async def _my_trades_handler(self, request: web.Request) -> web.Response:
        p = request[PARAMS]
        with self._lock:
            rows = [
                t
                for t in self.my_trades
                if t["symbol"] == p.get("symbol") and ("orderId" not in p or str(t["orderId"]) == p["orderId"])
            ]
        return web.json_response(rows)

    async def _account(self, request: web.Request) -> web.Response:
        with self._lock:
            balances = [{"asset": a, "free": fmt(v[0]), "locked": fmt(v[1])} for a, v in self.balances.items()]
        return web.json_response(
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0", "seller": "0"},
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self.now_ms(),
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": 1,
            }
        )

    # ------------------------------------------------------------------ websocket
    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        self._subs[ws] = set()
        self.ws_connections += 1
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                method = data.get("method")
                params = data.get("params") or []
                if method == "SUBSCRIBE":
                    self._subs[ws].update(params)
                    await ws.send_json({"result": None, "id": data.get("id")})
                    for stream in params:
                        if stream.endswith(("@ticker", "@miniTicker")):
                            market = self._market_by_id(stream.split("@")[0].upper())
                            if market is not None:
                                await ws.send_json(self._ws_ticker(market))
                elif method == "UNSUBSCRIBE":
                    self._subs[ws].difference_update(params)
                    await ws.send_json({"result": None, "id": data.get("id")})
        finally:
            self._sockets.discard(ws)
            self._subs.pop(ws, None)
        return ws

    def _ws_ticker(self, m: FakeMarket) -> Json:
        t = self._ticker_json(m)
        return {
            "e": "24hrTicker",
            "E": self.now_ms(),
            "s": m.market_id,
            "p": t["priceChange"],
            "P": t["priceChangePercent"],
            "w": t["weightedAvgPrice"],
            "x": t["prevClosePrice"],
            "c": t["lastPrice"],
            "Q": "0.01",
            "b": t["bidPrice"],
            "B": "1.5",
            "a": t["askPrice"],
            "A": "2.0",
            "o": t["openPrice"],
            "h": t["highPrice"],
            "l": t["lowPrice"],
            "v": t["volume"],
            "q": t["quoteVolume"],
            "O": t["openTime"],
            "C": t["closeTime"],
            "F": 1,
            "L": 1000,
            "n": 1000,
        }

    async def _push_market(self, symbol: str) -> None:
        with self._lock:
            market = self.markets[symbol]
            lid = market.market_id.lower()
            now = self.now_ms()
            ticker = self._ws_ticker(market)
            bids, asks = self._book_levels(market, 20)
            last_u = market.book_version
            first_u = last_u - 2
            if symbol in self._skip_depth:
                self._skip_depth.discard(symbol)
                first_u += 5
                last_u += 5
                market.book_version = last_u
            # a diff that replaces the book: every level sent before and absent now is removed (amount 0), as on
            # the venue, so that a price move never leaves a crossed book behind in the client
            stale = [[fmt(round_to(market.last * f, market.tick)), "0"] for f in (0.9, 1.1)]
            old_bids, old_asks = self._published(symbol, bids, asks)
            now_bids, now_asks = {p for p, _ in bids}, {p for p, _ in asks}
            self._levels[symbol] = (set(now_bids), set(now_asks))
            depth = {
                "e": "depthUpdate",
                "E": now,
                "s": market.market_id,
                "U": first_u,
                "u": last_u,
                "b": [*bids, stale[0], *([p, "0"] for p in sorted(old_bids - now_bids))],
                "a": [*asks, stale[1], *([p, "0"] for p in sorted(old_asks - now_asks))],
            }
            trade_id = next(self._trade_ids)
            trade = {
                "e": "trade",
                "E": now,
                "s": market.market_id,
                "t": trade_id,
                "p": fmt(market.last),
                "q": "0.01",
                "T": now,
                "m": False,
                "M": True,
            }
            step = 60_000
            open_t = (now // step) * step
            kline = {
                "e": "kline",
                "E": now,
                "s": market.market_id,
                "k": {
                    "t": open_t,
                    "T": open_t + step - 1,
                    "s": market.market_id,
                    "i": "1m",
                    "f": 1,
                    "L": 2,
                    "o": fmt(market.last),
                    "c": fmt(market.last),
                    "h": fmt(market.last),
                    "l": fmt(market.last),
                    "v": "1",
                    "n": 2,
                    "x": False,
                    "q": fmt(market.last),
                    "V": "0.5",
                    "Q": fmt(market.last / 2),
                    "B": "0",
                },
            }
        for ws, subs in list(self._subs.items()):
            for stream in list(subs):
                name, _, kind = stream.partition("@")
                if name != lid:
                    continue
                msg: Json | None = None
                if kind == "ticker":
                    msg = ticker
                elif kind == "miniTicker":
                    msg = {k: ticker[k] for k in ("E", "s", "c", "o", "h", "l", "v", "q")} | {"e": "24hrMiniTicker"}
                elif kind.startswith("depth"):
                    msg = depth
                elif kind == "trade":
                    msg = trade
                elif kind.startswith("kline"):
                    msg = kline
                if msg is not None and not ws.closed:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await ws.send_json(msg)

    async def _drop_all(self) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1011, message=b"dropped by test")
        self._sockets.clear()
        self._subs.clear()
