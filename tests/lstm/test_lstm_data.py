"""Data preparation: no look-ahead, correct targets, training-only scalers, purged splits, config validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.lstm.config import LSTMConfig
from models.lstm.data import (
    DataError,
    build_features,
    build_targets,
    candles_from_rows,
    data_hash,
    fit_scaler,
    make_windows,
    prepare,
    split_train_val,
)
from tests.lstm.conftest import synthetic_candles, tiny_config


def _shuffle_future(frame: pd.DataFrame, t: int, seed: int = 1) -> pd.DataFrame:
    """Rows after t get their price/volume values permuted (timestamps stay in order)."""
    out = frame.copy()
    rng = np.random.default_rng(seed)
    idx = np.arange(t + 1, len(frame))
    perm = rng.permutation(idx)
    for col in ("open", "high", "low", "close", "volume"):
        out.loc[idx, col] = frame.loc[perm, col].to_numpy()
    return out


@pytest.mark.parametrize("t", [100, 400, 700])
def test_shuffled_future_cannot_change_past_features(t: int) -> None:
    cfg = tiny_config(features=("volume", "range", "pair"))
    main = synthetic_candles(900, seed=3)
    pair = synthetic_candles(900, seed=4)
    base = build_features(main, cfg, pair)
    changed = build_features(_shuffle_future(main, t), cfg, _shuffle_future(pair, t, seed=2))
    np.testing.assert_array_equal(base[: t + 1], changed[: t + 1])
    # and the future did change (the test would be vacuous otherwise)
    assert not np.allclose(np.nan_to_num(base[t + 1 :]), np.nan_to_num(changed[t + 1 :]))


def test_scaler_and_training_windows_ignore_everything_after_the_cutoff() -> None:
    cfg = tiny_config(features=("volume", "range"))
    cut = 600
    a = synthetic_candles(900, seed=5)
    b = _shuffle_future(a, cut - 1)
    pa, pb = prepare(a, cfg), prepare(b, cfg)
    sa = split_train_val(pa, 0, cut, cfg.val_fraction, cfg.horizon)
    sb = split_train_val(pb, 0, cut, cfg.val_fraction, cfg.horizon)
    np.testing.assert_array_equal(sa.train, sb.train)
    np.testing.assert_array_equal(sa.val, sb.val)
    # every target of a training or validation origin ends before the cutoff
    assert sa.val[-1] + cfg.horizon < cut
    sca, scb = fit_scaler(pa, sa.train, cfg.window), fit_scaler(pb, sb.train, cfg.window)
    for key in ("feat_mean", "feat_std", "tgt_mean", "tgt_std"):
        np.testing.assert_array_equal(getattr(sca, key), getattr(scb, key))
    xa = make_windows(sca.features(pa.features), sa.val, cfg.window)
    xb = make_windows(scb.features(pb.features), sb.val, cfg.window)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(pa.targets[sa.train], pb.targets[sb.train])


def test_targets_are_future_cumulative_log_returns() -> None:
    close = np.array([100.0, 101.0, 99.0, 102.0, 103.0])
    y = build_targets(close, 2)
    assert y[0, 0] == pytest.approx(np.log(101 / 100))
    assert y[0, 1] == pytest.approx(np.log(99 / 100))
    assert y[2, 1] == pytest.approx(np.log(103 / 99))
    assert np.isnan(y[3, 1]) and np.isnan(y[4, 0]) and not np.isnan(y[3, 0])


def test_windows_end_at_their_origin() -> None:
    feats = np.arange(40, dtype=np.float64).reshape(20, 2)
    x = make_windows(feats, np.array([5, 19]), 4)
    assert x.shape == (2, 4, 2)
    np.testing.assert_array_equal(x[0, -1], feats[5])
    np.testing.assert_array_equal(x[0, 0], feats[2])
    np.testing.assert_array_equal(x[1, -1], feats[19])


def test_training_origins_are_purged_before_validation() -> None:
    cfg = tiny_config(horizon=6)
    prep = prepare(synthetic_candles(500), cfg)
    split = split_train_val(prep, 0, 500, cfg.val_fraction, cfg.horizon)
    assert split.train[-1] + cfg.horizon <= split.val[0]
    assert split.train[0] >= prep.first_origin >= cfg.window


def test_pair_feature_uses_only_earlier_or_equal_pair_candles() -> None:
    cfg = tiny_config(features=("pair",))
    main = synthetic_candles(50)
    pair = synthetic_candles(50, seed=9)
    pair["timestamp_ms"] = pair["timestamp_ms"] + 1  # pair candles stamped 1 ms later than the main ones
    feats = build_features(main, cfg, pair)
    # at main candle t the last pair close at or before t is pair row t-1
    expected = np.log(pair["close"].iloc[2] / pair["close"].iloc[1])
    assert feats[3, 1] == pytest.approx(expected)


def test_bad_inputs_are_reported_readably() -> None:
    with pytest.raises(DataError, match="column"):
        prepare(pd.DataFrame({"close": [1.0, 2.0]}), LSTMConfig())
    with pytest.raises(DataError, match="too few"):
        prepare(synthetic_candles(50), LSTMConfig())
    with pytest.raises(DataError, match="6 values"):
        candles_from_rows([[1, 2, 3]])
    with pytest.raises(DataError, match="pair"):
        build_features(synthetic_candles(100), tiny_config(features=("pair",)))
    with pytest.raises(ValueError, match="unknown feature"):
        LSTMConfig(features=("sentiment",))
    with pytest.raises(ValueError, match="layers"):
        LSTMConfig(layers=0)


def test_defaults_are_the_seed_architecture() -> None:
    cfg = LSTMConfig()
    assert (cfg.layers, cfg.units, cfg.dropout, cfg.window, cfg.optimizer, cfg.loss) == (4, 50, 0.2, 60, "adam", "mse")
    assert LSTMConfig.from_dict(cfg.with_(features=["volume"]).to_dict()) == cfg.with_(features=("volume",))


def test_data_hash_identifies_the_data() -> None:
    a = synthetic_candles(100)
    b = a.copy()
    b.loc[50, "close"] *= 1.0001
    assert data_hash(a) == data_hash(a.copy())
    assert data_hash(a) != data_hash(b)
