"""The network: stacked LSTM layers with dropout and a head that emits, per horizon step, the point forecast and
(with quantile heads) the lower and upper quantiles of the interval."""

from __future__ import annotations

from typing import Any

from models.lstm.config import LSTMConfig
from models.lstm.tfenv import KerasModel, keras, tf


def set_seeds(config: LSTMConfig) -> None:
    """Seed Python, NumPy and TensorFlow; optionally make TF ops deterministic (process-wide, slower)."""
    keras.utils.set_random_seed(config.seed)
    if config.deterministic_ops:
        tf.config.experimental.enable_op_determinism()


def head_width(config: LSTMConfig) -> int:
    return 3 if config.uncertainty == "quantile" else 1


def make_loss(config: LSTMConfig) -> Any:
    """Point loss (MSE by default) on channel 0, plus pinball losses on the quantile channels.

    y_true has shape (batch, horizon, 1); y_pred (batch, horizon, 1 or 3)."""
    ops = keras.ops
    q_lo, q_hi = config.quantiles
    kind = config.loss
    quantile = config.uncertainty == "quantile"

    def lstm_forecast_loss(y_true: Any, y_pred: Any) -> Any:
        y = y_true[..., 0]
        err = y - y_pred[..., 0]
        if kind == "mse":
            base = ops.square(err)
        elif kind == "mae":
            base = ops.abs(err)
        else:  # huber with delta 1 on standardised targets
            a = ops.abs(err)
            base = ops.where(a <= 1.0, 0.5 * ops.square(err), a - 0.5)
        if quantile:
            for channel, q in ((1, q_lo), (2, q_hi)):
                e = y - y_pred[..., channel]
                base = base + ops.maximum(q * e, (q - 1.0) * e)
        return ops.mean(base, axis=-1)

    return lstm_forecast_loss


def build_model(config: LSTMConfig, n_features: int) -> KerasModel:
    set_seeds(config)
    inp = keras.Input(shape=(config.window, n_features), name="window")
    x = inp
    for i in range(config.layers):
        x = keras.layers.LSTM(config.units, return_sequences=i < config.layers - 1, name=f"lstm_{i}")(x)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    width = head_width(config)
    x = keras.layers.Dense(config.horizon * width, name="head")(x)
    out = keras.layers.Reshape((config.horizon, width), name="forecast")(x)
    model = keras.Model(inp, out, name="lstm_forecaster")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate), loss=make_loss(config))
    return model
