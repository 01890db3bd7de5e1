"""Deterministic analysis: the report the desk gives with or without an LLM.

It assembles what the tools know about a symbol: price and change, realised volatility, the forecast with its
measured skill, news sentiment and top headlines, risk status and positions. Each section comes from one tool call;
a tool that is missing or fails leaves a note instead of a number, never a made-up value.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ToolCaller = Callable[[str, dict[str, Any]], dict[str, Any]]

_PAIR = re.compile(r"\b([A-Z0-9]{2,10})\s*[/-]\s*([A-Z]{3,5})\b")
_KNOWN_BASES = ("BTC", "ETH", "SOL", "XRP", "BNB", "ADA", "DOGE", "AVAX", "DOT", "LINK", "LTC", "TRX", "MATIC")
_NAMES = {"bitcoin": "BTC", "ether": "ETH", "ethereum": "ETH", "solana": "SOL", "ripple": "XRP", "dogecoin": "DOGE"}


def extract_symbol(text: str, default_quote: str = "USDT") -> str | None:
    upper = text.upper()
    if m := _PAIR.search(upper):
        return f"{m.group(1)}/{m.group(2)}"
    for base in _KNOWN_BASES:
        if re.search(rf"\b{base}\b", upper):
            return f"{base}/{default_quote}"
    lower = text.lower()
    for name, base in _NAMES.items():
        if re.search(rf"\b{name}\b", lower):
            return f"{base}/{default_quote}"
    return None


@dataclass
class Section:
    name: str
    ok: bool
    data: Any = None
    note: str | None = None


@dataclass
class Report:
    symbol: str
    sections: list[Section] = field(default_factory=list)
    tools_used: list[dict[str, Any]] = field(default_factory=list)

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "sections": {
                s.name: ({"ok": True, "data": s.data} if s.ok else {"ok": False, "note": s.note}) for s in self.sections
            },
        }


def realised_vol(closes: list[float], periods_per_year: float) -> float | None:
    if len(closes) < 3:
        return None
    rets = [math.log(b / a) for a, b in itertools.pairwise(closes) if a > 0 and b > 0]
    if len(rets) < 2:
        return None
    mean = sum(rets) / len(rets)
    var = sum((r - mean) ** 2 for r in rets) / (len(rets) - 1)
    return math.sqrt(var * periods_per_year)


def analyze(symbol: str, call: ToolCaller) -> Report:
    report = Report(symbol)

    def run(section: str, tool: str, args: dict[str, Any]) -> Any:
        out = call(tool, args)
        report.tools_used.append(
            {"tool": tool, "args": args, "ok": out.get("ok", False), "result": out.get("result", out.get("error"))}
        )
        if out.get("ok"):
            report.sections.append(Section(section, True, out["result"]))
            return out["result"]
        report.sections.append(Section(section, False, note=str(out.get("error", "unavailable"))))
        return None

    run("ticker", "get_ticker", {"symbol": symbol})
    candles = run("candles", "get_candles", {"symbol": symbol, "timeframe": "1h", "limit": 168})
    if candles:
        rows = candles.get("candles", candles) if isinstance(candles, dict) else candles
        closes = [float(r[4] if isinstance(r, list | tuple) else r["close"]) for r in rows]
        vol = realised_vol(closes, 24 * 365)
        change_7d = (closes[-1] / closes[0] - 1.0) * 100.0 if len(closes) > 1 and closes[0] else None
        report.sections[-1] = Section(
            "candles", True, {"bars": len(closes), "realised_vol_annual": vol, "change_7d_pct": change_7d}
        )
    run("forecast", "forecast_price", {"symbol": symbol, "horizon": 24})
    base = symbol.split("/")[0]
    run("sentiment", "news_sentiment", {"symbols": [base]})
    run("news", "search_news", {"query": f"{base} crypto market", "symbols": [base], "k": 3})
    run("risk", "get_risk_status", {})
    run("positions", "get_portfolio", {})
    return report


def _fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{suffix}"
    return f"{value}{suffix}"


def forecast_change(final: dict[str, Any], last_close: Any, shown_price: Any) -> str:
    """The forecast's move, measured from the price the reader sees above it (the ticker) when there is one, else
    from the model's last close, and always saying which: a percent from the last close printed under a different
    live price reads as the wrong move."""
    price = final.get("price")
    if not isinstance(price, int | float):
        return "n/a"
    for base, label in ((shown_price, "from the price above"), (last_close, "from the last close")):
        if isinstance(base, int | float) and not isinstance(base, bool) and base > 0:
            suffix = f" {_fmt(float(base))}" if label.endswith("close") else ""
            return f"{(float(price) / float(base) - 1.0) * 100:+.2f}% {label}{suffix}"
    pct = final.get("return_pct")
    return f"{_fmt(pct, 2, '%')} from the last close" if pct is not None else "n/a"


def render_markdown(report: Report) -> str:
    lines = [f"*{report.symbol}*: deterministic desk report"]
    t = report.section("ticker")
    if t and t.ok:
        d = t.data
        sim = " (simulated exchange: no live venue reachable)" if d.get("simulated") else ""
        lines.append(
            f"- Price {_fmt(d.get('last'))} on {d.get('exchange')}{sim}; "
            f"bid {_fmt(d.get('bid'))} / ask {_fmt(d.get('ask'))}; "
            f"24h change {_fmt(d.get('change_pct_24h'), 2, '%')}"
        )
    elif t:
        lines.append(f"- Price unavailable: {t.note}")
    c = report.section("candles")
    if c and c.ok:
        vol = c.data.get("realised_vol_annual")
        lines.append(
            f"- 7-day change {_fmt(c.data.get('change_7d_pct'), 2, '%')}; realised volatility "
            f"{_fmt(vol * 100 if vol is not None else None, 1, '%')} annualised ({c.data.get('bars')} hourly bars)"
        )
    f = report.section("forecast")
    if f and f.ok:
        d = f.data
        final = d.get("final") or {}
        lines.append(
            f"- Forecast {d.get('horizon')} x {d.get('timeframe')}: {_fmt(final.get('price'))} "
            f"({forecast_change(final, d.get('last_close'), t.data.get('last') if t and t.ok else None)}), "
            f"interval {_fmt(final.get('lower'))} - {_fmt(final.get('upper'))}. "
            f"{d.get('verdict', '')}"
        )
    elif f:
        lines.append(f"- Forecast unavailable: {f.note}")
    s = report.section("sentiment")
    if s and s.ok:
        rows = s.data.get("symbols", []) if isinstance(s.data, dict) else []
        for row in rows[:1]:
            events = ", ".join(row.get("events") or []) or "none"
            lines.append(
                f"- News sentiment {row.get('symbol')}: index {_fmt(row.get('index'), 3)} "
                f"over {row.get('n_docs', 'n/a')} docs, signal {_fmt(row.get('signal'), 3)}; events {events}"
            )
    n = report.section("news")
    if n and n.ok:
        items = n.data.get("citations", []) if isinstance(n.data, dict) else []
        if items:
            lines.append("- Top news:")
        for item in items[:3]:
            lines.append(f"  - {item.get('title') or item.get('url')} ({item.get('source')}, {item.get('published')})")
    r = report.section("risk")
    if r and r.ok:
        d = r.data
        lines.append(
            f"- Risk: desk {str(d.get('desk_state', 'n/a')).upper()}; "
            f"pending approvals {d.get('pending_approvals', 0)}; "
            + (
                f"daily loss {_fmt(100 * float(d['daily_loss_pct']), 2, '%')}"
                if d.get("daily_loss_pct") is not None
                else f"daily loss unknown ({d.get('equity_state')})"
            )
        )
    p = report.section("positions")
    if p and p.ok:
        d = p.data
        held = [row for row in d.get("positions", []) if isinstance(row, dict)]
        pos = ", ".join(f"{row.get('symbol')} {_fmt(row.get('qty'), 6)}" for row in held[:5]) or "flat"
        lines.append(f"- Positions: {pos}; equity {_fmt(d.get('equity'))}")
    missing = [s.name for s in report.sections if not s.ok]
    if missing:
        lines.append(f"_Not available: {', '.join(missing)}._")
    return "\n".join(lines)
