"""Agent overhead per turn: everything the desk does besides waiting for the model.

A turn is a real `Desk.ask` through `ChatOpenAI` against a scripted OpenAI-compatible server on loopback that answers
instantly (one tool call, then the answer), with the simulated exchange in-process. Model time is measured by a
callback around each chat-model call and subtracted; what remains is tool dispatch and validation (the tool call
itself included, so this is an upper bound), the LangGraph loop, memory load and store, usage ledger and audit
writes to MongoDB (embedded nx-27017). Prints one JSON line last.
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
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from langchain_core.callbacks import BaseCallbackHandler

from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall

TURNS = int(os.environ.get("AGENT_BENCH_TURNS", "150"))
WARMUP = 10


class ModelTimer(BaseCallbackHandler):
    def __init__(self) -> None:
        self.started: dict[UUID, float] = {}
        self.total = 0.0
        self.lock = threading.Lock()

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.started[run_id] = time.perf_counter()

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with self.lock:
            self.total += time.perf_counter() - self.started.pop(run_id, time.perf_counter())

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.on_llm_end(None, run_id=run_id)


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
        timer = ModelTimer()
        model = build_chat_model(settings)
        model.callbacks = [timer]
        desk = Desk(settings, storage.get_db(settings), model=model)
        overheads: list[float] = []
        totals: list[float] = []
        for i in range(WARMUP + TURNS):
            fake.script(step, Reply(content="BTC is fine.", reasoning="done"))
            timer.total = 0.0
            started = time.perf_counter()
            answer = desk.ask("How is BTC/USDT?", session_id=f"bench-{i % 10}", user="bench")
            total = time.perf_counter() - started
            assert answer.mode == "llm" and answer.tools_used and answer.tools_used[0].ok, answer
            if i >= WARMUP:
                totals.append(total * 1000)
                overheads.append((total - timer.total) * 1000)
        storage.close()
    overheads.sort()
    p99 = overheads[min(len(overheads) - 1, int(0.99 * len(overheads)))]
    result = {
        "benchmark": "agent",
        "turns": TURNS,
        "overhead_p50_ms": round(statistics.median(overheads), 3),
        "overhead_p99_ms": round(p99, 3),
        "turn_p50_ms_incl_model": round(statistics.median(totals), 3),
        "goal_p99_ms": 20.0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
