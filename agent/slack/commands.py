"""Slash commands other than `/trade` and `/briefing`: each acknowledges at once, then works in the background.

Pattern: bad input -> an ephemeral reply with the usage (in the ack, so it is instant); good input -> an empty ack,
a progress message in the channel, and that message edited in place with the answer (or a friendly failure).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from agent.analysis import extract_symbol, realised_vol
from agent.slack.parsing import USAGE, OptionRequest, ParseError, parse_forecast, parse_option
from agent.slack.rendering import (
    context,
    escape,
    positions_text,
    render_forecast,
    render_news,
    render_option,
    risk_text,
    section,
    truncate,
    unavailable,
)
from agent.slack.runtime import Progress, SlackRuntime
from tools.registry import get_tool

if TYPE_CHECKING:
    from agent.slack.approvals import Approvals

log = logging.getLogger(__name__)
Doc = dict[str, Any]


def _session(command: Doc) -> str:
    return f"slack:{command.get('channel_id')}:{command.get('user_id')}"


def option_tool_args(req: OptionRequest, fields: set[str], underlying: float, vol: float) -> Doc:
    """Map the parsed option onto whatever the installed `price_option` tool calls its fields."""
    days = req.days()
    expiry_date = req.expiry if days is None else (datetime.now(UTC) + timedelta(days=days)).date().isoformat()
    if days is None:
        days = max((datetime.fromisoformat(req.expiry).replace(tzinfo=UTC) - datetime.now(UTC)).days, 0)
    candidates: dict[str, tuple[str, ...]] = {
        "kind": ("option_type", "kind", "type", "right", "cp"),
        "symbol": ("symbol", "pair"),
        "underlying": ("underlying", "spot", "underlying_price"),
        "model": ("model",),
        "strike": ("strike", "k"),
        "expiry": ("expiry", "expiration", "maturity", "expiry_date"),
        "days": ("days", "days_to_expiry", "expiry_days", "tenor_days"),
        "vol": ("vol", "volatility", "iv", "sigma"),
    }
    values: Doc = {
        "kind": req.kind,
        "symbol": req.symbol,
        "strike": req.strike,
        "expiry": expiry_date,
        "days": days,
        "vol": vol,
        "underlying": underlying,
        "model": "bsm",  # the desk quotes spot, so Black-Scholes-Merton on spot
    }
    out: Doc = {}
    for canon, names in candidates.items():
        if values[canon] is None:
            continue
        for name in names:
            if name in fields:
                out[name] = values[canon]
                break
    if not fields:  # unknown schema: send the canonical names
        out = {k: v for k, v in values.items() if v is not None}
    return out


def _read_file(path: str) -> bytes | None:
    p = Path(path)
    return p.read_bytes() if p.is_file() else None


class Commands:
    def __init__(self, runtime: SlackRuntime, approvals: Approvals | None = None) -> None:
        self.rt = runtime
        self.approvals = approvals

    async def _fail(self, progress: Progress, command: Doc, text: str) -> None:
        await progress.update(f":warning: {text}")
        name = command.get("command", "")
        if name in USAGE:
            await self.rt.ephemeral(command["channel_id"], command["user_id"], f"{text}\nUsage: {USAGE[name]}")

    # ------------------------------------------------------------------ workers
    async def analyze(self, command: Doc, symbol: str, respond: AsyncRespond) -> None:
        user = command.get("user_id", "unknown")
        progress = await Progress.start(
            self.rt, command["channel_id"], f":mag: <@{user}> asked for an analysis of {symbol} — working…",
            respond=respond,
        )
        try:
            answer = await self.rt.run_blocking(
                self.rt.desk.analyze, symbol, session_id=_session(command), user=f"slack:{user}", source="slack"
            )
        except Exception as exc:  # reported to the user, never silently dropped
            log.exception("analyze failed")
            await self._fail(progress, command, f"Sorry, the analysis of {symbol} failed: {exc}")
            return
        body = truncate(answer.answer, 2_900)
        await progress.update(truncate(answer.answer, 39_000), blocks=[section(f"*Analysis of {symbol}*"),
                                                                         section(body)])

    async def ask(self, command: Doc, question: str, respond: AsyncRespond) -> None:
        user = command["user_id"]
        progress = await Progress.start(
            self.rt, command["channel_id"], f":thinking_face: <@{user}> asked: _{escape(question)}_ — thinking…",
            respond=respond,
        )
        try:
            answer = await self.rt.run_blocking(
                self.rt.desk.ask, question, session_id=_session(command), user=f"slack:{user}", source="slack"
            )
        except Exception as exc:  # reported to the user
            log.exception("ask failed")
            await self._fail(progress, command, f"I could not answer that: {exc}")
            return
        head = f"<@{user}> asked: _{escape(question)}_"
        blocks = [section(head), section(answer.answer), *self._citations(answer.citations)]
        await progress.update(f"{head}\n{answer.answer}", blocks=blocks)
        if answer.proposals and self.approvals is not None:  # the agent proposed: approvers act on a card
            await self.approvals.post_proposals(answer.proposals, progress.channel, progress.ts)

    @staticmethod
    def _citations(citations: list[Doc]) -> list[Doc]:
        links = [f"<{c['url']}|{escape(str(c.get('title') or c['url']))}>" for c in citations if c.get("url")]
        return [context("Sources: " + " · ".join(links[:8]))] if links else []

    async def forecast(self, command: Doc, respond: AsyncRespond) -> None:
        req = parse_forecast(command.get("text") or "")
        progress = await Progress.start(
            self.rt, command["channel_id"], f":crystal_ball: Forecasting {req.symbol} ({req.horizon}×{req.timeframe})…",
            respond=respond,
        )
        out = await self.rt.tool(
            "forecast_price", {"symbol": req.symbol, "horizon": req.horizon, "timeframe": req.timeframe, "chart": True}
        )
        if not out.get("ok"):
            await self._fail(progress, command, unavailable(f"The forecast for {req.symbol}", str(out.get("error"))))
            return
        result = out["result"]
        await progress.update(f"Forecast {req.symbol}", blocks=render_forecast(result))
        chart = result.get("chart")
        png = await self.rt.run_blocking(_read_file, chart) if chart else None
        if png is not None and progress.ts is not None:
            await self.rt.client.files_upload_v2(
                channel=progress.channel, file=png, filename=Path(chart).name,
                title=f"{req.symbol} forecast", thread_ts=progress.ts,
            )

    async def _option_inputs(self, req: OptionRequest) -> tuple[float, float, str] | str:
        """(spot, vol as a fraction, where the vol came from), or a reason."""
        ticker = await self.rt.tool("get_ticker", {"symbol": req.symbol})
        if not ticker.get("ok") or not ticker["result"].get("last"):
            return unavailable(f"The price of {req.symbol}", str(ticker.get("error", "no last price")))
        spot = float(ticker["result"]["last"])
        if req.vol_pct is not None:
            return spot, req.vol_pct / 100.0, "given"
        candles = await self.rt.tool("get_candles", {"symbol": req.symbol, "timeframe": "1h", "limit": 168})
        rows = (candles.get("result") or {}).get("candles") or [] if candles.get("ok") else []
        vol = realised_vol([float(r[4]) for r in rows if r[4]], 24 * 365)
        if vol is None or vol <= 0:
            return f"I could not estimate volatility for {req.symbol}; give one, e.g. `vol 60`."
        return spot, vol, "realised, last 7 days of 1h candles"

    async def option(self, command: Doc, respond: AsyncRespond) -> None:
        req = parse_option(command.get("text") or "")
        progress = await Progress.start(
            self.rt, command["channel_id"], f":abacus: Pricing {req.kind} {req.symbol} {req.strike:g} {req.expiry}…",
            respond=respond,
        )
        spec = get_tool("price_option")
        if spec is None:
            await self._fail(progress, command, unavailable("Option pricing", "tool price_option is not available "
                                                             "in this installation"))
            return
        inputs = await self._option_inputs(req)
        if isinstance(inputs, str):
            await self._fail(progress, command, inputs)
            return
        spot, vol, vol_source = inputs
        out = await self.rt.tool("price_option", option_tool_args(req, set(spec.args.model_fields), spot, vol))
        if not out.get("ok"):
            await self._fail(progress, command, unavailable("Option pricing", str(out.get("error"))))
            return
        result = out["result"] if isinstance(out["result"], dict) else {"value": out["result"]}
        title = (f"*{req.kind.title()} {req.symbol}* strike {req.strike:,.8g}, expiry {req.expiry}\n"
                 f"spot {spot:,.8g} · vol {vol * 100:.1f}% ({vol_source})")
        blocks = [section(title), *render_option(result)]
        await progress.update(f"{req.kind} {req.symbol} {req.strike:g}", blocks=blocks)

    async def news(self, command: Doc, query: str, respond: AsyncRespond) -> None:
        progress = await Progress.start(
            self.rt, command["channel_id"], f":newspaper: Searching news for _{escape(query)}_…", respond=respond
        )
        out = await self.rt.tool("search_news", {"query": query, "k": 8})
        if not out.get("ok"):
            await self._fail(progress, command, unavailable("News search", str(out.get("error"))))
            return
        await progress.update(f"News: {query}", blocks=render_news(query, out["result"]))

    async def positions(self, command: Doc, respond: AsyncRespond) -> None:
        progress = await Progress.start(self.rt, command["channel_id"], ":bar_chart: Loading positions…",
                                        respond=respond)
        data = await self.rt.book("get_portfolio", "positions")
        if isinstance(data, str):
            await self._fail(progress, command, data)
            return
        await progress.update("Positions", blocks=[section("*Positions*\n" + positions_text(data))])

    async def risk(self, command: Doc, respond: AsyncRespond) -> None:
        progress = await Progress.start(self.rt, command["channel_id"], ":shield: Loading risk status…",
                                        respond=respond)
        data = await self.rt.book("get_risk_status", "risk_status")
        if isinstance(data, str):
            await self._fail(progress, command, data)
            return
        await progress.update("Risk status", blocks=[section("*Risk*\n" + risk_text(data))])

    async def desk_control(self, command: Doc, action: str, reason: str) -> None:
        user, channel = command["user_id"], command["channel_id"]
        svc = await self.rt.trading()
        if svc is None:
            await self.rt.ephemeral(channel, user, f"Trading is unavailable right now ({self.rt.trading_error}).")
            return
        if action == "status":
            state = await self.rt.run_blocking(svc.store.desk_state)
            await self.rt.ephemeral(channel, user, f"Desk is *{state['state']}* ({state.get('reason')}).")
            return
        # `desk_command` checked this Slack user id against SLACK_ADMINS before spawning this; the service records
        # the actor and never authorises by it.
        actor = user
        if action == "halt":
            state = await self.rt.run_blocking(svc.halt, actor, reason or f"halted from Slack by {user}")
        else:
            state = await self.rt.run_blocking(svc.resume, actor, reason or f"resumed from Slack by {user}")
        self.rt.audit.record(f"slack.desk.{action}", f"slack:{user}", source="slack", reason=reason,
                             state=state.get("state"))
        icon = ":red_circle:" if action == "halt" else ":large_green_circle:"
        done = "halted" if action == "halt" else "resumed"
        await self.rt.client.chat_postMessage(
            channel=channel, text=f"{icon} <@{user}> {done} the desk: now *{state.get('state')}*"
            + (f" ({escape(reason)})" if reason else "")
        )

    # ------------------------------------------------------------------ registration
    def register(self, app: AsyncApp) -> None:
        rt = self.rt

        @app.command("/analyze")
        async def analyze_command(ack: AsyncAck, command: Doc, respond: AsyncRespond) -> None:
            text = (command.get("text") or "").strip()
            symbol = extract_symbol(text) if text else None
            if symbol is None:
                await ack(response_type="ephemeral", text=f"I need a trading pair.\nUsage: {USAGE['/analyze']}")
                return
            await ack()  # the progress message in the channel says it is working
            rt.spawn(self.analyze(command, symbol, respond), name="analyze")

        @app.command("/ask")
        async def ask_command(ack: AsyncAck, command: Doc, respond: AsyncRespond) -> None:
            question = (command.get("text") or "").strip()
            if not question:
                await ack(response_type="ephemeral", text=f"Ask me something.\nUsage: {USAGE['/ask']}")
                return
            await ack()
            rt.spawn(self.ask(command, question, respond), name="ask")

        def parsed(name: str, parse: Any, work: Any) -> None:
            async def handler(ack: AsyncAck, command: Doc, respond: AsyncRespond) -> None:
                try:
                    parse(command.get("text") or "")
                except ParseError as exc:
                    await ack(response_type="ephemeral", text=exc.friendly())
                    return
                await ack()
                rt.spawn(work(command, respond), name=name.strip("/"))

            app.command(name)(handler)

        parsed("/forecast", parse_forecast, self.forecast)
        parsed("/option", parse_option, self.option)

        @app.command("/news")
        async def news_command(ack: AsyncAck, command: Doc, respond: AsyncRespond) -> None:
            query = (command.get("text") or "").strip()
            if not query:
                await ack(response_type="ephemeral", text=f"What should I search for?\nUsage: {USAGE['/news']}")
                return
            await ack()
            rt.spawn(self.news(command, query[:200], respond), name="news")

        @app.command("/positions")
        async def positions_command(ack: AsyncAck, command: Doc, respond: AsyncRespond) -> None:
            await ack()
            rt.spawn(self.positions(command, respond), name="positions")

        @app.command("/risk")
        async def risk_command(ack: AsyncAck, command: Doc, respond: AsyncRespond) -> None:
            await ack()
            rt.spawn(self.risk(command, respond), name="risk")

        @app.command("/desk")
        async def desk_command(ack: AsyncAck, command: Doc) -> None:
            parts = (command.get("text") or "").split(maxsplit=1)
            action = parts[0].lower() if parts else ""
            reason = parts[1].strip() if len(parts) > 1 else ""
            if action not in ("halt", "resume", "status"):
                await ack(response_type="ephemeral", text=f"Unknown action.\nUsage: {USAGE['/desk']}")
                return
            user = command.get("user_id", "")
            if action != "status" and user not in rt.settings.slack_admins:
                rt.audit.record(f"slack.desk.{action}", f"slack:{user}", source="slack", outcome="refused",
                                error="not an admin")
                await ack(response_type="ephemeral",
                          text=f"Only desk admins can {action} the desk (SLACK_ADMINS). Nothing changed.")
                return
            await ack()
            rt.spawn(self.desk_control(command, action, reason[:200]), name="desk")
