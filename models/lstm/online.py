"""The running service's interval: the adaptive conformal state of each model, advanced one closed candle at a time
and kept in Mongo (`lstm_interval_state`, one document per model) so that it survives a restart.

`advance` replays the closed candles the state has not seen, in time order, exactly as the walk-forward evaluation
does: at each candle it learns the outcomes that closed there (origin t - h at step h, with the offsets issued at
that origin), then issues the offsets for the candle as a new origin. A fresh state starts from the model's split
calibration at the end of its training data; candles that the model never trained on are then learnt from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pymongo.database import Database

from core.clock import utcnow
from core.queries import eq
from models.lstm.adaptive import AdaptiveConformal
from models.lstm.data import FloatArray, build_features, make_windows, normalise_candles, trailing_vol
from models.lstm.engine import LSTMEngine
from models.lstm.registry import ModelRecord
from models.lstm.volatility import variance_components

STATES = "lstm_interval_state"
MAX_REPLAY = 2_000  # candles replayed at most in one advance (after a long outage the oldest are skipped)


@dataclass
class Features:
    """What a forecast and the interval state need from a run of candles, row-aligned with them."""

    timestamps: np.ndarray[Any, np.dtype[np.int64]]
    close: FloatArray
    scaled: FloatArray  # scaled feature rows (NaN rows zeroed)
    finite: np.ndarray[Any, np.dtype[np.bool_]]  # row has all features
    components: FloatArray  # (n, 3) variance components


def features_for(engine: LSTMEngine, candles: pd.DataFrame, pair: pd.DataFrame | None = None) -> Features:
    feats = build_features(candles, engine.config, pair)
    ret = feats[:, 0]
    comps = variance_components(ret, trailing_vol(ret, engine.config.window))
    return Features(
        timestamps=candles["timestamp_ms"].to_numpy(dtype=np.int64),
        close=candles["close"].to_numpy(dtype=np.float64),
        scaled=engine.scaler.features(np.nan_to_num(feats)),
        finite=np.asarray(np.isfinite(feats).all(axis=1), dtype=np.bool_),
        components=comps,
    )


def _usable(f: Features, window: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Rows that end a full window of finite features."""
    ok = pd.Series(f.finite.astype(np.int64)).rolling(window).sum().to_numpy() == window
    return np.asarray(ok, dtype=np.bool_)


def start_key(record: ModelRecord) -> int | None:
    """The last candle the model's training saw: the state learns from the candles after it."""
    rng = record.metadata.get("data_range") or {}
    to_ms = rng.get("to_ms")
    return int(to_ms) if isinstance(to_ms, int | float) else None


def fresh_state(engine: LSTMEngine, record: ModelRecord) -> AdaptiveConformal:
    cfg = engine.config
    state = AdaptiveConformal.start(engine.calibration, cfg.horizon, gamma=cfg.aci_gamma, refresh=cfg.aci_refresh)
    state.last_key = start_key(record)
    return state


def advance(
    state: AdaptiveConformal, engine: LSTMEngine, candles: pd.DataFrame, pair: pd.DataFrame | None = None
) -> int:
    """Replay the closed candles after `state.last_key`; returns how many outcomes were learnt."""
    candles = normalise_candles(candles)
    f = features_for(engine, candles, pair)
    usable = _usable(f, engine.config.window)
    ts = f.timestamps
    last = state.last_key
    new = np.flatnonzero((ts > last) if last is not None else np.zeros(ts.size, dtype=bool))
    if last is None and ts.size:
        new = np.asarray([ts.size - 1])  # no history to learn from: start issuing at the newest candle
    new = new[-MAX_REPLAY:]
    if new.size == 0:
        return 0
    horizon = engine.config.horizon
    index = {int(t): i for i, t in enumerate(ts)}
    # origins whose outcomes may close in the new candles: issued earlier (and present here) or new
    issued_rows = [index[k] for k in state.issued if k in index]
    rows = np.unique(np.concatenate([np.asarray(issued_rows, dtype=np.int64), new.astype(np.int64)]))
    rows = rows[usable[rows]]
    bands: dict[int, tuple[FloatArray, FloatArray, FloatArray]] = {}
    if rows.size:
        windows = make_windows(f.scaled, rows, engine.config.window)
        _mu, lo_s, hi_s = engine.predictor.bands(windows)
        inv = engine.scaler.inverse_targets
        lo, hi = inv(lo_s), inv(hi_s)
        scale = engine.scale(f.components[rows])
        for k, r in enumerate(rows):
            bands[int(r)] = (lo[k], hi[k], scale[k])
    learnt = 0
    logc = np.log(f.close)
    for i in new:
        for h in range(1, horizon + 1):
            o = int(i) - h
            if o < 0 or o not in bands or int(ts[o]) not in state.issued:
                continue
            lo_o, hi_o, s_o = bands[o]
            y = float(logc[i] - logc[o])
            score = max(float(lo_o[h - 1]) - y, y - float(hi_o[h - 1])) / float(s_o[h - 1])  # as nonconformity()
            state.observe(int(ts[o]), h, score)
            learnt += 1
        if usable[i]:
            state.issue(int(ts[i]))
        state.last_key = int(ts[i])
    oldest_open = int(ts[max(0, int(new[-1]) - horizon + 1)])
    state.forget_before(oldest_open)
    return learnt


class IntervalStateStore:
    """One adaptive state per model id. Writes are guarded by a sequence number: a writer that lost a race reloads
    and replays (a replay of the same candles gives the same state)."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.col = db[STATES]
        self.col.create_index("model_id", unique=True)

    def load(self, model_id: str) -> tuple[AdaptiveConformal, int] | None:
        doc = self.col.find_one(eq(model_id=model_id))
        if doc is None:
            return None
        return AdaptiveConformal.from_dict(doc["state"]), int(doc.get("seq", 0))

    def save(self, model_id: str, state: AdaptiveConformal, seq: int) -> bool:
        """Write the state if nobody wrote since `seq` was read (seq 0: not stored yet); False when someone did."""
        doc = {"model_id": model_id, "state": state.to_dict(), "seq": seq + 1, "updated_at": utcnow()}
        if seq == 0:
            if self.col.find_one(eq(model_id=model_id), projection={"_id": 1}) is not None:
                return False
            try:
                self.col.insert_one(doc)
            except Exception:  # a concurrent first writer (unique index): theirs stands
                return False
            return True
        res = self.col.replace_one({"model_id": {"$eq": model_id}, "seq": {"$eq": seq}}, doc)
        return res.matched_count == 1


def updated_state(
    store: IntervalStateStore,
    engine: LSTMEngine,
    record: ModelRecord,
    candles: pd.DataFrame,
    pair: pd.DataFrame | None = None,
) -> tuple[AdaptiveConformal, int]:
    """Load the model's state (or start one), learn from the closed candles it has not seen, save it."""
    for _attempt in range(3):
        loaded = store.load(record.model_id)
        state, seq = loaded if loaded is not None else (fresh_state(engine, record), 0)
        learnt = advance(state, engine, candles, pair)
        if learnt == 0 and loaded is not None and state.last_key == loaded[0].last_key:
            return state, learnt
        if store.save(record.model_id, state, seq):
            return state, learnt
    return state, learnt  # lost three races in a row: answer with this replay; the winner's copy is stored


def state_summary(state: AdaptiveConformal, horizon: int) -> dict[str, Any]:
    """For the forecast reply: how the interval is being kept calibrated and how it has done lately."""
    h = max(1, min(horizon, state.horizon))
    return {
        "method": "adaptive conformal (split-conformal start on a held-out calibration fold, then ACI)",
        "level": state.level,
        "gamma": state.gamma,
        "updated_through": _iso(state.last_key),
        "outcomes_learnt_h1": state.seen[0] if state.seen else 0,
        f"outcomes_learnt_h{h}": state.seen[h - 1] if state.seen else 0,
        "recent_coverage_h1": state.recent_coverage(1),
        f"recent_coverage_h{h}": state.recent_coverage(h),
        "alpha_h1": state.alpha[0],
        f"alpha_h{h}": state.alpha[h - 1],
    }


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    from datetime import UTC

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
