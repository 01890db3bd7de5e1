"""Market briefings: now (`/briefing now`) or on a cron per channel (`/briefing schedule daily 08:00 UTC #markets
BTC/USDT,ETH/USDT`). Schedules live in Mongo (`briefing_schedules`) and become scheduler jobs on the leader, so
they survive restarts. A briefing: prices and 24h changes, forecasts with their measured skill, news sentiment and
top headlines with links, risk status and positions, and a PNG chart uploaded with `files_upload_v2`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from agent.scheduler.cadence import Cadence
from agent.scheduler.service import JobSpec
from agent.slack.chart import briefing_chart_png
from agent.slack.parsing import BriefingCommand, ParseError, parse_briefing
from agent.slack.rendering import (
    context,
    escape,
    fmt_num,
    fmt_pct,
    forecast_line,
    header,
    news_items,
    news_line,
    pick_sentiment,
    positions_text,
    risk_text,
    section,
    sentiment_line,
    tool_missing,
)
from agent.slack.runtime import SlackRuntime
from core.clock import now_ms

log = logging.getLogger(__name__)
Doc = dict[str, Any]
TOOL_TIMEOUT_S = 45.0
JOB_KIND = "briefing"


class BriefingStore:
    def __init__(self, db: Database[Doc]) -> None:
        self.col = db["briefing_schedules"]
        self.col.create_index([("created_ms", ASCENDING)])

    def create(self, channel: str, label: str, symbols: list[str], cadence: Cadence, user: str) -> Doc:
        doc = {
            "_id": f"b{secrets.token_hex(3)}",
            "channel": channel,
            "channel_label": label,
            "symbols": symbols,
            "cadence": cadence.to_doc(),
            "created_by": user,
            "created_ms": now_ms(),
            "last_run_ms": None,
            "last_status": None,
        }
        self.col.insert_one(doc)
        return doc

    def all(self) -> list[Doc]:
        return list(self.col.find({}).sort([("created_ms", ASCENDING)]))

    def get(self, schedule_id: str) -> Doc | None:
        return self.col.find_one({"_id": schedule_id})

    def delete(self, schedule_id: str) -> bool:
        return bool(self.col.delete_one({"_id": schedule_id}).deleted_count)

    def mark_run(self, schedule_id: str, status: str) -> None:
        self.col.update_one({"_id": schedule_id}, {"$set": {"last_run_ms": now_ms(), "last_status": status}})

    def job_specs(self) -> list[JobSpec]:
        return [
            JobSpec(
                id=f"{JOB_KIND}:{doc['_id']}",
                kind=JOB_KIND,
                key=str(doc["_id"]),
                cadence=Cadence.from_doc(doc["cadence"]),
                name=f"briefing {doc.get('channel_label')} {','.join(doc.get('symbols') or [])}",
            )
            for doc in self.all()
        ]


@dataclass
class SymbolBrief:
    symbol: str
    ticker: Doc | None = None
    forecast: Doc | None = None
    sentiment: Doc | None = None
    news: list[Doc] = field(default_factory=list)
    closes: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Briefing:
    title: str
    symbols: list[SymbolBrief]
    risk: Doc | str
    positions: Doc | str
    chart: bytes | None = None
    chart_note: str | None = None

    def blocks(self) -> list[Doc]:
        out: list[Doc] = [header(self.title)]
        for s in self.symbols:
            lines: list[str] = []
            if s.ticker:
                sim = " _(simulated)_" if s.ticker.get("simulated") else ""
                lines.append(f"*{s.symbol}* {fmt_num(s.ticker.get('last'))} ({fmt_pct(s.ticker.get('change_pct_24h'))}"
                             f" 24h){sim}")
            else:
                lines.append(f"*{s.symbol}*: price unavailable")
            if s.forecast:
                lines.append(f":crystal_ball: {forecast_line(s.forecast)}")
            if s.sentiment:
                lines.append(f":speech_balloon: sentiment: {escape(sentiment_line(s.sentiment))}")
            lines.extend(news_line(i) for i in s.news[:3])
            if s.notes:
                lines.append("_" + "; ".join(escape(n) for n in s.notes) + "_")
            out.append(section("\n".join(lines)))
        out.append({"type": "divider"})
        out.append(section("*Risk*\n" + (risk_text(self.risk) if isinstance(self.risk, dict) else f"_{self.risk}_")))
        out.append(section("*Positions*\n" + (positions_text(self.positions) if isinstance(self.positions, dict)
                                              else f"_{self.positions}_")))
        out.append(context(self.chart_note or "Chart: change since the start of the last 48 hours (1h candles)."))
        return out

    def text(self) -> str:
        parts = [self.title]
        for s in self.symbols:
            if s.ticker:
                parts.append(f"{s.symbol} {fmt_num(s.ticker.get('last'))} ({fmt_pct(s.ticker.get('change_pct_24h'))})")
        return " | ".join(parts)


class Briefings:
    def __init__(self, runtime: SlackRuntime) -> None:
        self.rt = runtime
        self.store = BriefingStore(runtime.db)

    # ------------------------------------------------------------------ content
    async def _symbol(self, symbol: str) -> SymbolBrief:
        base = symbol.split("/")[0]
        ticker, forecast, sentiment, news, candles = await asyncio.gather(
            self.rt.tool_within("get_ticker", {"symbol": symbol}, TOOL_TIMEOUT_S),
            self.rt.tool_within("forecast_price", {"symbol": symbol, "horizon": 24}, TOOL_TIMEOUT_S),
            self.rt.tool_within("news_sentiment", {"symbols": [base]}, TOOL_TIMEOUT_S),
            self.rt.tool_within("search_news", {"query": f"{base} crypto", "symbols": [base], "k": 3},
                                TOOL_TIMEOUT_S),
            self.rt.tool_within("get_candles", {"symbol": symbol, "timeframe": "1h", "limit": 48}, TOOL_TIMEOUT_S),
        )
        brief = SymbolBrief(symbol)
        for name, out in (("price", ticker), ("forecast", forecast), ("sentiment", sentiment), ("news", news),
                          ("chart data", candles)):
            if not out.get("ok"):
                err = str(out.get("error"))
                brief.notes.append(f"{name}: {'not installed' if tool_missing(err) else err[:160]}")
        if ticker.get("ok"):
            brief.ticker = ticker["result"]
        if forecast.get("ok"):
            brief.forecast = forecast["result"]
        if sentiment.get("ok"):
            brief.sentiment = pick_sentiment(sentiment.get("result"), symbol)
        if news.get("ok"):
            brief.news = news_items(news["result"])
        if candles.get("ok"):
            rows = (candles["result"] or {}).get("candles") or []
            brief.closes = [(str(r[0]), float(r[4])) for r in rows if isinstance(r, list) and len(r) > 4 and r[4]]
        return brief

    async def build(self, symbols: list[str]) -> Briefing:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        briefs, risk, positions = await asyncio.gather(
            asyncio.gather(*(self._symbol(s) for s in symbols)),
            self.rt.book("get_risk_status", "risk_status"),
            self.rt.book("get_portfolio", "positions"),
        )
        briefing = Briefing(f"Market briefing · {stamp}", list(briefs), risk, positions)
        series = {b.symbol: b.closes for b in briefs if b.closes}
        try:
            briefing.chart = await self.rt.run_blocking(briefing_chart_png, series, f"Last 48h · {stamp}")
        except ValueError as exc:
            briefing.chart_note = f"No chart: {exc}."
        return briefing

    async def post(self, channel: str, symbols: list[str]) -> Doc:
        """Build and post a briefing (message + chart). Returns {'channel', 'ts', 'file'}."""
        briefing = await self.build(symbols or list(self.rt.settings.symbols))
        resp = await self.rt.client.chat_postMessage(channel=channel, text=briefing.text(), blocks=briefing.blocks())
        out: Doc = {"channel": resp.get("channel") or channel, "ts": resp.get("ts"), "file": None}
        if briefing.chart is not None:
            try:
                up = await self.rt.client.files_upload_v2(
                    channel=str(out["channel"]),
                    file=briefing.chart,
                    filename="briefing.png",
                    title=briefing.title,
                    thread_ts=str(out["ts"]),
                )
                files = up.get("files") or [{}]
                out["file"] = files[0].get("id") if files else None
            except SlackApiError as exc:  # the text briefing stands on its own; say why the chart is missing
                log.warning("briefing chart upload failed: %s", exc.response.get("error"))
        return out

    async def run_schedule(self, schedule_id: str) -> Doc | None:
        """Scheduler job handler."""
        doc = await self.rt.run_blocking(self.store.get, schedule_id)
        if doc is None:
            log.info("briefing schedule %s no longer exists; skipping", schedule_id)
            return None
        try:
            out = await self.post(str(doc["channel"]), list(doc.get("symbols") or []))
        except Exception as exc:
            await self.rt.run_blocking(self.store.mark_run, schedule_id, f"failed: {exc}")
            raise
        await self.rt.run_blocking(self.store.mark_run, schedule_id, "ok")
        self.rt.audit.record("slack.briefing.scheduled", "scheduler", source="scheduler", schedule_id=schedule_id,
                             channel=doc["channel"], ts=out.get("ts"))
        return out

    # ------------------------------------------------------------------ command
    async def _now(self, cmd: BriefingCommand, command: Doc) -> None:
        channel = cmd.channel.id if cmd.channel else command["channel_id"]
        symbols = cmd.symbols or list(self.rt.settings.symbols)
        try:
            await self.post(channel, symbols)
        except SlackApiError as exc:
            await self.rt.ephemeral(command["channel_id"], command["user_id"],
                                    f"I could not post the briefing to {channel}: {exc.response.get('error')}. "
                                    "Invite me to the channel (`/invite @desk`) and try again.")
        self.rt.audit.record("slack.briefing.now", f"slack:{command['user_id']}", source="slack", channel=channel,
                             symbols=symbols)

    async def _sync_scheduler(self) -> None:
        if self.rt.scheduler is not None:
            await self.rt.scheduler.sync()

    def _describe(self, doc: Doc) -> str:
        cad = Cadence.from_doc(doc["cadence"])
        nxt = self.rt.scheduler.next_run(f"{JOB_KIND}:{doc['_id']}") if self.rt.scheduler else None
        nxt_txt = f", next {nxt.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC')}" if nxt else ""
        last = f", last run {doc['last_status']}" if doc.get("last_status") else ""
        return (f"`{doc['_id']}` {escape(cad.text)} → {escape(str(doc.get('channel_label')))}: "
                f"{', '.join(doc.get('symbols') or [])}{nxt_txt}{last}")

    async def handle(self, ack: AsyncAck, command: Doc) -> None:
        try:
            cmd = parse_briefing(command.get("text") or "")
        except ParseError as exc:
            await ack(response_type="ephemeral", text=exc.friendly())
            return
        user = command.get("user_id", "")
        if cmd.action == "now":
            where = cmd.channel.label if cmd.channel else "here"
            await ack(response_type="ephemeral", text=f"Preparing a briefing for {where}…")
            self.rt.spawn(self._now(cmd, command), name="briefing-now")
            return
        if cmd.action == "list":
            docs = await self.rt.run_blocking(self.store.all)
            if not docs:
                await ack(response_type="ephemeral", text="No scheduled briefings. Add one with "
                          "`/briefing schedule daily 08:00 UTC #markets BTC/USDT,ETH/USDT`.")
                return
            await ack(response_type="ephemeral",
                      text="*Scheduled briefings*\n" + "\n".join(f"• {self._describe(d)}" for d in docs))
            return
        if cmd.action == "cancel":
            assert cmd.schedule_id is not None
            removed = await self.rt.run_blocking(self.store.delete, cmd.schedule_id)
            if not removed:
                await ack(response_type="ephemeral", text=f"No schedule `{escape(cmd.schedule_id)}`; see "
                          "`/briefing list`.")
                return
            await ack(response_type="ephemeral", text=f"Cancelled briefing `{cmd.schedule_id}`.")
            self.rt.audit.record("slack.briefing.cancel", f"slack:{user}", source="slack",
                                 schedule_id=cmd.schedule_id)
            self.rt.spawn(self._sync_scheduler(), name="briefing-sync")
            return
        assert cmd.cadence is not None
        channel = cmd.channel.id if cmd.channel else command["channel_id"]
        label = cmd.channel.label if cmd.channel else f"<#{command['channel_id']}>"
        symbols = cmd.symbols or list(self.rt.settings.symbols)
        doc = await self.rt.run_blocking(self.store.create, channel, label, symbols, cmd.cadence, f"slack:{user}")
        self.rt.audit.record("slack.briefing.schedule", f"slack:{user}", source="slack", schedule_id=doc["_id"],
                             cadence=cmd.cadence.text, channel=channel, symbols=symbols)
        await ack(response_type="ephemeral",
                  text=f"Scheduled briefing `{doc['_id']}`: {escape(cmd.cadence.text)} in {escape(label)} for "
                  f"{', '.join(symbols)}. Cancel with `/briefing cancel {doc['_id']}`.")
        self.rt.spawn(self._sync_scheduler(), name="briefing-sync")

    def register(self, app: AsyncApp) -> None:
        app.command("/briefing")(self.handle)
