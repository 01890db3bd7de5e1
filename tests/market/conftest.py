"""Market-data fixtures: the fake Binance server and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.binance_server import FakeBinance


@pytest.fixture()
def fake_binance() -> Iterator[FakeBinance]:
    with FakeBinance() as fake:
        yield fake


@pytest.fixture()
def market_env(fake_binance: FakeBinance, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBinance]:
    """Settings and the cached market sources point at the fake."""
    from core.settings import reset_settings
    from trading.exchanges import reset_market_sources

    monkeypatch.setenv("EXCHANGE_ID", "binance")
    monkeypatch.setenv("EXCHANGE_API_URL", fake_binance.url)
    monkeypatch.setenv("EXCHANGE_TIMEOUT_MS", "2000")
    monkeypatch.delenv("SIMULATED_EXCHANGE", raising=False)
    reset_settings()
    reset_market_sources()
    yield fake_binance
    reset_market_sources()
    reset_settings()


def _redis_alive(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        ok = bool(client.ping())
        client.close()
        return ok
    except Exception:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL, else 127.0.0.1:6379, else a redis-server from PATH on a free port; skip only if none (CI fails)."""
    import os
    import shutil
    import socket
    import subprocess
    import time

    for url in (os.environ.get("REDIS_URL"), "redis://127.0.0.1:6379/0"):
        if url and _redis_alive(url):
            yield url
            return
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but no Redis: set REDIS_URL or install redis-server")
        pytest.skip("no Redis at REDIS_URL or 127.0.0.1:6379 and no redis-server on PATH")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _redis_alive(url):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"redis-server on port {port} did not start")
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(5)
