"""One async adapter over ccxt for any exchange id: rate limiter on, retries per error class, normalised types.

`api_url` replaces the origin (scheme, host, port) of every REST URL in `urls['api']`, and its websocket twin
replaces the origin of every websocket URL, so a loopback fake can stand in for the venue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import ccxt
import ccxt.async_support as ccxt_async
from ccxt.base.decimal_to_precision import TICK_SIZE

from trading.exchanges import errors
from trading.exchanges.base import timeframe_ms
from trading.exchanges.retry import NO_RETRY, RetryPolicy, translate, with_retry
from trading.types import (
    STOP_LIMIT,
    STOP_MARKET,
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
    stop_shape_error,
)

try:  # websocket support (ccxt.pro ships inside ccxt)
    import ccxt.pro as ccxt_pro
except ImportError:  # pragma: no cover - every ccxt >= 4 has it
    ccxt_pro = None

log = logging.getLogger(__name__)
T = TypeVar("T")

_ORDER_STATUS = {"open": "open", "closed": "closed", "canceled": "canceled", "cancelled": "canceled",
                 "rejected": "rejected", "expired": "expired"}


def known_exchanges() -> list[str]:
    return list(ccxt.exchanges)


def _swap_origin(url: str, origin: str) -> str:
    parts = urlsplit(url)
    new = urlsplit(origin)
    path = parts.path
    if new.path and new.path != "/":
        path = new.path.rstrip("/") + path
    return urlunsplit((new.scheme, new.netloc, path, parts.query, parts.fragment))


def override_urls(urls: Any, http_origin: str, ws_origin: str) -> Any:
    """Recursively replace origins in a ccxt `urls['api']` tree (strings or nested dicts)."""
    if isinstance(urls, str):
        if urls.startswith(("ws://", "wss://")):
            return _swap_origin(urls, ws_origin)
        if urls.startswith(("http://", "https://")):
            return _swap_origin(urls, http_origin)
        return urls
    if isinstance(urls, dict):
        return {k: override_urls(v, http_origin, ws_origin) for k, v in urls.items()}
    if isinstance(urls, list):
        return [override_urls(v, http_origin, ws_origin) for v in urls]
    return urls


def _f(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class CcxtExchange:
    """ExchangeAdapter over a ccxt (async / pro) exchange instance."""

    simulated = False

    def __init__(
        self,
        exchange_id: str,
        *,
        api_url: str | None = None,
        ws_url: str | None = None,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        timeout_ms: int = 10_000,
        retry: RetryPolicy | None = None,
        options: dict[str, Any] | None = None,
        spot_only: bool = True,
    ) -> None:
        exchange_id = exchange_id.lower()
        if exchange_id not in ccxt.exchanges:
            raise errors.UnknownExchange(exchange_id, ccxt.exchanges)
        self.exchange_id = exchange_id
        self.retry = retry or RetryPolicy()
        self.api_url = api_url
        self.retries = 0  # how many retries this adapter performed (observability, tests)
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # injectable: tests record the delays
        pro_cls = getattr(ccxt_pro, exchange_id, None) if ccxt_pro is not None else None
        cls = pro_cls or getattr(ccxt_async, exchange_id)
        config: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms}
        if api_key:
            config["apiKey"] = api_key
        if secret:
            config["secret"] = secret
        if password:
            config["password"] = password
        self._ex: Any = cls(config)
        self.streaming = pro_cls is not None and bool(self._ex.has.get("ws"))
        opts = self._ex.options
        if spot_only:
            fm = opts.get("fetchMarkets")
            if isinstance(fm, dict) and "types" in fm:
                opts["fetchMarkets"] = {**fm, "types": ["spot"]}
            elif isinstance(fm, list):
                opts["fetchMarkets"] = ["spot"]
            opts["defaultType"] = "spot"
        opts["fetchCurrencies"] = False
        opts["fetchMargins"] = False
        # reconciliation lists open orders across all symbols on purpose (an order of ours on a symbol we no longer
        # trade must still be found); ccxt refuses that on Binance unless told the higher request weight is known
        open_orders = opts.get("fetchOpenOrders")
        if isinstance(open_orders, dict):
            opts["fetchOpenOrders"] = {**open_orders, "warnWithoutSymbol": False}
        if options:
            opts.update(options)
        if api_url:
            ws_origin = ws_url or api_url.replace("https://", "wss://").replace("http://", "ws://")
            self._ex.urls["api"] = override_urls(self._ex.urls["api"], api_url, ws_origin)
        self._markets: dict[str, Market] = {}
        self._stop_kinds: dict[str, str | None] = {}
        self._trailing: set[str] = set()  # symbols whose stops can trail (Binance `allowTrailingStop`)
        self._ex.parse_json = self._strict_parse_json  # truncated JSON must be an error, not an empty result

    def _strict_parse_json(self, http_response: Any) -> Any:
        if isinstance(http_response, str) and http_response.strip()[:1] in ("{", "["):
            try:
                return self._ex.on_json_response(http_response)
            except ValueError as exc:
                raise ccxt.BadResponse(f"{self.exchange_id} malformed JSON reply: {http_response[:80]!r}") from exc
        return None

    # ------------------------------------------------------------------ plumbing
    @property
    def ccxt(self) -> Any:
        """The underlying ccxt instance (escape hatch; prefer the typed methods)."""
        return self._ex

    def _retry_after(self, exc: BaseException) -> float | None:
        if not isinstance(exc, ccxt.DDoSProtection):
            return None
        headers = self._ex.last_response_headers or {}
        value = None
        for key, val in dict(headers).items():
            if str(key).lower() == "retry-after":
                value = val
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    def _count_retry(self, attempt: int, exc: BaseException, delay: float) -> None:
        self.retries += 1
        log.warning("%s: retry %d after %s in %.2fs", self.exchange_id, attempt, type(exc).__name__, delay)

    async def _call(self, fn: Callable[[], Awaitable[T]], *, symbol: str | None = None,
                    policy: RetryPolicy | None = None) -> T:
        try:
            return await with_retry(fn, policy=policy or self.retry, retry_after=self._retry_after,
                                    on_retry=self._count_retry, sleep=self.sleep)
        except Exception as exc:
            if isinstance(exc, errors.ExchangeError):
                raise
            raise translate(exc, self.exchange_id, symbols=list(self._markets), symbol=symbol,
                            retry_after_s=self._retry_after(exc)) from exc

    def _check_symbol(self, symbol: str) -> str:
        if self._markets and symbol not in self._markets:
            raise errors.UnknownSymbol(symbol, self._markets, exchange=self.exchange_id)
        return symbol

    async def _ensure_markets(self, symbol: str | None = None) -> None:
        if not self._markets:
            await self.load_markets()
        if symbol is not None:
            self._check_symbol(symbol)

    # ------------------------------------------------------------------ markets
    async def load_markets(self, reload: bool = False) -> dict[str, Market]:
        if self._markets and not reload:
            return self._markets
        raw = await self._call(lambda: self._ex.load_markets(reload))
        self._markets = {sym: self._market(m) for sym, m in raw.items() if m.get("spot", True)}
        self._stop_kinds = {sym: self._stop_kind(raw[sym]) for sym in self._markets}
        self._trailing = {
            sym for sym in self._markets
            if self._stop_kinds[sym] and self._ex.has.get("createTrailingPercentOrder")
            and (raw[sym].get("info") or {}).get("allowTrailingStop") is True
        }
        return self._markets

    def _stop_kind(self, m: dict[str, Any]) -> str | None:
        """Which native sell stop the venue takes for this market. Binance-style venues list their order types per
        market (and ccxt refuses a type not listed); elsewhere ccxt's `has` flags say what its unified
        stop-loss parameters can create."""
        has = self._ex.has
        if not (has.get("createStopLossOrder") or has.get("createStopOrder") or has.get("createTriggerOrder")):
            return None
        listed = (m.get("info") or {}).get("orderTypes")
        if isinstance(listed, list):
            types = {str(t).upper() for t in listed}
            if "STOP_LOSS" in types:
                return STOP_MARKET
            return STOP_LIMIT if "STOP_LOSS_LIMIT" in types else None
        if has.get("createStopMarketOrder"):
            return STOP_MARKET
        return STOP_LIMIT if has.get("createStopLimitOrder") else None

    def native_trailing(self, symbol: str) -> bool:
        """Whether the venue can trail a stop for `symbol` itself (a percentage below the highest price since it
        was placed); only where the market says so, since ccxt's flag is per exchange, not per market."""
        return symbol in self._trailing

    def native_stop_kind(self, symbol: str) -> str | None:
        """`stop_market`, `stop_limit`, or None when this venue cannot hold a sell stop for `symbol` itself
        (markets must be loaded; a venue without keys still answers, sending needs them)."""
        return self._stop_kinds.get(symbol)

    def _market(self, m: dict[str, Any]) -> Market:
        precision = m.get("precision") or {}
        limits = m.get("limits") or {}

        def step(p: Any) -> float | None:
            if p is None:
                return None
            if self._ex.precisionMode == TICK_SIZE:
                return float(p)
            return float(10 ** (-int(p)))

        return Market(
            exchange=self.exchange_id, symbol=m["symbol"], base=m["base"], quote=m["quote"],
            price_precision=step(precision.get("price")), amount_precision=step(precision.get("amount")),
            min_amount=_f((limits.get("amount") or {}).get("min")), min_cost=_f((limits.get("cost") or {}).get("min")),
            max_amount=_f((limits.get("amount") or {}).get("max")),
            taker_fee=_f(m.get("taker")) or 0.001, maker_fee=_f(m.get("maker")) or 0.001,
            spot=bool(m.get("spot", True)), active=m.get("active") is not False,
        )

    def market(self, symbol: str) -> Market:
        if not self._markets:
            raise errors.ExchangeError(f"{self.exchange_id}: markets not loaded; call load_markets() first",
                                       exchange=self.exchange_id)
        self._check_symbol(symbol)
        return self._markets[symbol]

    @property
    def symbols(self) -> list[str]:
        return sorted(self._markets)

    # ------------------------------------------------------------------ public data
    async def fetch_time(self) -> int:
        """The venue's clock in ms (local clock when the venue has no time endpoint)."""
        if not self._ex.has.get("fetchTime"):
            return int(time.time() * 1000)
        return int(await self._call(lambda: self._ex.fetch_time()))

    def _ticker(self, t: dict[str, Any], symbol: str) -> Ticker:
        bid, ask = _f(t.get("bid")), _f(t.get("ask"))
        last = _f(t.get("last")) or _f(t.get("close"))
        if last is None:
            last = (bid + ask) / 2 if bid and ask else 0.0
        return Ticker(
            exchange=self.exchange_id, symbol=t.get("symbol") or symbol,
            timestamp_ms=int(t.get("timestamp") or time.time() * 1000), bid=bid, ask=ask, last=last,
            open_24h=_f(t.get("open")), high_24h=_f(t.get("high")), low_24h=_f(t.get("low")),
            base_volume_24h=_f(t.get("baseVolume")), quote_volume_24h=_f(t.get("quoteVolume")),
            change_pct_24h=_f(t.get("percentage")),
        )

    def _book(self, b: dict[str, Any], symbol: str, limit: int | None = None) -> OrderBook:
        bids = tuple(BookLevel(float(p), float(a)) for p, a, *_ in b.get("bids", [])[:limit] if float(a) > 0)
        asks = tuple(BookLevel(float(p), float(a)) for p, a, *_ in b.get("asks", [])[:limit] if float(a) > 0)
        nonce = b.get("nonce")
        return OrderBook(exchange=self.exchange_id, symbol=b.get("symbol") or symbol,
                         timestamp_ms=int(b.get("timestamp") or time.time() * 1000), bids=bids, asks=asks,
                         nonce=int(nonce) if nonce is not None else None)

    def _trade(self, t: dict[str, Any], symbol: str) -> Trade:
        side = t.get("side")
        return Trade(exchange=self.exchange_id, symbol=t.get("symbol") or symbol, timestamp_ms=int(t["timestamp"]),
                     price=float(t["price"]), amount=float(t["amount"]),
                     side=Side(side) if side in ("buy", "sell") else None,
                     trade_id=str(t["id"]) if t.get("id") is not None else None)

    @staticmethod
    def _candle(row: list[Any]) -> Candle:
        return Candle(int(row[0]), float(row[1]), float(row[2]), float(row[3]), float(row[4]), float(row[5] or 0.0))

    async def fetch_ticker(self, symbol: str) -> Ticker:
        await self._ensure_markets(symbol)
        raw = await self._call(lambda: self._ex.fetch_ticker(symbol), symbol=symbol)
        return self._ticker(raw, symbol)

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        await self._ensure_markets(symbol)
        raw = await self._call(lambda: self._ex.fetch_order_book(symbol, limit), symbol=symbol)
        return self._book(raw, symbol, limit)

    async def fetch_ohlcv(self, symbol: str, timeframe: str = "1h", since: int | None = None,
                          limit: int = 500) -> list[Candle]:
        timeframe_ms(timeframe)
        await self._ensure_markets(symbol)
        rows = await self._call(lambda: self._ex.fetch_ohlcv(symbol, timeframe, since, limit), symbol=symbol)
        return [self._candle(r) for r in rows]

    async def fetch_trades(self, symbol: str, since: int | None = None, limit: int = 100) -> list[Trade]:
        await self._ensure_markets(symbol)
        rows = await self._call(lambda: self._ex.fetch_trades(symbol, since, limit), symbol=symbol)
        return [self._trade(t, symbol) for t in rows]

    # ------------------------------------------------------------------ orders (keys needed)
    def _order(self, o: dict[str, Any], symbol: str, client_order_id: str | None = None) -> ExchangeOrder:
        fee = o.get("fee") or {}
        fills = [self._trade({**t, "symbol": t.get("symbol") or symbol, "timestamp": t.get("timestamp") or 0}, symbol)
                 for t in (o.get("trades") or []) if t.get("price") is not None and t.get("amount") is not None]
        fee_cost = _f(fee.get("cost"))
        if fee_cost is None:
            fee_cost = sum(_f((f or {}).get("cost")) or 0.0 for f in (o.get("fees") or []))
        return ExchangeOrder(
            exchange=self.exchange_id, symbol=o.get("symbol") or symbol,
            client_order_id=o.get("clientOrderId") or client_order_id or "",
            exchange_order_id=str(o["id"]) if o.get("id") is not None else None,
            side=Side(o.get("side") or "buy"),
            type=OrderType.MARKET if o.get("type") == "market" else OrderType.LIMIT,
            amount=float(o.get("amount") or 0.0), price=_f(o.get("price")) or None,
            status=_ORDER_STATUS.get(str(o.get("status")), "open"), filled=float(o.get("filled") or 0.0),
            average=_f(o.get("average")), fee_cost=fee_cost or 0.0, fee_currency=fee.get("currency"),
            timestamp_ms=int(o.get("timestamp") or 0), fills=fills,
            trigger_price=_f(o.get("triggerPrice") or o.get("stopPrice")) or None,
        )

    async def create_order(self, symbol: str, side: Side, type: OrderType, amount: float,
                           price: float | None = None, *, client_order_id: str) -> ExchangeOrder:
        """Send an order at most once unless the venue provably refused it.

        - 429/418 (rate limit, DDoS protection): the venue refused the request, so it is re-sent after Retry-After
          or backoff (same client order id).
        - timeout, 5xx, malformed reply: the outcome is unknown, so the order is looked up by client order id with
          backoff; found: returned; never found: OrderOutcomeUnknown (the OMS reconciles; nothing is re-sent).
        - rejections (invalid order, insufficient funds, bad symbol, auth): OrderRejected at once, never retried.
        - refused before processing after all tries (rate limit, connection refused, markets unavailable):
          OrderNotSent (an OrderRejected: the order certainly does not exist on the venue).
        Any error other than OrderRejected means the outcome is unknown.
        """
        return await self._send_order(symbol, type.value, side, amount, price, {}, client_order_id)

    async def create_stop_order(self, symbol: str, side: Side, amount: float, trigger_price: float,
                                limit_price: float | None = None, *, client_order_id: str,
                                trail_pct: float | None = None) -> ExchangeOrder:
        """A stop order held by the venue: it rests untriggered until the market trades at `trigger_price`, then
        becomes a market order (`limit_price` None, needs `native_stop_kind` 'stop_market') or a limit order at
        `limit_price` ('stop_limit'). With `trail_pct` the trigger trails that fraction below the highest price since
        placement instead (`trigger_price` is then only where it starts). Sent at most once, with the same error
        contract as `create_order`."""
        if trail_pct is not None and not self.native_trailing(symbol):
            raise errors.OrderRejected(f"{self.exchange_id}: no trailing stops for {symbol}", exchange=self.exchange_id)
        kind = self.native_stop_kind(symbol)
        if kind is None:
            raise errors.OrderRejected(f"{self.exchange_id}: no native stop orders for {symbol}",
                                       exchange=self.exchange_id)
        if shape := stop_shape_error(symbol, kind, limit_price):
            raise errors.OrderRejected(f"{self.exchange_id}: {shape}", exchange=self.exchange_id)
        ccxt_type = "market" if limit_price is None else "limit"
        extra: dict[str, Any] = {"stopLossPrice": trigger_price}
        if trail_pct is not None:
            # ccxt takes percent and sends Binance's trailingDelta in basis points; no activation price, so the
            # venue starts trailing from the market at placement
            extra = {"trailingPercent": round(trail_pct * 100, 4), "stopLossOrTakeProfit": "stopLoss"}
        return await self._send_order(symbol, ccxt_type, side, amount, limit_price, extra, client_order_id)

    async def _send_order(self, symbol: str, ccxt_type: str, side: Side, amount: float, price: float | None,
                          extra: dict[str, Any], client_order_id: str) -> ExchangeOrder:
        try:
            await self._ensure_markets(symbol)
        except errors.ExchangeError as exc:  # nothing was sent
            raise errors.OrderNotSent(f"{self.exchange_id}: order {client_order_id} not sent: {exc}",
                                      exchange=self.exchange_id) from exc
        params = {**extra, "clientOrderId": client_order_id}
        for attempt in range(1, self.retry.attempts + 1):
            try:
                raw = await self._call(
                    lambda: self._ex.create_order(symbol, ccxt_type, side.value, amount, price, params),
                    symbol=symbol, policy=NO_RETRY)
                return self._order(raw, symbol, client_order_id)
            except errors.RateLimited as exc:
                if attempt >= self.retry.attempts or (exc.retry_after_s or 0) > self.retry.max_retry_after_s:
                    raise errors.OrderNotSent(f"{self.exchange_id}: order {client_order_id} refused: {exc}",
                                              exchange=self.exchange_id) from exc
                self.retries += 1
                await self.sleep(max(exc.retry_after_s or 0.0, self.retry.backoff(attempt)))
            except errors.ExchangeUnavailable as exc:
                if _refused_before_processing(exc):
                    if attempt >= self.retry.attempts:
                        raise errors.OrderNotSent(f"{self.exchange_id}: order {client_order_id} not sent: {exc}",
                                                  exchange=self.exchange_id) from exc
                    self.retries += 1
                    await self.sleep(self.retry.backoff(attempt))
                    continue
                return await self._settle_lost_order(symbol, client_order_id, exc)
            except errors.OrderRejected:
                raise
            except errors.ExchangeError as exc:  # e.g. binance -1013 filter failures arrive as BadRequest
                raise errors.OrderRejected(str(exc), exchange=self.exchange_id) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _settle_lost_order(self, symbol: str, client_order_id: str, cause: Exception) -> ExchangeOrder:
        lookup_error: Exception | None = None
        for attempt in range(1, self.retry.attempts + 1):
            await self.sleep(self.retry.backoff(attempt))
            self.retries += 1
            try:
                found = await self.fetch_order_by_client_id(symbol, client_order_id)
            except errors.ExchangeError as exc:
                lookup_error = exc
                continue
            if found is not None:
                return found
        detail = f"lookup failed: {lookup_error}" if lookup_error else "not found by client order id"
        raise errors.OrderOutcomeUnknown(
            f"{self.exchange_id}: order {client_order_id} sent but the reply was lost ({cause}); {detail}",
            exchange=self.exchange_id, client_order_id=client_order_id) from cause

    def _client_id_params(self, client_order_id: str) -> dict[str, Any]:
        if self.exchange_id.startswith("binance"):
            return {"origClientOrderId": client_order_id}
        return {"clientOrderId": client_order_id}

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        await self._ensure_markets(symbol)
        try:
            raw = await self._call(
                lambda: self._ex.fetch_order("", symbol, self._client_id_params(client_order_id)), symbol=symbol)
        except errors.OrderNotFound:
            return None
        except errors.UnsupportedOperation:
            for order in await self.fetch_open_orders(symbol):
                if order.client_order_id == client_order_id:
                    return order
            return None
        return self._order(raw, symbol, client_order_id)

    async def cancel_order(self, symbol: str, *, client_order_id: str | None = None,
                           exchange_order_id: str | None = None) -> ExchangeOrder:
        await self._ensure_markets(symbol)
        if exchange_order_id is None and client_order_id is None:
            raise ValueError("cancel_order needs client_order_id or exchange_order_id")
        params = {} if exchange_order_id is not None else self._client_id_params(client_order_id or "")
        raw = await self._call(lambda: self._ex.cancel_order(exchange_order_id or "", symbol, params), symbol=symbol)
        return self._order(raw, symbol, client_order_id)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        await self._ensure_markets(symbol)
        rows = await self._call(lambda: self._ex.fetch_open_orders(symbol), symbol=symbol)
        return [self._order(o, o.get("symbol") or symbol or "") for o in rows]

    async def fetch_balance(self) -> dict[str, Balance]:
        raw = await self._call(lambda: self._ex.fetch_balance())
        free, used = raw.get("free") or {}, raw.get("used") or {}
        return {asset: Balance(asset, float(free.get(asset) or 0.0), float(used.get(asset) or 0.0))
                for asset in free if (free.get(asset) or 0) or (used.get(asset) or 0)}

    # ------------------------------------------------------------------ streams (one update per call)
    def _need_ws(self, name: str) -> None:
        if not self.streaming or not self._ex.has.get(name):
            raise errors.UnsupportedOperation(f"{self.exchange_id} has no websocket {name}", exchange=self.exchange_id)

    async def _ws(self, fn: Callable[[], Awaitable[T]], symbol: str) -> T:
        try:
            return await fn()
        except Exception as exc:
            raise translate(exc, self.exchange_id, symbols=list(self._markets), symbol=symbol) from exc

    async def watch_ticker(self, symbol: str) -> Ticker:
        self._need_ws("watchTicker")
        await self._ensure_markets(symbol)
        # binance's default spot stream is miniTicker (no bid/ask); ask for the full ticker
        params = {"name": "ticker"} if self.exchange_id.startswith("binance") else {}
        return self._ticker(await self._ws(lambda: self._ex.watch_ticker(symbol, params), symbol), symbol)

    async def watch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        self._need_ws("watchOrderBook")
        await self._ensure_markets(symbol)
        raw = await self._ws(lambda: self._ex.watch_order_book(symbol), symbol)
        return self._book(raw, symbol, limit)

    async def watch_trades(self, symbol: str) -> list[Trade]:
        self._need_ws("watchTrades")
        await self._ensure_markets(symbol)
        return [self._trade(t, symbol) for t in await self._ws(lambda: self._ex.watch_trades(symbol), symbol)]

    async def watch_ohlcv(self, symbol: str, timeframe: str = "1m") -> list[Candle]:
        self._need_ws("watchOHLCV")
        await self._ensure_markets(symbol)
        rows = await self._ws(lambda: self._ex.watch_ohlcv(symbol, timeframe), symbol)
        return [self._candle(r) for r in rows]

    async def reset_streams(self) -> None:
        """Close every websocket connection; the next watch_* call reconnects, resubscribes and resnapshots."""
        await self._ex.close_ws_clients()

    async def close(self) -> None:
        await self._ex.close()


def _refused_before_processing(exc: BaseException) -> bool:
    """True when the request provably never reached the venue (connection refused / DNS failure)."""
    cause = exc.__cause__
    text = f"{exc} {cause!r}".lower()
    return "connection refused" in text or "cannot connect" in text or "name or service not known" in text
