"""Data preparation without look-ahead.

Every feature row t is computed from candles 0..t only (log returns, log range, volume relative to its trailing
mean, a second symbol's log returns aligned by timestamp). Targets are the cumulative log returns
log(close[t+h] / close[t]) for h = 1..horizon. Scalers are fitted on the rows of the training split only, and the
split helpers purge training origins whose targets would reach into the validation or test period.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.lstm.config import LSTMConfig
from models.lstm.volatility import variance_components

CANDLE_COLUMNS: tuple[str, ...] = ("timestamp_ms", "open", "high", "low", "close", "volume")
FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]


class DataError(ValueError):
    """Candles are missing, malformed or too short for the configuration."""


def normalise_candles(frame: pd.DataFrame) -> pd.DataFrame:
    """Check columns, sort by time, drop duplicate timestamps and rows without a positive close."""
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"candles lack column(s) {missing}; expected {list(CANDLE_COLUMNS)}")
    out = frame.loc[:, list(CANDLE_COLUMNS)].copy()
    for col in CANDLE_COLUMNS[1:]:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    out["timestamp_ms"] = pd.to_numeric(out["timestamp_ms"], errors="coerce")
    out = out.dropna(subset=["timestamp_ms", "close"])
    out["timestamp_ms"] = out["timestamp_ms"].astype("int64")
    out = out[out["close"] > 0]
    out = out.sort_values("timestamp_ms").drop_duplicates("timestamp_ms", keep="last").reset_index(drop=True)
    # a candle without high/low/volume falls back to neutral values rather than poisoning a whole window
    out["high"] = out["high"].fillna(out["close"])
    out["low"] = out["low"].fillna(out["close"])
    out["open"] = out["open"].fillna(out["close"])
    out["volume"] = out["volume"].fillna(0.0).clip(lower=0.0)
    return out


def load_csv(path: str | Path) -> pd.DataFrame:
    """Read candles from CSV with columns timestamp_ms,open,high,low,close,volume."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"candle file {p} does not exist")
    try:
        frame = pd.read_csv(p)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read candles from {p}: {exc}") from exc
    return normalise_candles(frame)


def candles_from_rows(rows: Sequence[Sequence[float]]) -> pd.DataFrame:
    """Candles from [timestamp_ms, open, high, low, close, volume] rows (ccxt's OHLCV layout)."""
    if not rows:
        raise DataError("no candles given")
    if any(len(r) < 6 for r in rows):
        raise DataError("each candle needs 6 values: timestamp_ms, open, high, low, close, volume")
    return normalise_candles(pd.DataFrame([list(r)[:6] for r in rows], columns=list(CANDLE_COLUMNS)))


def data_hash(candles: pd.DataFrame) -> str:
    """SHA-256 over the candle values: identifies exactly which data a model saw."""
    arr = np.ascontiguousarray(candles.loc[:, list(CANDLE_COLUMNS)].to_numpy(dtype=np.float64))
    return hashlib.sha256(arr.tobytes()).hexdigest()


def feature_names(config: LSTMConfig) -> list[str]:
    return ["ret", *[f for f in ("range", "volume", "pair") if f in config.features]]


def build_features(candles: pd.DataFrame, config: LSTMConfig, pair: pd.DataFrame | None = None) -> FloatArray:
    """Raw (unscaled) features, one row per candle; row t uses candles 0..t only. Row 0 is NaN (no return)."""
    close = candles["close"].to_numpy(dtype=np.float64)
    cols: list[FloatArray] = []
    ret = np.full(len(close), np.nan)
    ret[1:] = np.diff(np.log(close))
    cols.append(ret)
    if "range" in config.features:
        high = candles["high"].to_numpy(dtype=np.float64)
        low = candles["low"].to_numpy(dtype=np.float64)
        rng = np.log(np.maximum(high, close) / np.maximum(np.minimum(low, close), 1e-12))
        cols.append(rng)
    if "volume" in config.features:
        logv = np.log1p(candles["volume"].to_numpy(dtype=np.float64))
        trailing = pd.Series(logv).rolling(config.window, min_periods=1).mean().to_numpy()
        cols.append(logv - trailing)
    if "pair" in config.features:
        if pair is None:
            raise DataError("feature 'pair' needs the second symbol's candles")
        other = normalise_candles(pair)
        # as-of alignment: the pair's last close at or before each candle's time (never a later one)
        aligned = pd.merge_asof(
            candles[["timestamp_ms"]].astype("int64"),
            other[["timestamp_ms", "close"]],
            on="timestamp_ms",
            direction="backward",
        )["close"].to_numpy(dtype=np.float64)
        pret = np.full(len(aligned), np.nan)
        pret[1:] = np.diff(np.log(aligned))
        cols.append(pret)
    return np.column_stack(cols)


def build_targets(close: FloatArray, horizon: int) -> FloatArray:
    """targets[t, h-1] = log(close[t+h] / close[t]); NaN where t+h is beyond the data."""
    logc = np.log(close)
    n = len(close)
    out = np.full((n, horizon), np.nan)
    for h in range(1, horizon + 1):
        out[: n - h, h - 1] = logc[h:] - logc[: n - h]
    return out


def trailing_vol(ret: FloatArray, window: int) -> FloatArray:
    """Std of the last `window` one-step log returns known at t (the interval's scale)."""
    vol = pd.Series(ret).rolling(window, min_periods=2).std().to_numpy()
    # rows without two returns yet (before any usable origin) get a constant, never a value from later rows
    vol = np.where(np.isfinite(vol) & (vol > 0), vol, 1e-3)
    return np.maximum(vol, 1e-8)


@dataclass
class Prepared:
    """Raw features and targets aligned with the candles (no scaling yet)."""

    timestamps: IntArray
    close: FloatArray
    features: FloatArray  # (N, F)
    targets: FloatArray  # (N, H)
    vol: FloatArray  # (N,) trailing one-step volatility
    var_components: FloatArray  # (N, 3) one-step variance estimates known at t (models.lstm.volatility)
    first_origin: int  # first t with a full window of finite features
    feature_names: list[str]

    def __len__(self) -> int:
        return len(self.close)

    def origins_with_targets(self, start: int, stop: int, horizon: int | None = None) -> IntArray:
        """Origins t in [start, stop) with a full window and all targets up to `horizon` known."""
        h = self.targets.shape[1] if horizon is None else horizon
        lo = max(start, self.first_origin)
        hi = min(stop, len(self) - h)
        return np.arange(lo, max(lo, hi), dtype=np.int64)


def prepare(candles: pd.DataFrame, config: LSTMConfig, pair: pd.DataFrame | None = None) -> Prepared:
    candles = normalise_candles(candles)
    if len(candles) < config.window + config.horizon + 2:
        raise DataError(
            f"{len(candles)} candles are too few: need more than window + horizon = {config.window + config.horizon}"
        )
    feats = build_features(candles, config, pair)
    finite = np.isfinite(feats).all(axis=1)
    # first origin t whose window t-window+1..t is entirely finite
    ok = pd.Series(finite.astype(np.int64)).rolling(config.window).sum().to_numpy() == config.window
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        raise DataError("no complete feature window: check the pair candles overlap the main symbol's")
    close = candles["close"].to_numpy(dtype=np.float64)
    vol = trailing_vol(feats[:, 0], config.window)
    return Prepared(
        timestamps=candles["timestamp_ms"].to_numpy(dtype=np.int64),
        close=close,
        features=np.nan_to_num(feats),
        targets=build_targets(close, config.horizon),
        vol=vol,
        var_components=variance_components(feats[:, 0], vol),
        first_origin=int(idx[0]),
        feature_names=feature_names(config),
    )


@dataclass
class Scaler:
    """Standardisation of features and targets, fitted on training rows only."""

    feat_mean: FloatArray
    feat_std: FloatArray
    tgt_mean: FloatArray
    tgt_std: FloatArray

    @classmethod
    def fit(cls, features: FloatArray, targets: FloatArray) -> Scaler:
        fstd = features.std(axis=0)
        tstd = targets.std(axis=0)
        return cls(
            feat_mean=features.mean(axis=0),
            feat_std=np.where(fstd > 1e-12, fstd, 1.0),
            tgt_mean=targets.mean(axis=0),
            tgt_std=np.where(tstd > 1e-12, tstd, 1.0),
        )

    def features(self, raw: FloatArray) -> FloatArray:
        return (raw - self.feat_mean) / self.feat_std

    def targets(self, raw: FloatArray) -> FloatArray:
        return (raw - self.tgt_mean) / self.tgt_std

    def inverse_targets(self, scaled: FloatArray) -> FloatArray:
        return scaled * self.tgt_std + self.tgt_mean

    def inverse_target_spread(self, scaled: FloatArray) -> FloatArray:
        return scaled * self.tgt_std

    def to_dict(self) -> dict[str, list[float]]:
        return {k: [float(x) for x in getattr(self, k)] for k in ("feat_mean", "feat_std", "tgt_mean", "tgt_std")}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Scaler:
        keys = ("feat_mean", "feat_std", "tgt_mean", "tgt_std")
        return cls(**{k: np.asarray(data[k], dtype=np.float64) for k in keys})


def fit_scaler(prep: Prepared, train_origins: IntArray, window: int) -> Scaler:
    """Fit on the feature rows the training windows cover (up to the last training origin) and on the training
    targets only; nothing after the training split enters the statistics."""
    if train_origins.size == 0:
        raise DataError("no training samples")
    last = int(train_origins[-1])
    first_row = max(1, int(train_origins[0]) - window + 1)
    rows = prep.features[first_row : last + 1]
    return Scaler.fit(rows, prep.targets[train_origins])


def make_windows(features_scaled: FloatArray, origins: IntArray, window: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """(len(origins), window, F) float32 windows ending at each origin (inclusive)."""
    view = np.lib.stride_tricks.sliding_window_view(features_scaled, window, axis=0)  # (N-window+1, F, window)
    out = view[origins - window + 1].transpose(0, 2, 1)
    return np.ascontiguousarray(out, dtype=np.float32)


@dataclass
class Split:
    train: IntArray
    val: IntArray  # early stopping
    cal: IntArray  # interval calibration (the validation origins when no separate fold is asked for)


def split_train_val(
    prep: Prepared, start: int, end: int, val_fraction: float, horizon: int, cal_fraction: float = 0.0
) -> Split:
    """Origins for training, validation and calibration inside candles [start, end), in that time order: targets
    stay before `end`, and each part's origins are purged so that their targets end before the next part begins."""
    usable = prep.origins_with_targets(start, end - horizon)
    if usable.size < 20:
        raise DataError(f"only {usable.size} usable samples before the cutoff; need at least 20 (more candles)")
    cal = usable[:0]
    if cal_fraction > 0:
        n_cal = max(5, round(usable.size * cal_fraction))
        cal = usable[-n_cal:]
        usable = usable[usable + horizon <= cal[0]]
    n_val = max(5, round(usable.size * val_fraction))
    val = usable[-n_val:]
    train = usable[usable + horizon <= val[0]]
    if train.size < 10:
        raise DataError(f"only {train.size} training samples after the validation split; need more candles")
    return Split(train=train, val=val, cal=cal if cal.size else val)
