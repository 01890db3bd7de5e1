"""Configuration of the LSTM price engine: every part of data preparation, the network, training, uncertainty and
evaluation is a field here, with the seed project's choices as defaults (4 LSTM layers x 50 units, dropout 0.2,
60-step windows, Adam, MSE)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

Feature = Literal["volume", "range", "pair"]
Uncertainty = Literal["quantile", "mc_dropout"]
PointLoss = Literal["mse", "mae", "huber"]

KNOWN_FEATURES: tuple[str, ...] = ("volume", "range", "pair")


@dataclass(frozen=True)
class LSTMConfig:
    # data preparation
    window: int = 60  # input steps per sample
    horizon: int = 24  # the model forecasts cumulative log returns for steps 1..horizon
    features: tuple[str, ...] = ()  # optional extras beside the close's log return: volume, range, pair
    val_fraction: float = 0.15  # part of the training data used for early stopping (not fitted on)
    cal_fraction: float = 0.15  # tail of the training data the interval is calibrated on (neither fitted nor
    # used for early stopping); 0 calibrates on the early-stopping split
    # network
    layers: int = 4
    units: int = 50
    dropout: float = 0.2
    # training
    optimizer: Literal["adam"] = "adam"
    learning_rate: float = 1e-3
    loss: PointLoss = "mse"
    batch_size: int = 64
    epochs: int = 50
    patience: int = 5  # early stopping on validation loss (best weights restored)
    seed: int = 42
    deterministic_ops: bool = False  # tf.config.experimental.enable_op_determinism (slower; process-wide)
    progress: bool = True  # tqdm progress bar on stderr
    # uncertainty
    uncertainty: Uncertainty = "quantile"  # quantile heads (one pass) or Monte Carlo dropout (mc_samples passes)
    interval: float = 0.8  # nominal coverage of the prediction interval
    mc_samples: int = 30
    conformal: bool = True  # widen/narrow the raw interval on the calibration fold (normalised split conformal)
    aci_gamma: float = 0.02  # adaptive conformal step size as outcomes arrive (0 = static split conformal)
    aci_refresh: bool = False  # learnt scores replace the calibration fold's oldest ones (else only alpha adapts)
    # inference
    jit_compile: bool = True  # XLA-compiled tf.function for inference
    # evaluation (walk-forward, rolling origin)
    folds: int = 3
    test_size: int = 500  # forecast origins per fold
    train_window: int | None = None  # None = expanding window; else the number of candles each fold trains on
    ema_span: int = 20  # the EMA baseline's span
    stride: int = 1  # step between evaluated forecast origins

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not 2 <= self.window <= 2_000:
            problems.append("window must be in [2, 2000]")
        if not 1 <= self.horizon <= 500:
            problems.append("horizon must be in [1, 500]")
        unknown = sorted(set(self.features) - set(KNOWN_FEATURES))
        if unknown:
            problems.append(f"unknown feature(s) {unknown}; known: {list(KNOWN_FEATURES)}")
        if not 0.05 <= self.val_fraction <= 0.5:
            problems.append("val_fraction must be in [0.05, 0.5]")
        if not (self.cal_fraction == 0 or 0.05 <= self.cal_fraction <= 0.5):
            problems.append("cal_fraction must be 0 or in [0.05, 0.5]")
        if not 0.0 <= self.aci_gamma <= 0.5:
            problems.append("aci_gamma must be in [0, 0.5]")
        if not 1 <= self.layers <= 8:
            problems.append("layers must be in [1, 8]")
        if not 1 <= self.units <= 1_024:
            problems.append("units must be in [1, 1024]")
        if not 0.0 <= self.dropout < 0.9:
            problems.append("dropout must be in [0, 0.9)")
        if self.learning_rate <= 0:
            problems.append("learning_rate must be > 0")
        if self.loss not in ("mse", "mae", "huber"):
            problems.append("loss must be mse, mae or huber")
        if self.batch_size < 1 or self.epochs < 1 or self.patience < 0:
            problems.append("batch_size and epochs must be >= 1, patience >= 0")
        if self.uncertainty not in ("quantile", "mc_dropout"):
            problems.append("uncertainty must be quantile or mc_dropout")
        if self.uncertainty == "mc_dropout" and self.dropout <= 0:
            problems.append("mc_dropout needs dropout > 0")
        if not 0.5 <= self.interval < 1.0:
            problems.append("interval must be in [0.5, 1)")
        if not 2 <= self.mc_samples <= 1_000:
            problems.append("mc_samples must be in [2, 1000]")
        if self.folds < 1 or self.test_size < 1 or self.stride < 1 or self.ema_span < 1:
            problems.append("folds, test_size, stride and ema_span must be >= 1")
        if self.train_window is not None and self.train_window < self.window + self.horizon + 10:
            problems.append("train_window must exceed window + horizon by at least 10")
        if problems:
            raise ValueError("invalid LSTMConfig: " + "; ".join(problems))

    @property
    def quantiles(self) -> tuple[float, float]:
        tail = (1.0 - self.interval) / 2.0
        return tail, 1.0 - tail

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = list(self.features)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LSTMConfig:
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if "features" in kwargs:
            kwargs["features"] = tuple(kwargs["features"])
        return cls(**kwargs)

    def with_(self, **changes: Any) -> LSTMConfig:
        if "features" in changes:
            changes["features"] = tuple(changes["features"])
        return replace(self, **changes)


DEFAULT_CONFIG = LSTMConfig()

__all__ = ["DEFAULT_CONFIG", "KNOWN_FEATURES", "LSTMConfig"]
