"""Prediction intervals: conformal calibration and coverage on held-out data with known noise; the DM test."""

from __future__ import annotations

import numpy as np
import pytest

from models.lstm.data import prepare
from models.lstm.evaluate import dm_test
from models.lstm.intervals import apply_calibration, calibrate, conformal_quantile, coverage
from models.lstm.train import fit
from tests.lstm.conftest import synthetic_candles, tiny_config


def test_conformal_quantile_is_the_finite_sample_rank() -> None:
    scores = np.arange(1.0, 11.0)  # 10 scores
    assert conformal_quantile(scores, 0.8) == 9.0  # ceil(11 * 0.8) = 9th smallest
    assert conformal_quantile(scores, 0.95) == 10.0
    assert conformal_quantile(np.array([np.nan]), 0.8) == 0.0


def test_calibration_reaches_nominal_coverage_under_changing_volatility() -> None:
    rng = np.random.default_rng(0)
    horizon = 3

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        vol = np.exp(rng.normal(np.log(0.01), 0.5, n))  # volatility known at the origin
        y = vol[:, None] * np.sqrt(np.arange(1, horizon + 1))[None, :] * rng.standard_normal((n, horizon))
        return vol, y

    vol_c, y_c = draw(5_000)
    zero = np.zeros_like(y_c)
    cal = calibrate(zero, zero, zero, y_c, np.column_stack([vol_c**2] * 3), 0.8)
    assert cal.raw_coverage[0] == 0.0  # a zero-width raw band covers nothing
    assert cal.offsets[0] == pytest.approx(1.2816, abs=0.06)  # the normal's 90% quantile
    vol_t, y_t = draw(20_000)
    zt = np.zeros_like(y_t)
    lo, hi = apply_calibration(zt, zt, zt, np.column_stack([vol_t**2] * 3), cal)
    for h in range(horizon):
        assert coverage(y_t[:, h], lo[:, h], hi[:, h]) == pytest.approx(0.8, abs=0.02)


@pytest.mark.slow
def test_trained_model_interval_covers_known_noise_on_held_out_data() -> None:
    sigma = 0.01
    cfg = tiny_config(epochs=4, horizon=3)
    prep = prepare(synthetic_candles(3_000, sigma=sigma, seed=11), cfg)
    engine, _ = fit(prep, cfg, 0, 1_500)
    held_out = prep.origins_with_targets(1_500, 3_000)
    bands = engine.predict_origins(prep, held_out)
    y = prep.targets[held_out]
    for h in range(cfg.horizon):
        cov = coverage(y[:, h], bands.lo[:, h], bands.hi[:, h])
        assert abs(cov - 0.8) <= 0.05, f"h={h + 1}: coverage {cov:.3f}"
        # the width matches the known noise: 80% of N(0, sigma^2 h) spans 2 * 1.2816 * sigma * sqrt(h)
        width = float(np.median(bands.hi[:, h] - bands.lo[:, h]))
        assert width == pytest.approx(2 * 1.2816 * sigma * np.sqrt(h + 1), rel=0.25)


@pytest.mark.slow
def test_mc_dropout_raw_band_undercovers_and_conformal_fixes_it() -> None:
    cfg = tiny_config(uncertainty="mc_dropout", mc_samples=20, dropout=0.2, epochs=2, horizon=2)
    prep = prepare(synthetic_candles(2_000, seed=12), cfg)
    engine, _ = fit(prep, cfg, 0, 1_200)
    assert engine.calibration.raw_coverage[0] < 0.5  # model uncertainty alone is far too narrow for returns
    held_out = prep.origins_with_targets(1_200, 2_000)
    bands = engine.predict_origins(prep, held_out)
    cov = coverage(prep.targets[held_out][:, 0], bands.lo[:, 0], bands.hi[:, 0])
    assert abs(cov - 0.8) <= 0.06


def test_dm_test_detects_better_forecasts_and_not_equal_ones() -> None:
    rng = np.random.default_rng(5)
    y = rng.standard_normal(2_000)
    better = 0.5 * rng.standard_normal(2_000)
    stat, p = dm_test(better, y, lag=0)
    assert stat < 0 and p < 1e-6
    stat2, p2 = dm_test(y, better, lag=0)
    assert stat2 > 0 and p2 < 1e-6
    same_a, same_b = rng.standard_normal(2_000), rng.standard_normal(2_000)
    _, p3 = dm_test(same_a, same_b, lag=3)
    assert p3 > 0.01
