"""LSTM price engine benchmark: walk-forward skill on real hourly BTC/USDT candles, training speed, forecast latency.

Reads ../shared/data/ohlcv/binance_BTC_USDT-1h.csv when present (real Binance candles); otherwise generates a
synthetic random walk and says so ("data": "synthetic"). Default network (4 LSTM x 50, dropout 0.2, 60-step
windows, Adam, MSE + quantile heads), horizon 24; the epoch budget is capped so the run stays within ~8 minutes on
2 cores (early stopping usually ends sooner). The last line is one JSON object; headline skill numbers are at the
model's horizon (24 steps = 24 h), with the 1-step numbers under "h1". Interval keys: `coverage80_h1`,
`coverage80_garch` (GARCH(1,1) on returns, same origins) and `width_ratio_garch` (our mean 80% width over GARCH's
at 24 h, each at its measured coverage), plus the ratio at equal coverage (GARCH's band rescaled to our coverage)
and the empirical-quantile baseline. `--data` takes any candle CSV, e.g. a held-out symbol or year.

    .venv/bin/python benchmarks/lstm.py [--epochs 12] [--folds 3] [--test-size 500] [--horizon 24]
        [--uncertainty quantile|mc_dropout]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.lstm.config import LSTMConfig
from models.lstm.data import load_csv, prepare
from models.lstm.evaluate import walk_forward
from models.lstm.train import fit

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ohlcv" / "binance_BTC_USDT-1h.csv"


def synthetic(n: int = 5_482, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vol = 0.008 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))  # slowly wandering volatility
    close = 20_000 * np.exp(np.cumsum(vol * rng.standard_normal(n)))
    return pd.DataFrame(
        {
            "timestamp_ms": 1_606_780_800_000 + np.arange(n) * 3_600_000,
            "open": close,
            "high": close * (1 + vol),
            "low": close * (1 - vol),
            "close": close,
            "volume": rng.lognormal(7, 0.5, n),
        }
    )


def _r(x: float) -> float | None:
    return round(float(x), 4) if np.isfinite(x) else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=REAL)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--test-size", type=int, default=500)
    ap.add_argument("--horizon", type=int, default=24)
    ap.add_argument("--uncertainty", choices=["quantile", "mc_dropout"], default="quantile")
    ap.add_argument("--since", default=None, help="keep candles from this UTC date (YYYY-MM-DD)")
    ap.add_argument("--until", default=None, help="keep candles before this UTC date (YYYY-MM-DD)")
    args = ap.parse_args()

    if args.data.is_file():
        candles, kind = load_csv(args.data), "real"
        print(f"data: real Binance candles {args.data.resolve()} ({len(candles)} rows)", file=sys.stderr)
    else:
        candles, kind = synthetic(), "synthetic"
        print(f"data: {args.data} is absent; using a SYNTHETIC random walk ({len(candles)} rows)", file=sys.stderr)

    ts = pd.to_datetime(candles["timestamp_ms"], unit="ms")
    if args.since:
        candles = candles[ts >= pd.Timestamp(args.since)].reset_index(drop=True)
        ts = pd.to_datetime(candles["timestamp_ms"], unit="ms")
    if args.until:
        candles = candles[ts < pd.Timestamp(args.until)].reset_index(drop=True)
    if args.since or args.until:
        print(f"period: {args.since or 'start'} .. {args.until or 'end'} ({len(candles)} rows)", file=sys.stderr)
    cfg = LSTMConfig(
        horizon=args.horizon, epochs=args.epochs, patience=args.patience, folds=args.folds,
        test_size=args.test_size, progress=sys.stderr.isatty(), uncertainty=args.uncertainty,
    )
    print(f"config: {json.dumps(cfg.to_dict())}", file=sys.stderr)
    t0 = time.perf_counter()
    prep = prepare(candles, cfg)
    report = walk_forward(prep, cfg)
    wf_s = time.perf_counter() - t0
    for f in report.folds:
        print(
            f"fold {f['fold']}: train {f['n_train']} val {f['n_val']} test {f['n_test']} epochs {f['epochs_run']} "
            f"(best {f['best_epoch']}) {f['epoch_s']:.2f} s/epoch, raw band coverage on val h1 "
            f"{f['val_raw_coverage_h1']:.2f}",
            file=sys.stderr,
        )
    for h in sorted({1, 6, 12, cfg.horizon} & set(range(1, cfg.horizon + 1))):
        s = report.step(h)
        print(
            f"h={h:>2}: RMSE/RW {s.rmse_ratio_rw:.4f} RMSE/drift {s.rmse / s.rmse_drift:.4f} RMSE/EMA "
            f"{s.rmse / s.rmse_ema:.4f} MAE/RW {s.mae / s.mae_rw:.4f} dir {s.dir_acc} cover {s.coverage:.3f} "
            f"DM {s.dm_stat:+.2f} p={s.dm_p:.3f} beats RW: {s.beats_random_walk}",
            file=sys.stderr,
        )
    print("80% intervals (coverage / mean width in % log return):", file=sys.stderr)
    for h in sorted({1, 6, 12, cfg.horizon} & set(range(1, cfg.horizon + 1))):
        s = report.step(h)
        print(
            f"h={h:>2}: ours (adaptive conformal) {s.coverage:.3f}/{100 * s.mean_width:.3f}  split only "
            f"{s.coverage_split:.3f}/{100 * s.mean_width_split:.3f}  raw head {s.coverage_raw:.3f}  GARCH(1,1) "
            f"{s.coverage_garch:.3f}/{100 * s.mean_width_garch:.3f} (at our coverage {100 * s.width_garch_matched:.3f})"
            f"  empirical {s.coverage_empirical:.3f}/{100 * s.mean_width_empirical:.3f}  width/GARCH "
            f"{s.width_ratio_garch:.3f} (equal coverage {s.width_ratio_garch_matched:.3f})",
            file=sys.stderr,
        )
        print(
            f"      coverage calm / wild third (by EWMA vol at the origin): ours {s.coverage_calm:.3f}/"
            f"{s.coverage_wild:.3f}  GARCH {s.coverage_garch_calm:.3f}/{s.coverage_garch_wild:.3f}  empirical "
            f"{s.coverage_empirical_calm:.3f}/{s.coverage_empirical_wild:.3f}",
            file=sys.stderr,
        )

    # latency of one forecast: last fold's model refit is unnecessary; use a short fit of the same network
    engine, _ = fit(prep, cfg.with_(epochs=1, progress=False), 0, len(prep) - 600, desc="latency model")
    origin = np.array([len(prep) - 1 - cfg.horizon])
    window = engine.windows(prep, origin)[0]
    comps = prep.var_components[origin[0]]
    for _ in range(20):
        engine.predict_window(window, comps)
    times = []
    for _ in range(300):
        t = time.perf_counter()
        engine.predict_window(window, comps)
        times.append(time.perf_counter() - t)
    forecast_ms = 1000 * float(np.median(times))
    p95_ms = 1000 * float(np.percentile(times, 95))
    print(f"single forecast: median {forecast_ms:.3f} ms, p95 {p95_ms:.3f} ms (XLA tf.function, one window)",
          file=sys.stderr)

    head, h1 = report.step(cfg.horizon), report.step(1)
    out = {
        "benchmark": "lstm",
        "data": kind,
        "epoch_s": round(report.epoch_s, 3),
        "forecast_ms": round(forecast_ms, 3),
        "rmse_ratio_rw": round(head.rmse_ratio_rw, 4),
        "dir_acc": None if head.dir_acc is None else round(head.dir_acc, 4),
        "coverage80": round(head.coverage, 4),
        "dm_p": round(head.dm_p, 4),
        "h": cfg.horizon,
        "uncertainty": cfg.uncertainty,
        "beats_rw": head.beats_random_walk,
        "h1": {
            "rmse_ratio_rw": round(h1.rmse_ratio_rw, 4),
            "dir_acc": None if h1.dir_acc is None else round(h1.dir_acc, 4),
            "coverage80": round(h1.coverage, 4),
            "dm_p": round(h1.dm_p, 4),
        },
        "forecast_p95_ms": round(p95_ms, 3),
        "folds": cfg.folds,
        "test_origins": head.n,
        "max_epochs": cfg.epochs,
        "walk_forward_s": round(wf_s, 1),
        "coverage80_h1": round(h1.coverage, 4),
        "coverage80_garch": _r(head.coverage_garch),
        "width_ratio_garch": _r(head.width_ratio_garch),
        "width_ratio_garch_equal_coverage": _r(head.width_ratio_garch_matched),
        "width_ratio_garch_h1": _r(h1.width_ratio_garch),
        "coverage80_garch_h1": _r(h1.coverage_garch),
        "coverage80_empirical": _r(head.coverage_empirical),
        "width_ratio_empirical_equal_coverage": _r(head.width_ratio_empirical_matched),
        "coverage80_split_only": _r(head.coverage_split),
        "coverage80_raw_head": _r(head.coverage_raw),
        "sharper_at_equal_coverage": "ours" if head.width_ratio_garch_matched < 1.0 else "garch",
        "coverage80_calm_wild": [_r(head.coverage_calm), _r(head.coverage_wild)],
        "coverage80_garch_calm_wild": [_r(head.coverage_garch_calm), _r(head.coverage_garch_wild)],
        "coverage80_empirical_calm_wild": [_r(head.coverage_empirical_calm), _r(head.coverage_empirical_wild)],
        "symbol_file": args.data.name,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
