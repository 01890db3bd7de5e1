"""Slack text (mrkdwn) and Block Kit for tool results. Robust to missing fields: show what is there."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

Doc = dict[str, Any]
MAX_TEXT = 2900  # a section block's text is limited to 3000 characters


def fmt_num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        v = float(value)
        if v != 0 and abs(v) < 1:
            return f"{v:,.6g}"
        return f"{v:,.{digits}f}"
    return str(value)


def fmt_pct(value: Any, digits: int = 2, signed: bool = True) -> str:
    if value is None:
        return "n/a"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{v:+.{digits}f}%" if signed else f"{v:.{digits}f}%"


def slack_date(ms: int, fallback: str | None = None) -> str:
    """`<!date^…>` renders in each reader's time zone."""
    secs = int(ms // 1000)
    text = fallback or datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{secs}^{{date_short_pretty}} {{time}}|{text}>"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str | None, title: str) -> str:
    title = escape(title).replace("|", "¦")
    if not url:
        return title
    return f"<{url}|{title}>"


def truncate(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str) -> Doc:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text)}}


def context(text: str) -> Doc:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, 1900)}]}


def header(text: str) -> Doc:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, 150), "emoji": True}}


def compact_json(data: Any, limit: int = 1500) -> str:
    return truncate(json.dumps(data, default=str, separators=(", ", ": ")), limit)


def tool_missing(error: str) -> bool:
    return "not available in this installation" in error


def unavailable(what: str, error: str) -> str:
    if tool_missing(error):
        return f"{what} is not installed on this desk yet ({error})."
    return f"{what} failed: {error}"


# ---------------------------------------------------------------------- forecasts
def forecast_line(f: Doc) -> str:
    final = f.get("final") or {}
    price = final.get("price", final.get("mid"))
    lower, upper = final.get("lower"), final.get("upper")
    interval = f.get("interval")
    band = f" ({fmt_num(interval * 100 if isinstance(interval, float) and interval < 1 else interval, 0)}% "\
        f"interval {fmt_num(lower)} – {fmt_num(upper)})" if lower is not None and upper is not None else ""
    ret = final.get("return_pct")
    skill = f.get("skill") or {}
    beats = f.get("beats_random_walk")
    skill_txt = "beats a random walk" if beats else "does *not* beat a random walk" if beats is False else "skill n/a"
    metric = next((f"{k} {v}" for k, v in skill.items() if isinstance(v, int | float) and not isinstance(v, bool)), "")
    parts = [
        f"{f.get('horizon', '?')}×{f.get('timeframe', '')} ahead: *{fmt_num(price)}*{band}",
        (f"change {fmt_pct(ret)} from the last close {fmt_num(f.get('last_close'))}"
         if f.get("last_close") is not None else f"change {fmt_pct(ret)}") if ret is not None else "",
        f"model {skill_txt}" + (f" ({metric})" if metric else ""),
    ]
    if f.get("stale"):
        parts.append("model is stale")
    return "; ".join(p for p in parts if p)


def render_forecast(f: Doc) -> list[Doc]:
    blocks = [
        section(f"*Forecast {f.get('symbol', '')}* (last close {fmt_num(f.get('last_close'))})\n{forecast_line(f)}"),
    ]
    if f.get("verdict"):
        blocks.append(section(f"_{escape(str(f['verdict']))}_"))
    data = f.get("data") or {}
    blocks.append(context(f"model `{f.get('model', 'n/a')}` · as of {f.get('as_of', 'n/a')}"
                          + (" · SIMULATED candles" if data.get("simulated") else "")))
    return blocks


# ---------------------------------------------------------------------- options
def render_option(result: Doc) -> list[Doc]:
    price = result.get("price", result.get("premium", result.get("value")))
    lines = [f"*Premium*: {fmt_num(price, 4)}"]
    skip = {"price", "premium", "value", "raw", "units", "coin"}
    for key, value in result.items():
        if key in skip:
            continue
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            lines.append(f"• {key.replace('_', ' ')}: {fmt_num(value, 4)}")
        elif isinstance(value, dict) and key == "greeks":
            lines.extend(f"• {k}: {fmt_num(v, 4)}" for k, v in value.items())
    blocks = [section("\n".join(lines))]
    if isinstance(result.get("coin"), dict):
        blocks.append(context("coin-settled: " + ", ".join(f"{k} {fmt_num(v, 6)}" for k, v in result["coin"].items())))
    if result.get("units"):
        blocks.append(context(escape(str(result["units"]))))
    return blocks


# ---------------------------------------------------------------------- news
_FENCED_TITLE = re.compile(r"^\[(\d+)\] (.*) \([^()]*\)$")


def news_items(result: Any) -> list[Doc]:
    """Articles from a news tool result: `citations` (titles from the fenced text) or a plain list of items."""
    if isinstance(result, dict) and isinstance(result.get("citations"), list):
        titles: dict[int, str] = {}
        for line in str(result.get("untrusted_content") or "").splitlines():
            m = _FENCED_TITLE.match(line.strip())
            if m:
                titles[int(m.group(1))] = m.group(2)
        items = []
        for c in result["citations"]:
            if isinstance(c, dict):
                items.append({**c, "title": titles.get(int(c.get("n") or 0)) or c.get("source") or c.get("url")})
        return items
    if isinstance(result, dict):
        for key in ("results", "items", "news", "articles"):
            if isinstance(result.get(key), list):
                return [i for i in result[key] if isinstance(i, dict)]
        return []
    if isinstance(result, list):
        return [i for i in result if isinstance(i, dict)]
    return []


def news_line(item: Doc) -> str:
    title = str(item.get("title") or item.get("headline") or "untitled")
    bits = [link(item.get("url") or item.get("link"), title)]
    meta = [str(x) for x in (item.get("source"), item.get("published")) if x]
    sent = item.get("sentiment", item.get("sentiment_score"))
    if isinstance(sent, dict):
        sent = sent.get("label") or sent.get("score")
    if sent is not None:
        meta.append(f"sentiment {fmt_num(sent, 2)}")
    if meta:
        bits.append(f"({', '.join(meta)})")
    return "• " + " ".join(bits)


def render_news(query: str, result: Any, limit: int = 8) -> list[Doc]:
    items = news_items(result)
    if not items:
        return [section(f"No news found for _{escape(query)}_.")]
    return [section(f"*News: {escape(query)}*\n" + "\n".join(news_line(i) for i in items[:limit]))]


def pick_sentiment(result: Any, symbol: str) -> Doc | None:
    """One symbol's entry from a sentiment result ({'symbols': [{symbol, index, ...}]} or a flat dict)."""
    if not isinstance(result, dict):
        return None
    rows = result.get("symbols")
    if isinstance(rows, list):
        base = symbol.split("/")[0].upper()
        for row in rows:
            if isinstance(row, dict) and str(row.get("symbol", "")).split("/")[0].upper() == base:
                return row
        return None
    return result


def sentiment_line(s: Doc) -> str:
    if s.get("summary"):
        return str(s["summary"])
    score = s.get("index", s.get("score", s.get("mean", s.get("sentiment"))))
    label = s.get("label")
    if label is None and isinstance(score, int | float):
        label = "positive" if score > 0.15 else "negative" if score < -0.15 else "neutral"
    n = s.get("n_docs", s.get("n", s.get("count", s.get("articles"))))
    if isinstance(s.get("positive"), int) and isinstance(s.get("negative"), int):
        n = f"{n} ({s['positive']} positive, {s['negative']} negative)"
    parts = [str(label) if label else "", f"index {fmt_num(score, 2)}" if score is not None else "",
             f"{n} articles" if n is not None else ""]
    if isinstance(s.get("signal"), int | float):
        parts.append(f"signal {fmt_num(s['signal'], 2)}")
    text = ", ".join(p for p in parts if p)
    return text or compact_json(s, 300)


# ---------------------------------------------------------------------- book
def positions_text(p: Doc) -> str:
    rows = p.get("positions") or []
    lines = []
    if isinstance(rows, list):
        for r in rows[:15]:
            if not isinstance(r, dict):
                continue
            qty = r.get("qty", r.get("amount", r.get("position")))
            value = r.get("value", r.get("notional", r.get("market_value")))
            pnl = r.get("unrealised", r.get("unrealized_pnl", r.get("upnl")))
            extra = f", uPnL {fmt_num(pnl)}" if pnl is not None else ""
            lines.append(f"• {r.get('symbol', r.get('asset', '?'))}: {fmt_num(qty, 6)} (value {fmt_num(value)}{extra})")
    if not lines:
        lines.append("No open positions.")
    if p.get("equity") is not None:
        lines.append(f"Equity: *{fmt_num(p.get('equity'))}*")
    elif p.get("equity_state") not in (None, "known"):  # a held symbol without a price: unknown, not a loss
        lines.append(f"Equity: *unknown* ({escape(str(p['equity_state']))})")
    cash = p.get("cash")
    if isinstance(cash, dict) and cash:
        flat = []
        for venue, assets in cash.items():
            if isinstance(assets, dict):
                flat.append(f"{venue}: " + ", ".join(f"{a} {fmt_num(x)}" for a, x in assets.items()))
        if flat:
            lines.append("Cash: " + "; ".join(flat))
    return "\n".join(lines)


def risk_text(r: Doc) -> str:
    state = r.get("desk_state", r.get("state", "n/a"))
    icon = {"active": ":large_green_circle:", "reducing": ":large_yellow_circle:", "halted": ":red_circle:"}.get(
        str(state), ":white_circle:"
    )
    lines = [f"{icon} Desk *{state}*" + (f" ({escape(str(r['desk_reason']))})" if r.get("desk_reason") else "")]
    if r.get("equity_state") not in (None, "known"):
        lines.append(f"• {escape(str(r['equity_state']))}: loss limits wait for a price")
    metrics = r.get("metrics") or {}
    for key in ("equity", "gross_exposure", "net_exposure", "drawdown", "drawdown_pct", "var_95", "realised",
                "unrealised"):
        if key in metrics:
            lines.append(f"• {key.replace('_', ' ')}: {fmt_num(metrics[key])}")
    if r.get("daily_loss_pct") is not None:
        lines.append(f"• daily loss: {fmt_pct(float(r['daily_loss_pct']) * 100, 2, signed=False)}")
    util = r.get("utilisation") or {}
    for key, value in util.items():
        if value is not None:
            lines.append(f"• {key.replace('_', ' ')} used: {fmt_pct(float(value) * 100, 1, signed=False)} of limit")
    for key in ("pending_approvals", "unresolved_orders", "mode"):
        if key in r:
            lines.append(f"• {key.replace('_', ' ')}: {r[key]}")
    halted = r.get("halted_symbols") or {}
    if halted:
        lines.append("• halted symbols: " + ", ".join(f"{s} ({why})" for s, why in halted.items()))
    for stop in r.get("stops") or []:  # who holds it matters: a venue-held stop protects while the desk is down
        lines.append(
            f"• {escape(str(stop['symbol']))} {str(stop['kind']).replace('_', ' ')} at {fmt_num(stop['trigger'])}"
            f" for {fmt_num(stop['qty'], 6)}, held by {escape(', '.join(stop.get('held_by') or ['desk']))}"
        )
    return "\n".join(lines)
