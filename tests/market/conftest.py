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
