"""Import TensorFlow/Keras quietly, once. Front doors import the LSTM engine lazily so that the CLI and the API
start without paying TensorFlow's import cost."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import tensorflow as tf

tf.get_logger().setLevel("ERROR")

# TensorFlow's and Keras' typing is partial; the engine treats their objects as Any at this boundary and casts
# the numpy arrays it gets back.
KerasModel = Any

__all__ = ["KerasModel", "keras", "tf"]
