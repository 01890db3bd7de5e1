"""The conformal layer: calibrated through a volatility regime change (where a plain quantile band fails), the
adaptive update after each closed candle (persisted across a restart), the interval baselines, and status names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pymongo.database import Database

from models.lstm.adaptive import AdaptiveConformal, run_sequence
from models.lstm.baselines import empirical_bands, garch_bands, matched_width
from models.lstm.data import build_targets, prepare, trailing_vol
from models.lstm.intervals import Calibration, apply_offsets, calibrate, coverage, nonconformity
from models.lstm.status import (
    BEATS_RW_CALIBRATED,
    BEATS_RW_MISCALIBRATED,
    NO_SKILL_CALIBRATED,
    NO_SKILL_MISCALIBRATED,
    UNEVALUATED,
    status_for,
)
from models.lstm.volatility import interval_scale, variance_components
from tests.lstm.conftest import HOUR_MS, tiny_config

Z80 = 1.2816  # the normal's 90% quantile: an 80% central band is +-Z80 sigma


def regime_returns(n_calm: int, n_wild: int, calm: float, wild: float, seed: int) -> np.ndarray:
    """Log returns whose volatility jumps from `calm` to `wild` (a regime change), with row 0 missing."""
    rng = np.random.default_rng(seed)
    sig = np.r_[np.full(n_calm, calm), np.full(n_wild, wild)]
    ret = sig * rng.standard_normal(n_calm + n_wild)
    ret[0] = np.nan
    return ret


def regime_candles(n_calm: int, n_wild: int, seed: int) -> pd.DataFrame:
    ret = regime_returns(n_calm, n_wild, 0.004, 0.016, seed)
    close = 100.0 * np.exp(np.nancumsum(ret))
    n = close.size
    return pd.DataFrame(
        {
            "timestamp_ms": np.arange(n, dtype=np.int64) * HOUR_MS,
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": np.full(n, 10.0),
        }
    )


def test_calibrated_band_holds_through_a_volatility_regime_change_where_a_quantile_band_misses() -> None:
    horizon, n_calm, n_wild = 4, 3_000, 3_000
    ret = regime_returns(n_calm, n_wild, 0.004, 0.016, seed=3)
    close = 100.0 * np.exp(np.nancumsum(ret))
    targets = build_targets(close, horizon)
    comps = variance_components(ret, trailing_vol(ret, 60))
    # the calm regime's exact 80% quantile band: what a quantile head fitted there would learn
    steps = np.sqrt(np.arange(1, horizon + 1))[None, :]
    cal_o = np.arange(100, n_calm - 2 * horizon)
    test_o = np.arange(n_calm + 200, n_calm + n_wild - horizon)

    def head(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        half = Z80 * 0.004 * steps * np.ones((n, 1))
        return np.zeros((n, horizon)), -half, half

    mu_c, lo_c, hi_c = head(cal_o.size)
    mu_t, lo_t, hi_t = head(test_o.size)
    y_t = targets[test_o]
    plain = [coverage(y_t[:, h], lo_t[:, h], hi_t[:, h]) for h in range(horizon)]
    assert max(plain) < 0.4  # the plain quantile band misses the wild regime badly

    cal = calibrate(mu_c, lo_c, hi_c, targets[cal_o], comps[cal_o], 0.8)
    calm_lo, calm_hi = apply_offsets(
        mu_c, lo_c, hi_c, interval_scale(comps[cal_o], cal.scale_weights(horizon)), np.asarray(cal.offsets)
    )
    for h in range(horizon):
        assert abs(coverage(targets[cal_o][:, h], calm_lo[:, h], calm_hi[:, h]) - 0.8) < 0.03
    scale = interval_scale(comps[test_o], cal.scale_weights(horizon))
    state = AdaptiveConformal.start(cal, horizon, gamma=0.01)
    offsets = run_sequence(state, nonconformity(lo_t, hi_t, y_t, scale))
    lo, hi = apply_offsets(mu_t, lo_t, hi_t, scale, offsets)
    for h in range(horizon):
        cov = coverage(y_t[:, h], lo[:, h], hi[:, h])
        assert abs(cov - 0.8) <= 0.03, f"h={h + 1}: calibrated coverage {cov:.3f}"
    # the band followed the volatility: four times wider in the wild regime than in the calm one
    calm_width = float(np.mean(calm_hi[:, 0] - calm_lo[:, 0]))
    assert float(np.mean(hi[:, 0] - lo[:, 0])) == pytest.approx(4 * calm_width, rel=0.2)


def _calibration(horizon: int, scores: list[float]) -> Calibration:
    return Calibration(
        level=0.8,
        offsets=[float(np.quantile(scores, 0.8))] * horizon,
        raw_coverage=[0.0] * horizon,
        n=len(scores),
        conformal=True,
        weights=[[0.5, 0.5, 0.0]] * horizon,
        scores=[list(scores)] * horizon,
    )


def test_adaptive_state_learns_each_outcome_with_the_offset_issued_for_it() -> None:
    cal = _calibration(2, [float(x) for x in np.linspace(-1.0, 1.0, 101)])
    state = AdaptiveConformal.start(cal, 2, gamma=0.1)
    q0 = state.issue(1_000)
    assert q0[0] == pytest.approx(0.62, abs=0.03)  # the 80% conformal quantile of the seed scores
    state.issue(2_000)
    # a miss at step 1 widens the next band; at step 2 the move is gamma / 2 (two outcomes are in flight)
    assert state.observe(1_000, 1, 5.0) is False
    assert state.alpha[0] == pytest.approx(0.2 - 0.1 * 0.8)
    assert state.offsets()[0] > q0[0]
    assert state.observe(1_000, 2, -5.0) is True
    assert state.alpha[1] == pytest.approx(0.2 + 0.05 * 0.2)
    assert 1_000 not in state.issued and 2_000 in state.issued  # all of origin 1000's outcomes are in
    assert state.seen == [1, 1] and state.recent_coverage(1) == 0.0 and state.recent_coverage(2) == 1.0
    again = AdaptiveConformal.from_dict(state.to_dict())
    assert again.to_dict() == state.to_dict()


@pytest.mark.slow
def test_service_state_updates_after_each_closed_candle_and_survives_a_restart(
    mongo_db: Database[dict[str, Any]], tmp_path: Path
) -> None:
    from models.lstm.online import IntervalStateStore, advance, updated_state
    from models.lstm.registry import ModelRegistry
    from models.lstm.service import load_engine, make_forecast, train_and_register

    candles = regime_candles(700, 500, seed=5)
    cfg = tiny_config(epochs=1, folds=1, test_size=100)
    reg = ModelRegistry(mongo_db, tmp_path)
    train_and_register(candles.iloc[:700], symbol="BTC/USDT", timeframe="1h", registry=reg, config=cfg)
    record, engine = load_engine(reg, "BTC/USDT", "1h")
    store = IntervalStateStore(mongo_db)

    # the first call learns every candle closed since training ended (issued at those candles as origins)
    state, learnt = updated_state(store, engine, record, candles.iloc[:760])
    h = cfg.horizon
    assert state.last_key == int(candles["timestamp_ms"].iloc[759])
    assert learnt == sum(min(k, h) for k in range(60)) and state.seen[0] == 59 and state.seen[h - 1] == 60 - h
    # then one closed candle at a time: each learns one outcome per step and issues one new origin
    for end in range(761, 771):
        before = list(state.seen)
        state, learnt = updated_state(store, engine, record, candles.iloc[:end])
        assert learnt == h and [b + 1 for b in before] == state.seen
        assert int(candles["timestamp_ms"].iloc[end - 1]) in state.issued
    # nothing new: nothing learnt, nothing written
    same, learnt = updated_state(store, engine, record, candles.iloc[:770])
    assert learnt == 0 and same.to_dict() == state.to_dict()

    # a restart: the stored state continues exactly as the in-memory one would
    loaded = store.load(record.model_id)
    assert loaded is not None and loaded[0].to_dict() == state.to_dict()
    in_memory = AdaptiveConformal.from_dict(state.to_dict())
    advance(in_memory, engine, candles.iloc[:900])
    restarted, _ = updated_state(IntervalStateStore(mongo_db), engine, record, candles.iloc[:900])
    assert restarted.to_dict() == in_memory.to_dict()
    # the volatility quadrupled after training: the online state has learnt to widen (alpha below nominal)
    assert restarted.alpha[0] < 0.2

    fc = make_forecast(engine, record, candles.iloc[:900], interval_state=restarted)
    assert fc["interval_calibration"]["online"] is True
    assert fc["interval_calibration"]["outcomes_learnt_h1"] == restarted.seen[0]
    assert fc["status"].startswith("no_skill") and fc["status_meaning"]
    offline = make_forecast(engine, record, candles.iloc[:900])
    assert offline["interval_calibration"] == {"online": False}
    width_online = fc["path"][0]["upper"] - fc["path"][0]["lower"]
    width_offline = offline["path"][0]["upper"] - offline["path"][0]["lower"]
    assert width_online > width_offline  # the learnt misses widened the band beyond the split calibration's

    # the scheduled job (hourly, after each close) does the same for every symbol, and says which have no model
    from models.lstm.jobs import update_intervals_job

    results = update_intervals_job(
        ["BTC/USDT", "ETH/USDT"], db=mongo_db, root=tmp_path, candle_loader=lambda s, t: candles.iloc[:950]
    )
    assert results[0]["ok"] and results[0]["learnt"] == 50 * h
    assert results[0]["updated_through_ms"] == int(candles["timestamp_ms"].iloc[949])
    assert not results[1]["ok"] and "no trained model" in results[1]["error"]


def test_baselines_cover_a_garch_process_and_match_widths() -> None:
    rng = np.random.default_rng(9)
    n, horizon = 3_000, 3
    ret = np.empty(n)
    var = 1e-4
    for t in range(n):  # a true GARCH(1,1): omega .02e-4, alpha .2, beta .78
        ret[t] = np.sqrt(var) * rng.standard_normal()
        var = 0.02e-4 + 0.2 * ret[t] ** 2 + 0.78 * var
    ret[0] = np.nan
    close = 100.0 * np.exp(np.nancumsum(ret))
    targets = build_targets(close, horizon)
    origins = np.arange(2_000, n - horizon, dtype=np.int64)
    g, params = garch_bands(ret, 0, 2_000, origins, horizon, 0.8)
    assert params["beta[1]"] == pytest.approx(0.78, abs=0.1)
    e = empirical_bands(targets, origins, horizon, 0.8)
    y = targets[origins]
    for h in range(horizon):
        assert coverage(y[:, h], g.lo[:, h], g.hi[:, h]) == pytest.approx(0.8, abs=0.04)
        assert coverage(y[:, h], e.lo[:, h], e.hi[:, h]) == pytest.approx(0.8, abs=0.1)  # blind to clustering
        # rescaled to cover exactly 70%, a band is narrower than itself at ~80%
        assert matched_width(y[:, h], g.lo[:, h], g.hi[:, h], 0.7) < float(np.mean(g.hi[:, h] - g.lo[:, h]))
    # GARCH's band follows the conditional variance; the empirical quantiles' only drift with the month
    assert float(np.std(g.hi[:, 0] - g.lo[:, 0])) > 3 * float(np.std(e.hi[:, 0] - e.lo[:, 0]))


def test_status_names_follow_the_evaluation() -> None:
    base = {"h": 24, "coverage": 0.80, "interval": 0.8, "beats_random_walk": False}
    assert status_for(None) == UNEVALUATED
    assert status_for(base, {**base, "h": 1}) == NO_SKILL_CALIBRATED
    assert status_for({**base, "beats_random_walk": True}, base) == BEATS_RW_CALIBRATED
    assert status_for({**base, "coverage": 0.857}, base) == NO_SKILL_MISCALIBRATED  # the issue's ETH 24 h figure
    assert status_for(base, {**base, "coverage": 0.836}) == NO_SKILL_MISCALIBRATED  # ... and its 1 h one
    assert status_for({**base, "beats_random_walk": True, "coverage": None}) == BEATS_RW_MISCALIBRATED
    assert "good" not in (status_for(base), status_for({**base, "beats_random_walk": True}))


@pytest.mark.slow
def test_registry_serves_evaluated_statuses_and_never_rejected(
    mongo_db: Database[dict[str, Any]], tmp_path: Path
) -> None:
    from models.lstm.registry import ModelRegistry
    from models.lstm.train import fit

    cfg = tiny_config(epochs=1)
    eng, _ = fit(prepare(regime_candles(400, 0, seed=1), cfg), cfg, 0, 400)
    reg = ModelRegistry(mongo_db, tmp_path)
    meta: dict[str, Any] = {"data_range": {"from_ms": 0, "to_ms": 1}}
    legacy = reg.register(eng, symbol="X/USDT", timeframe="1h", metadata=meta, status="good")
    latest = reg.latest("X/USDT", "1h")
    assert latest is not None and latest.model_id == legacy.model_id  # written before the names: still served
    new = reg.register(eng, symbol="X/USDT", timeframe="1h", metadata=meta, status=NO_SKILL_CALIBRATED)
    reg.register(eng, symbol="X/USDT", timeframe="1h", metadata=meta, status="rejected")
    latest = reg.latest("X/USDT", "1h")
    assert latest is not None and latest.model_id == new.model_id and latest.status == NO_SKILL_CALIBRATED
    assert reg.latest("X/USDT", "1h", status="rejected") is not None


def test_a_calibration_saved_before_the_volatility_mix_keeps_its_trailing_scale() -> None:
    old = {"level": 0.8, "offsets": [1.0, 2.0], "raw_coverage": [0.5, 0.5], "n": 10, "conformal": True}
    cal = Calibration.from_dict(old)
    comps = np.array([[4e-4, 9e-4, 1e-4]])  # fast, slow, trailing-window variance
    np.testing.assert_allclose(interval_scale(comps, cal.scale_weights(2)), [[0.01, 0.01 * np.sqrt(2)]])
    state = AdaptiveConformal.start(cal, 2)  # no stored scores: each step starts from its split offset
    assert state.offsets() == [1.0, 2.0]
