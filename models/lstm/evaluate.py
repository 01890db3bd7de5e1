"""Honest evaluation: walk-forward (rolling origin) against naive baselines.

Each fold trains a fresh model on candles before its cutoff (expanding window, or the last `train_window` candles),
then forecasts every origin of the next `test_size` candles. The baselines see exactly the same origins: random
walk (zero return), drift (the training period's mean one-step log return times h) and EMA (price reverts to its
EMA). Metrics per horizon step: RMSE, MAE, directional accuracy, interval coverage, and a Diebold-Mariano test of
squared errors against the random walk (Harvey-Leybourne-Newbold small-sample correction, h-1 autocovariance lags
for overlapping forecasts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from models.lstm.config import LSTMConfig
from models.lstm.data import DataError, FloatArray, Prepared
from models.lstm.train import TrainInfo, fit

SIGNIFICANCE = 0.05


def dm_test(e_model: FloatArray, e_base: FloatArray, lag: int) -> tuple[float, float]:
    """Diebold-Mariano on squared-error differences d = e_model^2 - e_base^2. Returns (statistic, two-sided p).

    A negative statistic means the model's errors are smaller."""
    d = np.asarray(e_model, dtype=np.float64) ** 2 - np.asarray(e_base, dtype=np.float64) ** 2
    n = d.size
    if n < 5:
        return float("nan"), float("nan")
    dbar = float(d.mean())
    dc = d - dbar
    lag = max(0, min(lag, n - 1))
    gammas = [float(np.dot(dc[k:], dc[: n - k]) / n) for k in range(lag + 1)]
    var = gammas[0] + 2.0 * sum(gammas[1:])
    if var <= 0:  # rectangular kernel can go negative: fall back to Bartlett weights
        var = gammas[0] + 2.0 * sum((1 - k / (lag + 1)) * g for k, g in enumerate(gammas[1:], start=1))
    if var <= 0:
        return float("nan"), float("nan")
    stat = dbar / math.sqrt(var / n)
    h = lag + 1
    correction = math.sqrt(max((n + 1 - 2 * h + h * (h - 1) / n) / n, 1e-12))
    stat *= correction
    p = float(2.0 * stats.t.sf(abs(stat), df=n - 1))
    return float(stat), p


def _dir_acc(pred: FloatArray, actual: FloatArray) -> float | None:
    mask = (actual != 0) & (pred != 0)
    if not mask.any():
        return None
    return float(np.mean(np.sign(pred[mask]) == np.sign(actual[mask])))


def _rmse(e: FloatArray) -> float:
    return float(np.sqrt(np.mean(e**2)))


@dataclass
class StepMetrics:
    h: int
    n: int
    rmse: float
    mae: float
    dir_acc: float | None
    coverage: float
    mean_width: float
    rmse_rw: float
    mae_rw: float
    rmse_drift: float
    dir_acc_drift: float | None
    rmse_ema: float
    dir_acc_ema: float | None
    dm_stat: float
    dm_p: float

    @property
    def rmse_ratio_rw(self) -> float:
        return self.rmse / self.rmse_rw if self.rmse_rw > 0 else float("nan")

    @property
    def beats_random_walk(self) -> bool:
        return bool(self.rmse_ratio_rw < 1.0 and self.dm_stat < 0 and self.dm_p < SIGNIFICANCE)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.__dict__)
        out["rmse_ratio_rw"] = self.rmse_ratio_rw
        out["beats_random_walk"] = self.beats_random_walk
        return out


@dataclass
class WalkForwardReport:
    horizon: int
    interval: float
    folds: list[dict[str, Any]]
    steps: list[StepMetrics]
    train: list[TrainInfo] = field(default_factory=list)

    def step(self, h: int) -> StepMetrics:
        h = max(1, min(h, len(self.steps)))
        return self.steps[h - 1]

    @property
    def epoch_s(self) -> float:
        vals = [t.mean_epoch_s for t in self.train if t.epoch_seconds]
        return float(np.mean(vals)) if vals else 0.0

    def summary(self, h: int | None = None) -> dict[str, Any]:
        s = self.step(h or self.horizon)
        return {
            "h": s.h,
            "n": s.n,
            "rmse_ratio_rw": s.rmse_ratio_rw,
            "dir_acc": s.dir_acc,
            "coverage": s.coverage,
            "interval": self.interval,
            "dm_stat": s.dm_stat,
            "dm_p": s.dm_p,
            "beats_random_walk": s.beats_random_walk,
            "rmse_ratio_drift": s.rmse / s.rmse_drift if s.rmse_drift > 0 else None,
            "rmse_ratio_ema": s.rmse / s.rmse_ema if s.rmse_ema > 0 else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "interval": self.interval,
            "folds": self.folds,
            "steps": [s.to_dict() for s in self.steps],
            "epoch_s": self.epoch_s,
        }


def fold_cutoffs(prep: Prepared, config: LSTMConfig) -> list[tuple[int, int, int]]:
    """(train_start, cutoff, test_stop) per fold; test origins are [cutoff, test_stop)."""
    n = len(prep)
    last_origin = n - 1 - config.horizon  # the last origin whose targets are all known
    min_train = config.window + config.horizon + 60
    available = last_origin + 1 - (prep.first_origin + min_train)
    if available < config.folds * 10:
        raise DataError(
            f"{n} candles leave too few test origins for {config.folds} fold(s) (window {config.window}, "
            f"horizon {config.horizon}); give more candles or fewer folds"
        )
    test_size = min(config.test_size, available // config.folds)
    out = []
    for k in range(config.folds):
        cutoff = last_origin + 1 - (config.folds - k) * test_size
        start = 0 if config.train_window is None else max(0, cutoff - config.train_window)
        out.append((start, cutoff, cutoff + test_size))
    return out


def walk_forward(prep: Prepared, config: LSTMConfig) -> WalkForwardReport:
    h_max = config.horizon
    ema = pd.Series(prep.close).ewm(span=config.ema_span, adjust=False).mean().to_numpy()
    ys, mus, los, his, drifts, emas = [], [], [], [], [], []
    folds: list[dict[str, Any]] = []
    infos: list[TrainInfo] = []
    for k, (start, cutoff, stop) in enumerate(fold_cutoffs(prep, config)):
        engine, info = fit(prep, config, start, cutoff, desc=f"fold {k + 1}/{config.folds}")
        infos.append(info)
        origins = np.arange(cutoff, stop, config.stride, dtype=np.int64)
        bands = engine.predict_origins(prep, origins)
        y = prep.targets[origins]
        steps = np.arange(1, h_max + 1, dtype=np.float64)[None, :]
        train_rets = prep.features[max(1, start + 1) : cutoff, 0]  # raw one-step log returns (col 0)
        drift = float(np.mean(train_rets)) * steps * np.ones((origins.size, 1))
        ema_pred = (np.log(ema[origins]) - np.log(prep.close[origins]))[:, None] * np.ones((1, h_max))
        ys.append(y)
        mus.append(bands.mu)
        los.append(bands.lo)
        his.append(bands.hi)
        drifts.append(drift)
        emas.append(ema_pred)
        folds.append(
            {
                "fold": k + 1,
                "train_from_ms": int(prep.timestamps[start]),
                "cutoff_ms": int(prep.timestamps[cutoff]),
                "test_to_ms": int(prep.timestamps[min(stop - 1 + h_max, len(prep) - 1)]),
                "n_test": int(origins.size),
                "val_raw_coverage_h1": engine.calibration.raw_coverage[0],
                **info.to_dict(),
            }
        )
    y_all = np.concatenate(ys)
    mu_all, lo_all, hi_all = np.concatenate(mus), np.concatenate(los), np.concatenate(his)
    dr_all, ema_all = np.concatenate(drifts), np.concatenate(emas)
    steps_out: list[StepMetrics] = []
    for j in range(h_max):
        h = j + 1
        y = y_all[:, j]
        e = y - mu_all[:, j]
        e_rw = y  # random walk forecasts a zero log return
        dm_lag = max(0, math.ceil(h / config.stride) - 1)
        stat, p = dm_test(e, e_rw, dm_lag)
        steps_out.append(
            StepMetrics(
                h=h,
                n=int(y.size),
                rmse=_rmse(e),
                mae=float(np.mean(np.abs(e))),
                dir_acc=_dir_acc(mu_all[:, j], y),
                coverage=float(np.mean((y >= lo_all[:, j]) & (y <= hi_all[:, j]))),
                mean_width=float(np.mean(hi_all[:, j] - lo_all[:, j])),
                rmse_rw=_rmse(e_rw),
                mae_rw=float(np.mean(np.abs(e_rw))),
                rmse_drift=_rmse(y - dr_all[:, j]),
                dir_acc_drift=_dir_acc(dr_all[:, j], y),
                rmse_ema=_rmse(y - ema_all[:, j]),
                dir_acc_ema=_dir_acc(ema_all[:, j], y),
                dm_stat=stat,
                dm_p=p,
            )
        )
    return WalkForwardReport(horizon=h_max, interval=config.interval, folds=folds, steps=steps_out, train=infos)
