"""The one desk service. Slack, HTTP, the scheduler and the CLI are thin doors over this.

A request becomes work here: the LLM agent when a model is configured, otherwise the deterministic analysis; the
conversation and every tool call are recorded.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any, Literal

import openai
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field
from pymongo.database import Database

import tools
from agent.analysis import analyze, extract_symbol, render_markdown
from agent.llm.chat_model import build_chat_model
from agent.llm.usage import DailyUsageLedger, Usage
from agent.memory import ConversationStore
from agent.runtime import AgentLoop, LoopFailed, LoopResult
from agent.writebehind import WriteBehind
from core.audit import AuditLog
from core.metrics import LLM_COST, LLM_TOKENS
from core.settings import Settings
from tools.market import check_symbol
from tools.registry import all_tools, get_tool
from trading.exchanges.errors import UnknownSymbol

log = logging.getLogger(__name__)

NARRATIVE_OFF = "LLM narrative is off (no LLM_API_KEY set): this is the deterministic analysis from the desk's tools."


def _failure_note(exc: BaseException) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return f"The language model did not answer (timed out: {type(exc).__name__})"
    status = getattr(exc, "status_code", None)
    return f"The language model did not answer ({type(exc).__name__}{f', HTTP {status}' if status else ''})"


class ToolUse(BaseModel):
    tool: str
    args: dict[str, Any]
    ok: bool
    result: Any = None
    ms: float | None = None


class Answer(BaseModel):
    answer: str = Field(description="Markdown text for a person")
    mode: Literal["llm", "deterministic"]
    narrative: bool
    session_id: str
    tools_used: list[ToolUse] = Field(default_factory=list)
    citations: list[dict[str, Any]] = Field(default_factory=list)
    proposals: list[dict[str, Any]] = Field(default_factory=list)
    usage: dict[str, Any] | None = None
    notes: list[str] = Field(default_factory=list)
    report: dict[str, Any] | None = None


def _citations(uses: list[ToolUse]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for use in uses:
        if not use.ok or not isinstance(use.result, dict | list):
            continue
        if use.tool in ("get_ticker", "get_order_book", "get_candles", "compare_venues") and isinstance(
            use.result, dict
        ):
            key = f"{use.tool}:{use.result.get('exchange')}:{use.result.get('symbol')}"
            if key not in seen:
                seen.add(key)
                out.append(
                    {
                        "kind": "market",
                        "tool": use.tool,
                        "exchange": use.result.get("exchange"),
                        "symbol": use.result.get("symbol"),
                        "timestamp": use.result.get("timestamp"),
                    }
                )
        items: list[Any] = []
        if isinstance(use.result, dict):
            for key in ("results", "items", "citations", "news"):
                if isinstance(use.result.get(key), list):
                    items.extend(use.result[key])
        else:
            items = use.result
        for item in items:
            if isinstance(item, dict) and item.get("url") and item.get("url") not in seen:
                seen.add(str(item["url"]))
                out.append(
                    {
                        "kind": "news",
                        "title": item.get("title"),
                        "source": item.get("source"),
                        "published": item.get("published"),
                        "url": item.get("url"),
                    }
                )
    return out


class Desk:
    def __init__(self, settings: Settings, db: Database[dict[str, Any]], *, model: BaseChatModel | None = None):
        tools.load_all()
        self.settings = settings
        self.db = db
        # Conversation turns and the usage ledger are written behind the answer (one ordered worker; see
        # agent/writebehind.py); the audit log, the money path's record, stays synchronous.
        self.writes = WriteBehind("desk")
        self.memory = ConversationStore(db, self.writes)
        self.audit = AuditLog(db)
        self.ledger = DailyUsageLedger(db, self.writes)
        self._model = model
        self._loops: dict[bool, AgentLoop] = {}  # keyed by `deep`: LLM_MODEL or LLM_DEEP_MODEL
        self._proposing_tools = {name for name, spec in all_tools().items() if spec.proposes_orders}
        self._tool_names = set(all_tools())

    def close(self, timeout_s: float = 10.0) -> int:
        """Write what the desk has queued (before the database client closes); the number of writes lost."""
        return self.writes.close(timeout_s)

    # -- capabilities --------------------------------------------------------------------------------------
    @property
    def llm_enabled(self) -> bool:
        return self._model is not None or self.settings.llm_enabled

    def _agent(self, deep: bool = False) -> AgentLoop:
        """The loop for LLM_MODEL, or LLM_DEEP_MODEL when `deep`; an injected model (tests, benchmarks) serves both."""
        loop = self._loops.get(deep)
        if loop is None:
            model = self._model or build_chat_model(self.settings, deep=deep)
            loop = self._loops[deep] = AgentLoop(
                model,
                all_tools(),
                max_tool_calls=self.settings.llm_max_tool_calls,
                max_seconds=self.settings.llm_max_seconds,
            )
        return loop

    def call_tool(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        spec = get_tool(name)
        if spec is None:
            return {"ok": False, "error": f"tool {name} is not available in this installation"}
        return spec.invoke(args)

    # -- requests ------------------------------------------------------------------------------------------
    def analyze(
        self,
        symbol: str,
        *,
        session_id: str | None = None,
        user: str = "anonymous",
        source: str = "api",
        narrative: bool = True,
        deep: bool = False,
        owner: str | None = None,
    ) -> Answer:
        check_symbol(symbol)  # an unknown market is a clear refusal (UnknownSymbol, nearby names), not a blank report
        session_id = session_id or uuid.uuid4().hex
        owner = owner or source
        report = analyze(symbol, self.call_tool)
        text = render_markdown(report)
        uses = [ToolUse(**u) for u in report.tools_used]
        answer = Answer(
            answer=text,
            mode="deterministic",
            narrative=False,
            session_id=session_id,
            tools_used=uses,
            citations=_citations(uses),
            report=report.as_dict(),
        )
        self.audit.record("analyze", user, source=source, symbol=symbol, session_id=session_id)
        if narrative and self.llm_enabled and self._budget_left():
            question = (
                f"Write a short desk note on {symbol}: price action, volatility, forecast and its skill, news, risk. "
                "The desk's tool results so far are below as JSON; call tools only for what is missing.\n"
                + json.dumps(report.as_dict(), default=str)[:6000]
            )
            started = time.monotonic()
            try:
                result = self._agent(deep).run(self.memory.history(session_id, owner), question, user=user)
            except Exception as failure:  # the narrative is optional; the report stands on its own
                exc = self._loop_failed(failure, user, source, session_id)
                log.warning("llm narrative failed: %s", exc)
                answer.notes.append(f"{_failure_note(exc)}; report only.")
            else:
                if result.model_timed_out:
                    self._account(result)
                    self._audit_tools(result, user, source, session_id)
                    answer.notes.append(f"{self._timeout_note()}; report only.")
                    answer.answer = f"{text}\n\n_{answer.notes[-1]}_"
                    self.memory.append(
                        session_id, f"analyze {symbol}", answer.answer, {"mode": "deterministic", "user": user},
                        owner=owner,
                    )
                    return answer
                llm = self._finish(f"analyze {symbol}", result, session_id, user, source, started, owner)
                return answer.model_copy(
                    update={
                        "answer": f"{llm.answer}\n\n---\n{text}",
                        "mode": "llm",
                        "narrative": True,
                        "tools_used": uses + llm.tools_used,
                        "citations": _citations(uses + llm.tools_used),
                        "proposals": llm.proposals,
                        "usage": llm.usage,
                        "notes": llm.notes,
                    }
                )
        elif not self.llm_enabled:
            answer.notes.append(NARRATIVE_OFF)
            answer.answer = f"{text}\n\n_{NARRATIVE_OFF}_"
        self.memory.append(
            session_id,
            f"analyze {symbol}",
            answer.answer,
            {"mode": "deterministic", "user": user, "source": source},
            owner=owner,
        )
        return answer

    def _budget_left(self) -> bool:
        return self.ledger.today_tokens() < self.settings.llm_daily_token_budget

    def _deterministic_answer(
        self, question: str, session_id: str, user: str, source: str, note: str, owner: str
    ) -> Answer:
        symbol = extract_symbol(question)
        unknown: UnknownSymbol | None = None
        if symbol is not None:
            try:
                check_symbol(symbol)
            except UnknownSymbol as exc:
                unknown = exc
        if symbol is None or unknown is not None:
            why = (
                f"I do not know the market {symbol}: {unknown}." if unknown is not None
                else "I could not find a symbol in the question."
            )
            text = f"{note}\n{why} Ask about a pair such as `BTC/USDT`, or use `/analyze SYMBOL`."
            answer = Answer(answer=text, mode="deterministic", narrative=False, session_id=session_id, notes=[note])
        else:
            answer = self.analyze(
                symbol, session_id=session_id, user=user, source=source, narrative=False, owner=owner
            )
            if note not in answer.notes:
                answer.notes.append(note)
                answer.answer = f"{answer.answer}\n\n_{note}_"
            return answer
        self.memory.append(
            session_id, question, answer.answer, {"mode": "deterministic", "user": user, "source": source}, owner=owner
        )
        return answer

    def _account(self, result: LoopResult) -> Usage:
        """Tokens and cost of the model calls that answered, into the daily ledger and the metrics."""
        usage = Usage(result.prompt_tokens, result.completion_tokens, result.llm_calls)
        cost = usage.cost_usd(self.settings.llm_price_in_per_mtok, self.settings.llm_price_out_per_mtok)
        self.ledger.record(usage, cost)
        LLM_TOKENS.labels("prompt").inc(usage.prompt_tokens)
        LLM_TOKENS.labels("completion").inc(usage.completion_tokens)
        LLM_COST.inc(cost)
        return usage

    def _timeout_note(self) -> str:
        return (
            "The language model did not answer within this request's time budget "
            f"(LLM_MAX_SECONDS={self.settings.llm_max_seconds:g} s)"
        )

    def _timed_out(
        self, question: str, result: LoopResult, session_id: str, user: str, source: str, owner: str
    ) -> Answer:
        """A model call was cut off by the wall budget: what ran is accounted and audited, the answer is the
        deterministic analysis."""
        self._account(result)
        self._audit_tools(result, user, source, session_id)
        note = f"{self._timeout_note()}; deterministic analysis instead."
        return self._deterministic_answer(question, session_id, user, source, note, owner)

    def _finish(
        self, question: str, result: LoopResult, session_id: str, user: str, source: str, started: float, owner: str
    ) -> Answer:
        uses = [ToolUse(tool=r.name, args=r.args, ok=r.ok, result=r.result, ms=round(r.ms, 2)) for r in result.records]
        # The synchronous audit write goes first: the database serves one write at a time, and the queued usage and
        # conversation writes would otherwise be ahead of it.
        self._audit_tools(result, user, source, session_id)
        usage = self._account(result)
        proposals = [u.result for u in uses if u.tool in self._proposing_tools and u.ok and isinstance(u.result, dict)]
        notes = [f"stopped early: {result.stopped_reason}"] if result.stopped_reason else []
        text = result.text.strip() or "The model returned no answer text."
        answer = Answer(
            answer=text,
            mode="llm",
            narrative=True,
            session_id=session_id,
            tools_used=uses,
            citations=_citations(uses),
            proposals=proposals,
            usage={
                **usage.as_dict(self.settings.llm_price_in_per_mtok, self.settings.llm_price_out_per_mtok),
                "seconds": round(time.monotonic() - started, 3),
            },
            notes=notes,
        )
        self.memory.append(
            session_id,
            question,
            answer.answer,
            {
                "mode": "llm",
                "user": user,
                "source": source,
                "tools": [{"tool": u.tool, "args": u.args, "ok": u.ok} for u in uses],
            },
            owner=owner,
        )
        return answer

    def _proposal_details(self, tool: str, result: Any) -> dict[str, Any]:
        """What the gate decided, so the audit trail of an agent's proposal needs no join with the orders."""
        if tool not in self._proposing_tools or not isinstance(result, dict):
            return {}
        order = result.get("order")
        order = order if isinstance(order, dict) else {}
        return {"status": result.get("status"), "order_id": order.get("id"), "reasons": result.get("reasons") or []}

    def _loop_failed(self, exc: BaseException, user: str, source: str, session_id: str) -> BaseException:
        """Audit what ran before the model endpoint failed (nothing is silently lost) and return the endpoint's own
        error, which the reply describes."""
        if isinstance(exc, LoopFailed):
            self._audit_tools(exc.partial, user, source, session_id)
            return exc.cause
        return exc

    def _audit_tools(self, result: LoopResult, user: str, source: str, session_id: str) -> None:
        executed = Counter(rec.name for rec in result.records)
        why: dict[str, deque[str]] = {}
        for tool, reason in result.refusals:
            why.setdefault(tool, deque()).append(reason)
        entries = []
        for attempt in result.attempted:
            known = attempt["tool"] in self._tool_names
            if attempt["valid"] and known and executed[attempt["tool"]] > 0:
                executed[attempt["tool"]] -= 1
                continue  # executed: recorded below with its outcome
            if not known:
                error = "unknown tool"
            elif attempt.get("error"):
                error = str(attempt["error"])
            elif why.get(attempt["tool"]):
                error = why[attempt["tool"]].popleft()
            else:
                error = f"not executed ({result.stopped_reason or 'the loop ended first'})"
            entries.append(
                AuditLog.entry(
                    "agent_tool_call",
                    user,
                    source=source,
                    outcome="refused",
                    tool=attempt["tool"],
                    args=attempt["args"],
                    session_id=session_id,
                    error=error,
                )
            )
        for rec in result.records:
            entries.append(
                AuditLog.entry(
                    "agent_tool_call",
                    user,
                    source=source,
                    outcome="ok" if rec.ok else "error",
                    tool=rec.name,
                    args=rec.args,
                    session_id=session_id,
                    error=None if rec.ok else str(rec.result)[:500],
                    **self._proposal_details(rec.name, rec.result),
                )
            )
        self.audit.record_many(entries)

    def ask(
        self,
        question: str,
        *,
        session_id: str | None = None,
        user: str = "anonymous",
        source: str = "api",
        deep: bool = False,
        owner: str | None = None,
    ) -> Answer:
        session_id = session_id or uuid.uuid4().hex
        owner = owner or source
        if not self.llm_enabled:
            return self._deterministic_answer(question, session_id, user, source, NARRATIVE_OFF, owner)
        if not self._budget_left():
            return self._deterministic_answer(
                question,
                session_id,
                user,
                source,
                "Daily LLM token budget is spent; deterministic analysis only until tomorrow (UTC).",
                owner,
            )
        started = time.monotonic()
        history = self.memory.history(session_id, owner)
        try:
            result = self._agent(deep).run(history, question, user=user)
        except Exception as failure:  # the model endpoint failed after its retries: degrade, do not 500
            exc = self._loop_failed(failure, user, source, session_id)
            log.warning("llm request failed: %s", exc)
            self.audit.record("agent_llm_error", user, source=source, outcome="error", error=str(exc)[:300])
            return self._deterministic_answer(
                question, session_id, user, source, f"{_failure_note(exc)}; deterministic analysis instead.", owner
            )
        if result.model_timed_out:
            return self._timed_out(question, result, session_id, user, source, owner)
        return self._finish(question, result, session_id, user, source, started, owner)

    def ask_stream(
        self,
        question: str,
        *,
        session_id: str | None = None,
        user: str = "anonymous",
        source: str = "api",
        deep: bool = False,
        owner: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        session_id = session_id or uuid.uuid4().hex
        owner = owner or source
        if not self.llm_enabled or not self._budget_left():
            answer = self.ask(question, session_id=session_id, user=user, source=source, deep=deep, owner=owner)
            yield {"type": "token", "text": answer.answer}
            yield {"type": "answer", "answer": answer.model_dump(mode="json")}
            return
        started = time.monotonic()
        history = self.memory.history(session_id, owner)
        try:
            for event in self._agent(deep).stream(history, question, user=user):
                if event["type"] == "result" and event["result"].model_timed_out:
                    answer = self._timed_out(question, event["result"], session_id, user, source, owner)
                    yield {"type": "token", "text": answer.answer}
                    yield {"type": "answer", "answer": answer.model_dump(mode="json")}
                elif event["type"] == "result":
                    answer = self._finish(question, event["result"], session_id, user, source, started, owner)
                    yield {"type": "answer", "answer": answer.model_dump(mode="json")}
                else:
                    yield event
        except Exception as failure:
            exc = self._loop_failed(failure, user, source, session_id)
            log.warning("llm stream failed: %s", exc)
            self.audit.record("agent_llm_error", user, source=source, outcome="error", error=str(exc)[:300])
            yield {"type": "error", "error": f"the language model did not answer ({type(exc).__name__})"}
