"""A trained forecaster: the network, the training-split scaler, the interval calibration and the config.

`predict_origins` turns prepared data into calibrated forecasts of cumulative log returns; `save`/`load` write and
read the artifact directory (model.keras, scaler.json, calibration + config in engine.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.lstm.config import LSTMConfig
from models.lstm.data import FloatArray, IntArray, Prepared, Scaler, make_windows
from models.lstm.inference import Predictor
from models.lstm.intervals import Calibration, apply_calibration, apply_offsets
from models.lstm.tfenv import KerasModel, keras
from models.lstm.volatility import interval_scale

MODEL_FILE = "model.keras"
SCALER_FILE = "scaler.json"
ENGINE_FILE = "engine.json"


@dataclass
class Bands:
    """Calibrated forecasts of cumulative log returns, each (n, horizon)."""

    mu: FloatArray
    lo: FloatArray
    hi: FloatArray


class LSTMEngine:
    def __init__(
        self,
        model: KerasModel,
        config: LSTMConfig,
        scaler: Scaler,
        calibration: Calibration,
        feature_names: list[str],
    ) -> None:
        self.model = model
        self.config = config
        self.scaler = scaler
        self.calibration = calibration
        self.feature_names = list(feature_names)
        self.predictor = Predictor(model, config, len(feature_names))

    def windows(self, prep: Prepared, origins: IntArray) -> np.ndarray[Any, np.dtype[np.float32]]:
        return make_windows(self.scaler.features(prep.features), origins, self.config.window)

    def raw_bands(self, prep: Prepared, origins: IntArray) -> Bands:
        """Uncalibrated bands in log-return units."""
        mu_s, lo_s, hi_s = self.predictor.bands(self.windows(prep, origins))
        inv = self.scaler.inverse_targets
        return Bands(mu=inv(mu_s), lo=inv(lo_s), hi=inv(hi_s))

    def scale(self, components: FloatArray) -> FloatArray:
        """(n, horizon) interval scale from (n, 3) variance components (the calibration's volatility mix)."""
        return interval_scale(components, self.calibration.scale_weights(self.config.horizon))

    def predict_origins(self, prep: Prepared, origins: IntArray) -> Bands:
        """Split-conformal bands (the calibration fold's offsets; no online update)."""
        raw = self.raw_bands(prep, origins)
        lo, hi = apply_calibration(raw.mu, raw.lo, raw.hi, prep.var_components[origins], self.calibration)
        return Bands(mu=raw.mu, lo=lo, hi=hi)

    def predict_window(
        self, window: np.ndarray[Any, Any], components: FloatArray, offsets: list[float] | None = None
    ) -> Bands:
        """One already-scaled window (window, F) and its (3,) variance components: the latency-critical path (one
        compiled call). `offsets`: the adaptive state's current offsets (default: the split calibration's)."""
        mu_s, lo_s, hi_s = self.predictor.bands(window[None, ...])
        inv = self.scaler.inverse_targets
        mu, lo, hi = inv(mu_s), inv(lo_s), inv(hi_s)
        scale = self.scale(np.asarray(components, dtype=np.float64).reshape(1, -1))
        q = np.asarray(self.calibration.offsets if offsets is None else offsets, dtype=np.float64)
        lo2, hi2 = apply_offsets(mu, lo, hi, scale, q[: mu.shape[1]])
        return Bands(mu=mu, lo=lo2, hi=hi2)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / MODEL_FILE)
        (directory / SCALER_FILE).write_text(json.dumps(self.scaler.to_dict()))
        (directory / ENGINE_FILE).write_text(
            json.dumps(
                {
                    "config": self.config.to_dict(),
                    "calibration": self.calibration.to_dict(),
                    "feature_names": self.feature_names,
                }
            )
        )

    @classmethod
    def load(cls, directory: Path) -> LSTMEngine:
        for name in (MODEL_FILE, SCALER_FILE, ENGINE_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"model artifact {directory / name} is missing")
        meta = json.loads((directory / ENGINE_FILE).read_text())
        # compile=False: inference needs no loss or optimizer, and the custom loss need not be deserialised
        model = keras.models.load_model(directory / MODEL_FILE, compile=False)
        return cls(
            model=model,
            config=LSTMConfig.from_dict(meta["config"]),
            scaler=Scaler.from_dict(json.loads((directory / SCALER_FILE).read_text())),
            calibration=Calibration.from_dict(meta["calibration"]),
            feature_names=[str(x) for x in meta["feature_names"]],
        )
