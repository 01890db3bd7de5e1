"""Parsing of slash-command text into typed requests. Pure functions; errors carry the usage line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.scheduler.cadence import Cadence, CadenceError, parse_cadence
from core.strict import closest_field

USAGE: dict[str, str] = {
    "/analyze": "`/analyze SYMBOL`, e.g. `/analyze BTC/USDT`",
    "/ask": "`/ask QUESTION`, e.g. `/ask what moved ETH today?`",
    "/forecast": "`/forecast SYMBOL [HORIZON] [TIMEFRAME]`, e.g. `/forecast BTC/USDT 24` or `/forecast ETH/USDT 12 4h`",
    "/option": "`/option call|put SYMBOL STRIKE EXPIRY [vol PCT]`, e.g. `/option call BTC/USDT 70000 30d` or "
    "`/option put ETH/USDT 3000 2026-03-27 vol 55`",
    "/news": "`/news QUERY`, e.g. `/news bitcoin ETF`",
    "/trade": "`/trade buy|sell QTY SYMBOL [limit PRICE] [VENUE] [stop_loss=PRICE] [take_profit=PRICE]`, e.g. "
    "`/trade buy 0.01 BTC/USDT stop_loss=58000` or `/trade sell 0.5 ETH/USDT limit 3500 binance`",
    "/positions": "`/positions`",
    "/risk": "`/risk`",
    "/briefing": "`/briefing now [SYMBOLS]`, `/briefing schedule daily 08:00 UTC #channel BTC/USDT,ETH/USDT`, "
    "`/briefing list`, `/briefing cancel ID`",
    "/desk": "`/desk halt [REASON]`, `/desk resume [REASON]` or `/desk status` (halt/resume: admins only)",
}

_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "USD", "EUR", "BTC", "ETH")
_SYMBOL = re.compile(r"^[A-Za-z0-9]{2,12}([/-][A-Za-z0-9]{2,12})?$")
_TIMEFRAME = re.compile(r"^\d{1,2}[mhdwM]$")
_CHANNEL = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>$")


class ParseError(ValueError):
    def __init__(self, message: str, command: str) -> None:
        super().__init__(message)
        self.command = command

    @property
    def usage(self) -> str:
        return USAGE.get(self.command, "")

    def friendly(self) -> str:
        return f"{self}\nUsage: {self.usage}" if self.usage else str(self)


def normalise_symbol(token: str) -> str | None:
    """`btc/usdt`, `BTC-USDT`, `BTCUSDT` -> `BTC/USDT`; a bare base (`BTC`) -> `BTC/USDT`; None if not a symbol."""
    t = token.strip().strip(",").upper()
    if not t or not _SYMBOL.match(t):
        return None
    if "/" in t or "-" in t:
        base, quote = re.split(r"[/-]", t, maxsplit=1)
        return f"{base}/{quote}"
    for quote in _QUOTES:
        if t.endswith(quote) and len(t) > len(quote) + 1:
            return f"{t[: -len(quote)]}/{quote}"
    if t.isalpha() and 2 <= len(t) <= 6:
        return f"{t}/USDT"
    return None


# The largest quantity or price a command takes (the HTTP and tool models bound them the same way).
MAX_NUMBER = 1e9


def _number(token: str, what: str, command: str) -> float:
    try:
        value = float(token.replace(",", "").replace("_", ""))
    except ValueError:
        raise ParseError(f"`{token}` is not a number ({what}).", command) from None
    if not value > 0 or value != value or value == float("inf"):
        raise ParseError(f"{what} must be a positive number, got `{token}`.", command)
    if value > MAX_NUMBER:
        raise ParseError(f"{what} must be at most {MAX_NUMBER:,.0f}, got `{token}`.", command)
    return value


@dataclass(frozen=True)
class ForecastRequest:
    symbol: str
    horizon: int = 24
    timeframe: str = "1h"


def parse_forecast(text: str) -> ForecastRequest:
    tokens = text.split()
    if not tokens:
        raise ParseError("I need a trading pair.", "/forecast")
    symbol = normalise_symbol(tokens[0])
    if symbol is None:
        raise ParseError(f"`{tokens[0]}` is not a trading pair.", "/forecast")
    horizon, timeframe = 24, "1h"
    for tok in tokens[1:]:
        if tok.isdigit():
            horizon = int(tok)
            if not 1 <= horizon <= 500:
                raise ParseError("HORIZON is a number of candles between 1 and 500.", "/forecast")
        elif _TIMEFRAME.match(tok):
            timeframe = tok
        else:
            raise ParseError(f"I do not understand `{tok}`.", "/forecast")
    return ForecastRequest(symbol, horizon, timeframe)


@dataclass(frozen=True)
class TradeRequest:
    side: str
    qty: float
    symbol: str
    limit_price: float | None = None
    venue: str | None = None
    stop_loss: float | None = None
    take_profit: float | None = None

    def describe(self) -> str:
        price = f" limit {self.limit_price:,.8g}" if self.limit_price else " at market"
        venue = f" on {self.venue}" if self.venue else ""
        exits = "".join(
            f", {name} {value:,.8g}"
            for name, value in (("stop-loss", self.stop_loss), ("take-profit", self.take_profit))
            if value is not None
        )
        return f"{self.side} {self.qty:g} {self.symbol}{price}{venue}{exits}"


# `key=value` options of /trade: the canonical name, then the short spellings people type.
TRADE_OPTIONS: dict[str, str] = {
    "limit": "limit", "price": "limit", "venue": "venue", "exchange": "venue",
    "stop_loss": "stop_loss", "sl": "stop_loss", "stop": "stop_loss",
    "take_profit": "take_profit", "tp": "take_profit",
}  # fmt: skip


def _trade_option(token: str, cmd: str) -> tuple[str, str]:
    key, _, value = token.partition("=")
    name = TRADE_OPTIONS.get(key.strip().lower())
    if name is None:
        valid = sorted(set(TRADE_OPTIONS.values()))
        near = closest_field(key, list(TRADE_OPTIONS))
        hint = f" Did you mean `{TRADE_OPTIONS[near]}=`?" if near else ""
        raise ParseError(
            f"Unknown option `{key}`.{hint} Options: {', '.join(f'`{v}=`' for v in valid)}.", cmd
        )
    if not value.strip():
        raise ParseError(f"`{key}=` needs a value.", cmd)
    return name, value.strip()


def parse_trade(text: str) -> TradeRequest:
    tokens = text.split()
    cmd = "/trade"
    if len(tokens) < 3:
        raise ParseError("I need a side, a quantity and a pair.", cmd)
    side = tokens[0].lower()
    if side not in ("buy", "sell"):
        raise ParseError(f"The side is `buy` or `sell`, not `{tokens[0]}`.", cmd)
    qty = _number(tokens[1], "QTY", cmd)
    symbol = normalise_symbol(tokens[2])
    if symbol is None:
        raise ParseError(f"`{tokens[2]}` is not a trading pair.", cmd)
    limit: float | None = None
    venue: str | None = None
    exits: dict[str, float] = {}
    rest = tokens[3:]
    i = 0
    while i < len(rest):
        tok = rest[i].lower()
        if "=" in tok:
            name, value = _trade_option(rest[i], cmd)
            if name == "venue":
                if not re.fullmatch(r"[a-z][a-z0-9_.-]{1,30}", value.lower()):
                    raise ParseError(f"`{value}` is not a venue id.", cmd)
                venue = value.lower()
            elif name == "limit":
                limit = _number(value, "PRICE", cmd)
            else:
                exits[name] = _number(value, name, cmd)
            i += 1
            continue
        if tok in ("limit", "@", "at"):
            if i + 1 >= len(rest):
                raise ParseError("`limit` needs a price.", cmd)
            limit = _number(rest[i + 1], "PRICE", cmd)
            i += 2
            continue
        if venue is None and re.fullmatch(r"[a-z][a-z0-9_.-]{1,30}", tok):
            venue = tok
            i += 1
            continue
        raise ParseError(f"I do not understand `{rest[i]}`.", cmd)
    if exits and side != "buy":
        raise ParseError("stop_loss and take_profit protect a buy; a sell has no position for them to exit.", cmd)
    return TradeRequest(side, qty, symbol, limit, venue, exits.get("stop_loss"), exits.get("take_profit"))


@dataclass(frozen=True)
class OptionRequest:
    kind: str  # call | put
    symbol: str
    strike: float
    expiry: str  # ISO date or `<N>d`
    vol_pct: float | None = None

    def days(self) -> float | None:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)d", self.expiry)
        return float(m.group(1)) if m else None


def parse_option(text: str) -> OptionRequest:
    cmd = "/option"
    tokens = text.split()
    if len(tokens) < 4:
        raise ParseError("I need the type, pair, strike and expiry.", cmd)
    kind = tokens[0].lower()
    if kind in ("c", "calls"):
        kind = "call"
    if kind in ("p", "puts"):
        kind = "put"
    if kind not in ("call", "put"):
        raise ParseError(f"The option type is `call` or `put`, not `{tokens[0]}`.", cmd)
    symbol = normalise_symbol(tokens[1])
    if symbol is None:
        raise ParseError(f"`{tokens[1]}` is not a trading pair.", cmd)
    strike = _number(tokens[2], "STRIKE", cmd)
    expiry = tokens[3]
    if not (re.fullmatch(r"\d{4}-\d{2}-\d{2}", expiry) or re.fullmatch(r"\d+(?:\.\d+)?d", expiry)):
        raise ParseError(f"EXPIRY is a date (2026-03-27) or days (`30d`), not `{expiry}`.", cmd)
    vol: float | None = None
    rest = tokens[4:]
    if rest:
        if len(rest) != 2 or rest[0].lower() not in ("vol", "iv"):
            raise ParseError(f"I do not understand `{' '.join(rest)}`.", cmd)
        vol = _number(rest[1].rstrip("%"), "vol", cmd)
    return OptionRequest(kind, symbol, strike, expiry, vol)


@dataclass(frozen=True)
class ChannelRef:
    id: str  # an id (C…) or, when only a name was given, `#name` (chat.postMessage accepts names)
    label: str


def parse_channel(token: str) -> ChannelRef | None:
    m = _CHANNEL.match(token)
    if m:
        return ChannelRef(m.group(1), f"#{m.group(2)}" if m.group(2) else f"<#{m.group(1)}>")
    if token.startswith("#") and len(token) > 1:
        return ChannelRef(token, token)
    return None


@dataclass(frozen=True)
class BriefingCommand:
    action: str  # now | schedule | list | cancel
    symbols: list[str] = field(default_factory=list)
    channel: ChannelRef | None = None
    cadence: Cadence | None = None
    schedule_id: str | None = None


def _symbols_and_channel(tokens: list[str], cmd: str) -> tuple[list[str], ChannelRef | None]:
    symbols: list[str] = []
    channel: ChannelRef | None = None
    for tok in tokens:
        ch = parse_channel(tok)
        if ch is not None:
            channel = ch
            continue
        for part in tok.split(","):
            if not part:
                continue
            sym = normalise_symbol(part)
            if sym is None:
                raise ParseError(f"`{part}` is not a trading pair.", cmd)
            if sym not in symbols:
                symbols.append(sym)
    if len(symbols) > 10:
        raise ParseError("At most 10 pairs in one briefing.", cmd)
    return symbols, channel


def parse_briefing(text: str) -> BriefingCommand:
    cmd = "/briefing"
    tokens = text.split()
    if not tokens:
        raise ParseError("Say what to do.", cmd)
    action = tokens[0].lower()
    if action == "now":
        symbols, channel = _symbols_and_channel(tokens[1:], cmd)
        return BriefingCommand("now", symbols, channel)
    if action == "list":
        return BriefingCommand("list")
    if action in ("cancel", "delete", "remove"):
        if len(tokens) != 2:
            raise ParseError("`cancel` needs the schedule id shown by `/briefing list`.", cmd)
        return BriefingCommand("cancel", schedule_id=tokens[1])
    if action == "schedule":
        try:
            cadence, rest = parse_cadence(tokens[1:])
        except CadenceError as exc:
            raise ParseError(str(exc), cmd) from None
        symbols, channel = _symbols_and_channel(rest, cmd)
        return BriefingCommand("schedule", symbols, channel, cadence)
    raise ParseError(f"Unknown action `{tokens[0]}`.", cmd)
