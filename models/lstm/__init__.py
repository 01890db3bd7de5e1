"""LSTM price engine: forecasts of cumulative log returns with calibrated intervals and measured skill.

This package's `__init__` imports nothing heavy: TensorFlow loads only when a module that needs it is imported
(models.lstm.model, .train, .engine, .inference, .evaluate, .service, .registry, .jobs).
"""

from models.lstm.config import DEFAULT_CONFIG, LSTMConfig

__all__ = ["DEFAULT_CONFIG", "LSTMConfig"]
