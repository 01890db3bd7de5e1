"""Honest evaluation: walk-forward (rolling origin) against naive baselines.

Each fold trains a fresh model on candles before its cutoff (expanding window, or the last `train_window` candles),
then forecasts every origin of the next `test_size` candles. The baselines see exactly the same origins: random
walk (zero return), drift (the training period's mean one-step log return times h) and EMA (price reverts to its
EMA). Metrics per horizon step: RMSE, MAE, directional accuracy, interval coverage, and a Diebold-Mariano test of
squared errors against the random walk (Harvey-Leybourne-Newbold small-sample correction, h-1 autocovariance lags
for overlapping forecasts).

Intervals: the network's band is conformalised on the fold's calibration split and then updated online through the
test period exactly as the running service does (models.lstm.adaptive: each test origin first learns the outcomes
that closed at it, then issues its band). The same origins get the interval baselines (models.lstm.baselines):
GARCH(1,1) fitted on the fold's training returns and empirical quantiles of past h-step returns. Coverage and mean
width are reported for each, plus the raw band and the split-conformal band without the online update, and the
GARCH width rescaled to our measured coverage (an oracle rescaling in GARCH's favour) for a comparison at equal
coverage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from models.lstm.adaptive import AdaptiveConformal, run_sequence
from models.lstm.baselines import empirical_bands, garch_bands, matched_width
from models.lstm.config import LSTMConfig
from models.lstm.data import DataError, FloatArray, Prepared
from models.lstm.intervals import apply_offsets, nonconformity
from models.lstm.status import CALIBRATION_TOLERANCE
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
    interval: float = 0.8
    coverage_raw: float = float("nan")  # the network's band before any calibration
    coverage_split: float = float("nan")  # split conformal only (no online update)
    mean_width_split: float = float("nan")
    coverage_garch: float = float("nan")
    mean_width_garch: float = float("nan")
    width_garch_matched: float = float("nan")  # GARCH's band rescaled to cover what ours covered
    coverage_empirical: float = float("nan")
    mean_width_empirical: float = float("nan")
    width_empirical_matched: float = float("nan")
    # coverage in the calmest and the wildest third of test origins (by the fast EWMA volatility known there):
    # mean width at equal marginal coverage rewards a band that ignores volatility; these show what that costs
    coverage_calm: float = float("nan")
    coverage_wild: float = float("nan")
    coverage_garch_calm: float = float("nan")
    coverage_garch_wild: float = float("nan")
    coverage_empirical_calm: float = float("nan")
    coverage_empirical_wild: float = float("nan")

    @property
    def rmse_ratio_rw(self) -> float:
        return self.rmse / self.rmse_rw if self.rmse_rw > 0 else float("nan")

    @property
    def width_ratio_garch(self) -> float:
        """Our mean width over GARCH's, each at its own measured coverage."""
        return self.mean_width / self.mean_width_garch if self.mean_width_garch > 0 else float("nan")

    @property
    def width_ratio_garch_matched(self) -> float:
        """Our mean width over GARCH's rescaled to our coverage (equal coverage)."""
        return self.mean_width / self.width_garch_matched if self.width_garch_matched > 0 else float("nan")

    @property
    def width_ratio_empirical_matched(self) -> float:
        m = self.width_empirical_matched
        return self.mean_width / m if m > 0 else float("nan")

    @property
    def calibrated(self) -> bool:
        return bool(abs(self.coverage - self.interval) <= CALIBRATION_TOLERANCE)

    @property
    def beats_random_walk(self) -> bool:
        return bool(self.rmse_ratio_rw < 1.0 and self.dm_stat < 0 and self.dm_p < SIGNIFICANCE)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.__dict__)
        out["rmse_ratio_rw"] = self.rmse_ratio_rw
        out["beats_random_walk"] = self.beats_random_walk
        out["width_ratio_garch"] = self.width_ratio_garch
        out["width_ratio_garch_matched"] = self.width_ratio_garch_matched
        out["width_ratio_empirical_matched"] = self.width_ratio_empirical_matched
        out["calibrated"] = self.calibrated
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
            "calibrated": s.calibrated,
            "mean_width": s.mean_width,
            "coverage_raw": s.coverage_raw,
            "coverage_split": s.coverage_split,
            "coverage_garch": s.coverage_garch,
            "mean_width_garch": s.mean_width_garch,
            "width_ratio_garch": s.width_ratio_garch,
            "width_ratio_garch_matched": s.width_ratio_garch_matched,
            "coverage_empirical": s.coverage_empirical,
            "mean_width_empirical": s.mean_width_empirical,
            "width_ratio_empirical_matched": s.width_ratio_empirical_matched,
            "coverage_calm": s.coverage_calm,
            "coverage_wild": s.coverage_wild,
            "coverage_garch_calm": s.coverage_garch_calm,
            "coverage_garch_wild": s.coverage_garch_wild,
            "coverage_empirical_calm": s.coverage_empirical_calm,
            "coverage_empirical_wild": s.coverage_empirical_wild,
            "sharper_than_garch": interval_verdict(s),
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


def interval_verdict(s: StepMetrics) -> str:
    """Which interval is sharper at (about) equal coverage: ours or GARCH's."""
    if not (math.isfinite(s.width_ratio_garch_matched) and math.isfinite(s.coverage_garch)):
        return "unknown"
    return "ours" if s.width_ratio_garch_matched < 1.0 else "garch"


def _nanmean(x: FloatArray) -> float:
    return float(np.mean(x)) if x.size and np.isfinite(x).all() else float("nan")


def _cover(y: FloatArray, lo: FloatArray, hi: FloatArray) -> float:
    if y.size == 0 or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return float("nan")
    return float(np.mean((y >= lo) & (y <= hi)))


def walk_forward(prep: Prepared, config: LSTMConfig, baselines: bool = True) -> WalkForwardReport:
    h_max = config.horizon
    ema = pd.Series(prep.close).ewm(span=config.ema_span, adjust=False).mean().to_numpy()
    keys = ("y", "mu", "lo", "hi", "drift", "ema", "raw_lo", "raw_hi", "split_lo", "split_hi", "g_lo", "g_hi",
            "e_lo", "e_hi", "vol")
    parts: dict[str, list[FloatArray]] = {k: [] for k in keys}
    folds: list[dict[str, Any]] = []
    infos: list[TrainInfo] = []
    ret = prep.features[:, 0]  # raw one-step log returns (col 0)
    for k, (start, cutoff, stop) in enumerate(fold_cutoffs(prep, config)):
        engine, info = fit(prep, config, start, cutoff, desc=f"fold {k + 1}/{config.folds}")
        infos.append(info)
        # the online interval walks every candle of the test period (as the service would); metrics use the stride
        every = np.arange(cutoff, stop, dtype=np.int64)
        pick = np.arange(0, every.size, config.stride)
        origins = every[pick]
        raw = engine.raw_bands(prep, every)
        y_every = prep.targets[every]
        scale = engine.scale(prep.var_components[every])
        state = AdaptiveConformal.start(
            engine.calibration, h_max, gamma=config.aci_gamma, refresh=config.aci_refresh
        )
        offsets = run_sequence(state, nonconformity(raw.lo, raw.hi, y_every, scale))
        lo, hi = apply_offsets(raw.mu, raw.lo, raw.hi, scale, offsets)
        split_lo, split_hi = apply_offsets(
            raw.mu, raw.lo, raw.hi, scale, np.asarray(engine.calibration.offsets, dtype=np.float64)
        )
        y = y_every[pick]
        steps = np.arange(1, h_max + 1, dtype=np.float64)[None, :]
        train_rets = ret[max(1, start + 1) : cutoff]
        drift = float(np.mean(train_rets)) * steps * np.ones((origins.size, 1))
        ema_pred = (np.log(ema[origins]) - np.log(prep.close[origins]))[:, None] * np.ones((1, h_max))
        nan = np.full((origins.size, h_max), np.nan)
        g_lo = g_hi = e_lo = e_hi = nan
        garch_params: dict[str, float] | None = None
        if baselines:
            try:
                gb, garch_params = garch_bands(ret, start, cutoff, origins, h_max, config.interval)
                g_lo, g_hi = gb.lo, gb.hi
            except (DataError, ValueError, np.linalg.LinAlgError):
                pass  # too little data for GARCH: its columns stay NaN
            try:
                eb = empirical_bands(prep.targets, origins, h_max, config.interval)
                e_lo, e_hi = eb.lo, eb.hi
            except DataError:
                pass
        for key, val in (
            ("y", y), ("mu", raw.mu[pick]), ("lo", lo[pick]), ("hi", hi[pick]), ("drift", drift), ("ema", ema_pred),
            ("raw_lo", raw.lo[pick]), ("raw_hi", raw.hi[pick]), ("split_lo", split_lo[pick]),
            ("split_hi", split_hi[pick]), ("g_lo", g_lo), ("g_hi", g_hi), ("e_lo", e_lo), ("e_hi", e_hi),
            ("vol", prep.var_components[origins, 0][:, None]),
        ):
            parts[key].append(val)
        folds.append(
            {
                "fold": k + 1,
                "train_from_ms": int(prep.timestamps[start]),
                "cutoff_ms": int(prep.timestamps[cutoff]),
                "test_to_ms": int(prep.timestamps[min(stop - 1 + h_max, len(prep) - 1)]),
                "n_test": int(origins.size),
                "val_raw_coverage_h1": engine.calibration.raw_coverage[0],
                "cal_raw_coverage_h1": engine.calibration.raw_coverage[0],
                "garch_params": garch_params,
                **info.to_dict(),
            }
        )
    a = {key: np.concatenate(val) for key, val in parts.items()}
    y_all, mu_all, lo_all, hi_all = a["y"], a["mu"], a["lo"], a["hi"]
    dr_all, ema_all = a["drift"], a["ema"]
    vol = a["vol"][:, 0]
    lo_cut, hi_cut = np.quantile(vol, [1 / 3, 2 / 3])
    calm, wild = vol <= lo_cut, vol >= hi_cut
    steps_out: list[StepMetrics] = []
    for j in range(h_max):
        h = j + 1
        y = y_all[:, j]
        e = y - mu_all[:, j]
        e_rw = y  # random walk forecasts a zero log return
        dm_lag = max(0, math.ceil(h / config.stride) - 1)
        stat, p = dm_test(e, e_rw, dm_lag)
        cov = float(np.mean((y >= lo_all[:, j]) & (y <= hi_all[:, j])))
        g_lo, g_hi, e_lo, e_hi = a["g_lo"][:, j], a["g_hi"][:, j], a["e_lo"][:, j], a["e_hi"][:, j]
        garch_ok = bool(np.isfinite(g_lo).all() and np.isfinite(g_hi).all())
        emp_ok = bool(np.isfinite(e_lo).all() and np.isfinite(e_hi).all())
        steps_out.append(
            StepMetrics(
                h=h,
                n=int(y.size),
                rmse=_rmse(e),
                mae=float(np.mean(np.abs(e))),
                dir_acc=_dir_acc(mu_all[:, j], y),
                coverage=cov,
                mean_width=float(np.mean(hi_all[:, j] - lo_all[:, j])),
                rmse_rw=_rmse(e_rw),
                mae_rw=float(np.mean(np.abs(e_rw))),
                rmse_drift=_rmse(y - dr_all[:, j]),
                dir_acc_drift=_dir_acc(dr_all[:, j], y),
                rmse_ema=_rmse(y - ema_all[:, j]),
                dir_acc_ema=_dir_acc(ema_all[:, j], y),
                dm_stat=stat,
                dm_p=p,
                interval=config.interval,
                coverage_raw=_cover(y, a["raw_lo"][:, j], a["raw_hi"][:, j]),
                coverage_split=_cover(y, a["split_lo"][:, j], a["split_hi"][:, j]),
                mean_width_split=_nanmean(a["split_hi"][:, j] - a["split_lo"][:, j]),
                coverage_garch=_cover(y, g_lo, g_hi),
                mean_width_garch=_nanmean(g_hi - g_lo),
                width_garch_matched=matched_width(y, g_lo, g_hi, cov) if garch_ok else float("nan"),
                coverage_empirical=_cover(y, e_lo, e_hi),
                coverage_calm=_cover(y[calm], lo_all[calm, j], hi_all[calm, j]),
                coverage_wild=_cover(y[wild], lo_all[wild, j], hi_all[wild, j]),
                coverage_garch_calm=_cover(y[calm], g_lo[calm], g_hi[calm]),
                coverage_garch_wild=_cover(y[wild], g_lo[wild], g_hi[wild]),
                coverage_empirical_calm=_cover(y[calm], e_lo[calm], e_hi[calm]),
                coverage_empirical_wild=_cover(y[wild], e_lo[wild], e_hi[wild]),
                mean_width_empirical=_nanmean(e_hi - e_lo),
                width_empirical_matched=matched_width(y, e_lo, e_hi, cov) if emp_ok else float("nan"),
            )
        )
    return WalkForwardReport(horizon=h_max, interval=config.interval, folds=folds, steps=steps_out, train=infos)
