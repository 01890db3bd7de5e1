"""Agent overhead per turn: everything the desk does besides waiting for the model.

A turn is a real `Desk.ask` through `ChatOpenAI` against a scripted OpenAI-compatible server on loopback that answers
instantly (one tool call, then the answer), with the simulated exchange in-process. Model time is the HTTP exchange
with the model endpoint (request sent, answer read), timed at the client's transport and subtracted; what remains is
tool dispatch and validation (exchange time, the tool's call into the market source, is timed and subtracted too,
as the goal says; `overhead_incl_exchange_*` keeps it in), the LangGraph loop, building
and parsing the model request and reply on our side, memory load and store, usage ledger and audit writes to MongoDB
(embedded nx-27017). Prints one JSON line last.

`AGENT_BENCH_STORED_TURNS` (default 0) first stores that many turns of other conversations, as a desk that has been
in use holds: a query that scans the collection instead of using its index shows up there.

A callback around the chat-model call would also count the client-side work (message and tool-schema conversion,
the openai client's request transform, reply parsing) as model time, though it is the desk's own CPU.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall

TURNS = int(os.environ.get("AGENT_BENCH_TURNS", "150"))
STORED_TURNS = int(os.environ.get("AGENT_BENCH_STORED_TURNS", "0"))
WARMUP = 10


class ModelTimer(httpx.BaseTransport):
    """Wraps the model client's transport: the time from sending a request to having read its whole answer."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.total = 0.0
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self.inner.handle_request(request)
            response.read()  # the benchmark's calls are not streamed: the answer is part of the model's time
            return response
        finally:
            with self.lock:
                self.total += time.perf_counter() - started

    def close(self) -> None:
        self.inner.close()


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="agent-bench-")
    os.environ.update({"DATA_DIR": tmp, "SIMULATED_EXCHANGE": "true", "LLM_API_KEY": "sk-bench-0123456789",
                       "LLM_MAX_RETRIES": "0"})
    from agent.desk import Desk
    from agent.llm.chat_model import build_chat_model
    from core import storage
    from core.settings import get_settings, reset_settings

    reset_settings()
    step = Reply(tool_calls=[ToolCall("get_ticker", {"symbol": "BTC/USDT"})], reasoning="price", prompt_tokens=900)
    with FakeOpenAI() as fake:
        os.environ["LLM_BASE_URL"] = fake.base_url
        reset_settings()
        settings = get_settings()
        model = build_chat_model(settings)
        # The openai client's httpx client; instrumented in place so the model is configured as in production.
        http = model.root_client._client
        timer = ModelTimer(http._transport)
        http._transport = timer
        # Exchange time is excluded by the goal too: the tool's call into the market source (the simulated venue
        # builds its candles and book there) is timed on the cached source instance and subtracted.
        from trading.exchanges.factory import get_market_source

        source = get_market_source(settings)
        exchange_s = [0.0]
        fetch_ticker = source.fetch_ticker

        def timed_fetch_ticker(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return fetch_ticker(*args, **kwargs)  # type: ignore[arg-type]
            finally:
                exchange_s[0] += time.perf_counter() - started

        source.fetch_ticker = timed_fetch_ticker  # type: ignore[method-assign]
        desk = Desk(settings, storage.get_db(settings), model=model)
        if STORED_TURNS:
            from datetime import timedelta

            from core.clock import utcnow

            earlier = utcnow() - timedelta(days=30)
            meta = {"mode": "llm", "user": "bench", "source": "api",
                    "tools": [{"tool": "get_ticker", "args": {"symbol": "BTC/USDT"}, "ok": True}]}
            for start in range(0, STORED_TURNS, 1000):
                desk.memory.col.insert_many(
                    [{"session_id": f"old-{i % 2000}", "question": "How is BTC/USDT?", "answer": "BTC is fine.",
                      "created_at": earlier + timedelta(seconds=i), **meta}
                     for i in range(start, min(STORED_TURNS, start + 1000))]
                )
        overheads: list[float] = []
        with_exchange: list[float] = []
        totals: list[float] = []
        for i in range(WARMUP + TURNS):
            fake.script(step, Reply(content="BTC is fine.", reasoning="done"))
            timer.total = 0.0
            exchange_s[0] = 0.0
            started = time.perf_counter()
            answer = desk.ask("How is BTC/USDT?", session_id=f"bench-{i % 10}", user="bench")
            total = time.perf_counter() - started
            assert answer.mode == "llm" and answer.tools_used and answer.tools_used[0].ok, answer
            assert timer.total > 0, "the model's transport was not timed"
            assert exchange_s[0] > 0, "the exchange call was not timed"
            if i >= WARMUP:
                totals.append(total * 1000)
                with_exchange.append((total - timer.total) * 1000)
                overheads.append((total - timer.total - exchange_s[0]) * 1000)
        assert desk.close() == 0, "queued conversation or usage writes were lost"
        storage.close()
    overheads.sort()
    with_exchange.sort()
    p99 = overheads[min(len(overheads) - 1, int(0.99 * len(overheads)))]
    p99_ex = with_exchange[min(len(with_exchange) - 1, int(0.99 * len(with_exchange)))]
    result = {
        "benchmark": "agent",
        "turns": TURNS,
        "stored_turns": STORED_TURNS,
        "overhead_p50_ms": round(statistics.median(overheads), 3),
        "overhead_p99_ms": round(p99, 3),
        "overhead_incl_exchange_p50_ms": round(statistics.median(with_exchange), 3),
        "overhead_incl_exchange_p99_ms": round(p99_ex, 3),
        "turn_p50_ms_incl_model": round(statistics.median(totals), 3),
        "goal_p99_ms": 20.0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
