"""Training: standardise on the training split, fit with early stopping (best weights restored) and a progress bar,
then calibrate the interval on a later calibration fold (split conformal; see models.lstm.intervals)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.lstm.config import LSTMConfig
from models.lstm.data import Prepared, fit_scaler, make_windows, split_train_val
from models.lstm.engine import LSTMEngine
from models.lstm.intervals import Calibration, calibrate
from models.lstm.model import build_model
from models.lstm.tfenv import keras


@dataclass
class TrainInfo:
    n_train: int
    n_val: int
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    epoch_seconds: list[float] = field(default_factory=list)
    train_start_ms: int = 0
    train_end_ms: int = 0  # last candle whose close entered any target
    n_cal: int = 0  # calibration origins

    @property
    def mean_epoch_s(self) -> float:
        # the first epoch includes graph tracing; report the mean of the rest when there is more than one
        secs = self.epoch_seconds[1:] if len(self.epoch_seconds) > 1 else self.epoch_seconds
        return float(np.mean(secs)) if secs else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_cal": self.n_cal,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "epoch_s": self.mean_epoch_s,
            "train_start_ms": self.train_start_ms,
            "train_end_ms": self.train_end_ms,
        }


class _EpochTimer(keras.callbacks.Callback):  # type: ignore[misc]  # keras has no type information
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._t = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._t)


class _Progress(keras.callbacks.Callback):  # type: ignore[misc]
    """tqdm bar over epochs on stderr (stdout stays clean for --json)."""

    def __init__(self, epochs: int, desc: str) -> None:
        super().__init__()
        from tqdm import tqdm

        self.bar = tqdm(total=epochs, desc=desc, unit="epoch", file=sys.stderr, leave=False)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        self.bar.set_postfix(
            loss=f"{float(logs.get('loss', float('nan'))):.4f}", val=f"{float(logs.get('val_loss', float('nan'))):.4f}"
        )
        self.bar.update(1)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.bar.close()


def fit(prep: Prepared, config: LSTMConfig, start: int, end: int, desc: str = "train") -> tuple[LSTMEngine, TrainInfo]:
    """Train on candles [start, end) (targets never reach `end`); returns the calibrated engine."""
    split = split_train_val(prep, start, end, config.val_fraction, config.horizon, config.cal_fraction)
    scaler = fit_scaler(prep, split.train, config.window)
    feats = scaler.features(prep.features)
    x_tr = make_windows(feats, split.train, config.window)
    y_tr = scaler.targets(prep.targets[split.train])[..., None].astype(np.float32)
    x_va = make_windows(feats, split.val, config.window)
    y_va = scaler.targets(prep.targets[split.val])[..., None].astype(np.float32)

    model = build_model(config, prep.features.shape[1])
    timer = _EpochTimer()
    callbacks: list[Any] = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True),
        timer,
    ]
    if config.progress:
        callbacks.append(_Progress(config.epochs, desc))
    history = model.fit(
        x_tr,
        y_tr,
        validation_data=(x_va, y_va),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    val_losses = [float(v) for v in history.history.get("val_loss", [])]
    best_epoch = int(np.nanargmin(val_losses)) + 1 if val_losses else 0

    placeholder = Calibration(config.interval, [0.0] * config.horizon, [0.0] * config.horizon, 0, False)
    engine = LSTMEngine(model, config, scaler, placeholder, prep.feature_names)
    raw = engine.raw_bands(prep, split.cal)  # the calibration fold: neither fitted on nor used to stop
    engine.calibration = calibrate(
        raw.mu,
        raw.lo,
        raw.hi,
        prep.targets[split.cal],
        prep.var_components[split.cal],
        config.interval,
        config.conformal,
    )
    info = TrainInfo(
        n_train=int(split.train.size),
        n_val=int(split.val.size),
        n_cal=int(split.cal.size),
        epochs_run=len(timer.seconds),
        best_epoch=best_epoch,
        best_val_loss=min(val_losses) if val_losses else float("nan"),
        epoch_seconds=timer.seconds,
        train_start_ms=int(prep.timestamps[max(0, int(split.train[0]) - config.window + 1)]),
        train_end_ms=int(prep.timestamps[int(max(split.val[-1], split.cal[-1])) + config.horizon]),
    )
    return engine, info
