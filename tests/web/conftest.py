"""Fixtures for the web desk: the whole app served by uvicorn on a loopback port (lifespan on) against the fake
exchange, keys of each scope, and headless Chromium (Debian's `chromium`) driven by Playwright.

Without a chromium executable the browser tests skip, saying why; with CI=true that is a failure (.ci/run installs
the package). Playwright never downloads a browser here: it is pointed at the executable."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from core.settings import Settings
from tests.agent.conftest import fake_exchange, fake_llm, make_client, make_settings  # noqa: F401  (fixtures)
from tests.fakes.asgi_server import free_port
from tests.fakes.openai_server import FakeOpenAI

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    path = chromium_path()
    try:
        import playwright  # noqa: F401
    except ImportError:
        reason = "the `playwright` package is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    if path is None:
        reason = "no chromium executable (apt-get install chromium; or set CHROMIUM_PATH)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {reason}; .ci/run installs it")
        pytest.skip(reason)
    return path


@dataclass
class Served:
    url: str
    app: Any
    keys: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


class AppServer:
    """uvicorn in a thread with the app's lifespan (the desk, its database and services start and stop with it)."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture()
def web_clock() -> Iterator[int]:
    """One fixed start date (ticking with real time): these tests read no simulated prices, only the fake
    exchange's, so one date is enough and keeps the browser tests short."""
    from datetime import datetime

    from core.clock import ticking_from, use_clock
    from tests.conftest import FIXED_DATES

    start = int(datetime.fromisoformat(FIXED_DATES[-1]).timestamp() * 1000)
    with use_clock(ticking_from(start)):
        yield start


def _serve(settings: Settings) -> Iterator[Served]:
    from agent.app import create_app

    app = create_app(settings)
    with AppServer(app) as url:
        store = app.state.api_keys
        keys = {
            "read": store.create("viewer", "read")[0],
            "trade": store.create("trader", "read,trade")[0],
            "approve": store.create("approver", "read,approve")[0],
            "admin": store.create("boss", "admin")[0],
        }
        yield Served(url, app, keys)


@pytest.fixture()
def served(make_settings: Callable[..., Settings], web_clock: int) -> Iterator[Served]:  # noqa: F811
    """The app on a loopback port (four-eyes on, no LLM), with keys: read, trade (the proposer), approve, admin."""
    yield from _serve(make_settings(four_eyes="true"))


@pytest.fixture()
def served_llm(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, web_clock: int  # noqa: F811
) -> Iterator[Served]:
    """The app with its LLM pointed at the scripted OpenAI-compatible fake (script it before asking)."""
    yield from _serve(make_settings(llm=fake_llm))


@pytest.fixture()
def browser_page(tmp_path: Path) -> Iterator[Any]:
    """A Playwright page in headless Chromium that can reach loopback only (every other request is aborted and
    recorded in page.blocked)."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        blocked: list[str] = []

        def gate(route: Any) -> None:
            url = route.request.url
            if url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:")):
                route.continue_()
            else:
                blocked.append(url)
                route.abort("internetdisconnected")

        context.route("**/*", gate)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.blocked = blocked  # type: ignore[attr-defined]
        page.shots = tmp_path / "screenshots"  # type: ignore[attr-defined]
        page.shots.mkdir()
        yield page
        context.close()
        browser.close()
