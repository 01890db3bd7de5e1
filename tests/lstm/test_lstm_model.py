"""Training, inference paths, determinism, save/load round trip and the walk-forward evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.lstm.config import LSTMConfig
from models.lstm.data import prepare
from models.lstm.engine import LSTMEngine
from models.lstm.evaluate import fold_cutoffs, walk_forward
from models.lstm.model import build_model
from models.lstm.train import fit
from tests.lstm.conftest import synthetic_candles, tiny_config

pytestmark = pytest.mark.slow


def test_default_network_is_four_lstm_layers_of_fifty_with_dropout() -> None:
    model = build_model(LSTMConfig(horizon=5), n_features=1)
    lstms = [layer for layer in model.layers if layer.__class__.__name__ == "LSTM"]
    drops = [layer for layer in model.layers if layer.__class__.__name__ == "Dropout"]
    assert [layer.units for layer in lstms] == [50] * 4
    assert [layer.rate for layer in drops] == [0.2] * 4
    assert tuple(model.output_shape) == (None, 5, 3)  # point + two quantiles per step
    assert model.input_shape == (None, 60, 1)


def test_save_load_round_trip_gives_identical_forecasts(tmp_path: Path) -> None:
    cfg = tiny_config(features=("volume", "range"), jit_compile=True)  # the production (XLA) inference path
    prep = prepare(synthetic_candles(700), cfg)
    engine, info = fit(prep, cfg, 0, 600)
    assert info.epochs_run >= 1 and info.n_train > 0
    origins = prep.origins_with_targets(600, 700)
    before = engine.predict_origins(prep, origins)
    engine.save(tmp_path / "m")
    loaded = LSTMEngine.load(tmp_path / "m")
    after = loaded.predict_origins(prep, origins)
    np.testing.assert_allclose(after.mu, before.mu, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(after.lo, before.lo, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(after.hi, before.hi, rtol=1e-5, atol=1e-7)
    assert loaded.config == cfg
    assert loaded.calibration == engine.calibration
    assert loaded.feature_names == ["ret", "range", "volume"]
    # the single-window fast path agrees with the batched path
    one = loaded.predict_window(loaded.windows(prep, origins[-1:])[0], prep.var_components[origins[-1]])
    np.testing.assert_allclose(one.mu[0], after.mu[-1], rtol=1e-4, atol=1e-6)
    with pytest.raises(FileNotFoundError):
        LSTMEngine.load(tmp_path / "missing")


def test_same_seed_same_model_and_mc_dropout_samples_vary() -> None:
    cfg = tiny_config(uncertainty="mc_dropout", mc_samples=8, dropout=0.3, epochs=1)
    prep = prepare(synthetic_candles(500), cfg)
    a, _ = fit(prep, cfg, 0, 450)
    b, _ = fit(prep, cfg, 0, 450)
    x = a.windows(prep, prep.origins_with_targets(450, 480))
    np.testing.assert_allclose(a.predictor.point(x), b.predictor.point(x), rtol=1e-5, atol=1e-6)
    samples = a.predictor.mc_samples(x[:2])
    assert samples.shape == (2, 8, cfg.horizon)
    assert samples[0].std(axis=0).min() > 0  # dropout is on: samples differ
    np.testing.assert_array_equal(a.predictor.point(x[:2]), a.predictor.point(x[:2]))  # no dropout at inference


def test_walk_forward_beats_random_walk_on_predictable_returns() -> None:
    # AR(1) returns with phi=0.6 are predictable one step ahead: an honest evaluation must find the skill
    cfg = tiny_config(horizon=2, epochs=8, patience=3, folds=2, test_size=150, learning_rate=0.01)
    prep = prepare(synthetic_candles(1_000, phi=0.6, seed=21), cfg)
    report = walk_forward(prep, cfg)
    s1 = report.step(1)
    assert s1.n == 300
    assert s1.rmse_ratio_rw < 0.95 and s1.beats_random_walk
    assert s1.dir_acc is not None and s1.dir_acc > 0.6
    assert len(report.folds) == 2 and report.folds[0]["cutoff_ms"] < report.folds[1]["cutoff_ms"]
    summary = report.summary(1)
    assert summary["beats_random_walk"] is True and 0 <= summary["coverage"] <= 1


def test_walk_forward_does_not_invent_skill_on_a_random_walk() -> None:
    cfg = tiny_config(horizon=2, folds=2, test_size=150, epochs=2)
    prep = prepare(synthetic_candles(800, seed=22), cfg)
    report = walk_forward(prep, cfg)
    s = report.step(1)
    assert s.rmse_ratio_rw > 0.97
    assert not s.beats_random_walk
    # the origins of consecutive folds do not overlap and tests follow training
    cuts = fold_cutoffs(prep, cfg)
    assert cuts[0][2] == cuts[1][1]
