"""argparse value types with bounds: a value out of range exits 2 with usage and a message naming the range, like
any other bad argument (a negative --limit or --poll-s used to run, or fail later with exit 1)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An integer in [low, high]."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from exc
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {n}")
        return n

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def positive_float(high: float = math.inf) -> Callable[[str], float]:
    """A finite number in (0, high]."""

    def parse(value: str) -> float:
        try:
            x = float(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a number: {value!r}") from exc
        if not (math.isfinite(x) and 0 < x <= high):
            bound = "" if math.isinf(high) else f" and at most {high:g}"
            raise argparse.ArgumentTypeError(f"must be a number greater than 0{bound}, got {value}")
        return x

    parse.__name__ = "number"
    return parse
