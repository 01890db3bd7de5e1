"""Event study: abnormal returns after events against candles, with a known injected move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from knowledge.impact import Candles, EventObs, abnormal_returns, event_study
from knowledge.signals import priors_from_study

START = datetime(2025, 1, 1, tzinfo=UTC)
H = 3_600_000


def _market(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = np.array([int(START.timestamp() * 1000) + i * H for i in range(n)], dtype=np.int64)
    mret = rng.normal(0, 0.004, n)
    return ts, mret


def test_abnormal_return_recovers_an_injected_jump() -> None:
    n = 24 * 30
    ts, mret = _market(n)
    beta = 1.5
    coin_ret = beta * mret + np.random.default_rng(2).normal(0, 0.0005, n)
    event_idx = 24 * 20
    coin_ret[event_idx + 1 : event_idx + 5] -= 0.01  # -4% over the 4 hours after the event candle opens
    market = Candles(ts, 100 * np.exp(np.cumsum(mret)))
    coin = Candles(ts, 10 * np.exp(np.cumsum(coin_ret)))
    ev = EventObs(datetime.fromtimestamp(ts[event_idx] / 1000, UTC) - timedelta(minutes=20), "hack", ("SOL",))
    ar = abnormal_returns(ev, "SOL", coin, market)
    assert ar["1h"] == pytest.approx(-0.01, abs=0.003)
    assert ar["4h"] == pytest.approx(-0.04, abs=0.004)
    assert ar["24h"] == pytest.approx(-0.04, abs=0.008)


def test_event_study_aggregates_by_type_and_horizon() -> None:
    n = 24 * 40
    ts, mret = _market(n, seed=3)
    rng = np.random.default_rng(4)
    coin_ret = mret + rng.normal(0, 0.0005, n)
    events = []
    for k in range(6):
        i = 24 * 10 + k * 100
        coin_ret[i + 1] += 0.02
        events.append(EventObs(datetime.fromtimestamp(ts[i] / 1000, UTC), "listing", ("APT",)))
    events.append(EventObs(datetime.fromtimestamp(ts[-2] / 1000, UTC), "listing", ("APT",)))  # no 4h/24h after
    events.append(EventObs(datetime.fromtimestamp(ts[300] / 1000, UTC), "macro", ("BTC",)))
    events.append(EventObs(datetime.fromtimestamp(ts[300] / 1000, UTC), "hack", ("NOCANDLES",)))
    candles = {"BTC": Candles(ts, 100 * np.exp(np.cumsum(mret))), "APT": Candles(ts, np.exp(np.cumsum(coin_ret)))}
    study = event_study(events, candles, market_symbol="BTC")
    assert set(study) == {"listing", "macro"}
    lst = study["listing"]
    assert lst["1h"]["n"] == 7 and lst["4h"]["n"] == 6 and lst["24h"]["n"] == 6
    assert lst["4h"]["mean_car"] == pytest.approx(0.02, abs=0.004)
    assert lst["4h"]["share_positive"] == 1.0 and lst["4h"]["t_stat"] > 5
    assert study["macro"]["1h"]["n"] == 1  # BTC against itself: mean-adjusted model
    priors = priors_from_study(study, horizon="4h")
    assert priors["listing"] == pytest.approx(0.4, abs=0.1)


def test_candles_from_ccxt_rows() -> None:
    c = Candles.from_rows([[0, 1, 2, 0.5, 1.5, 10], [H, 1.5, 2, 1, 1.8, 5]])
    assert c.step_ms == H and list(c.close) == [1.5, 1.8]
