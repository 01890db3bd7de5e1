"""What every Slack handler shares: settings, the desk, the Web API client, Mongo stores, the trading service.

Handlers acknowledge first and then run their work as background tasks owned by the runtime (so shutdown can
cancel them). Blocking work (desk, tools, pymongo-heavy calls) runs on a small dedicated thread pool, so a burst
of slow requests never delays the acknowledgements of new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from pymongo.database import Database
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.audit import AuditLog
from core.settings import Settings

if TYPE_CHECKING:
    from agent.desk import Desk
    from agent.scheduler.service import DeskScheduler
    from trading.oms.service import TradingService

log = logging.getLogger(__name__)
T = TypeVar("T")
Doc = dict[str, Any]
TradingProvider = Callable[[], "TradingService | None"]


def _no_trading() -> TradingService | None:
    return None


@dataclass
class SlackRuntime:
    settings: Settings
    desk: Desk
    client: AsyncWebClient
    trading_provider: TradingProvider = _no_trading
    scheduler: DeskScheduler | None = None
    workers: int = 4
    trading_error: str = ""
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _audit: AuditLog | None = field(default=None, init=False, repr=False)

    @property
    def db(self) -> Database[Doc]:
        return self.desk.db

    @property
    def audit(self) -> AuditLog:
        if self._audit is None:
            self._audit = AuditLog(self.db)
        return self._audit

    async def trading(self) -> TradingService | None:
        """The trading service, or None (with `trading_error` saying why) when it cannot be had."""
        try:
            svc = await self.run_blocking(self.trading_provider)
        except Exception as exc:  # a provider that fails means "not available", never a crash in a handler
            log.exception("trading service unavailable")
            self.trading_error = f"{type(exc).__name__}: {exc}"
            return None
        if svc is None:
            self.trading_error = "no trading service is wired into this deployment"
        return svc

    async def on_trading_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await a trading-service coroutine on the loop where its venues live (trading.oms.factory.arun)."""
        from trading.oms.factory import arun

        return await arun(coro)

    # ------------------------------------------------------------------ background work
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "slack-work") -> asyncio.Task[Any]:
        task = asyncio.create_task(self._guard(coro, name), name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    @staticmethod
    async def _guard(coro: Awaitable[Any], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:  # every handler reports its own failures; this is the last net
            log.exception("slack background task %s failed", name)

    async def run_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="slack-work")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    async def tool(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """Call a desk tool by name: {'ok': True, 'result': ...} or {'ok': False, 'error': ...} (never raises)."""
        try:
            return await self.run_blocking(self.desk.call_tool, name, args)
        except Exception as exc:  # a tool that crashes is reported as data, like a ToolError
            log.exception("tool %s crashed", name)
            return {"ok": False, "error": f"{name} failed: {type(exc).__name__}: {exc}"}

    async def tool_within(self, name: str, args: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(self.tool(name, args), timeout_s)
        except TimeoutError:
            return {"ok": False, "error": f"{name} took longer than {timeout_s:.0f} s"}

    async def book(self, tool: str, method: str) -> Doc | str:
        """A book view (`get_portfolio`/`get_risk_status`) from the tool, else from the trading service's read side
        (`positions`/`risk_status`); a readable reason when neither is available."""
        out = await self.tool(tool, {})
        if out.get("ok") and isinstance(out.get("result"), dict):
            return dict(out["result"])
        svc = await self.trading()
        if svc is not None:
            return dict(await self.run_blocking(getattr(svc, method)))
        error = str(out.get("error"))
        if "not available in this installation" in error:
            return f"{tool} is not installed on this desk yet and no trading service is wired."
        return f"{tool} failed: {error}"

    async def shutdown(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # ------------------------------------------------------------------ Slack helpers
    async def ephemeral(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
        except SlackApiError as exc:  # e.g. the bot is not in the channel: fall back to a DM
            log.info("postEphemeral failed (%s); sending a DM instead", exc.response.get("error"))
            with contextlib.suppress(SlackApiError):
                await self.client.chat_postMessage(channel=user, text=text)


class Progress:
    """A message posted at once ("working on it…") and then edited in place with the result."""

    def __init__(self, runtime: SlackRuntime, channel: str, ts: str | None, respond: Any = None) -> None:
        self.runtime = runtime
        self.channel = channel
        self.ts = ts
        self._respond = respond

    @classmethod
    async def start(
        cls,
        runtime: SlackRuntime,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        respond: Any = None,
    ) -> Progress:
        try:
            resp = await runtime.client.chat_postMessage(channel=channel, text=text, thread_ts=thread_ts)
            return cls(runtime, str(resp.get("channel") or channel), str(resp["ts"]), respond)
        except SlackApiError as exc:  # bot not in the channel: answer through the command's response_url
            log.info("progress message failed (%s); using response_url", exc.response.get("error"))
            if respond is not None:
                await respond(text=text, response_type="ephemeral")
            return cls(runtime, channel, None, respond)

    async def update(self, text: str, blocks: list[Doc] | None = None) -> None:
        if self.ts is not None:
            kwargs: Doc = {"channel": self.channel, "ts": self.ts, "text": text}
            if blocks is not None:
                kwargs["blocks"] = blocks
            await self.runtime.client.chat_update(**kwargs)
        elif self._respond is not None:
            await self._respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=True)
