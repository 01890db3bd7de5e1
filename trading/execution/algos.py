"""Order splitting: TWAP, VWAP (volume profile from candles) and iceberg schedules.

A schedule is a list of child slices with a start offset; the trading service sends each slice as its own child
order, and every child passes the risk gate again just before it is sent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from trading.types import Candle


class Algo(StrEnum):
    NONE = "none"
    TWAP = "twap"
    VWAP = "vwap"
    ICEBERG = "iceberg"


@dataclass(frozen=True, slots=True)
class Slice:
    index: int
    qty: float
    offset_s: float  # when to send, seconds after the parent starts
    wait_for_previous: bool = False  # iceberg: the next clip shows only after the previous one is done


def _round_slices(qtys: list[float], step: float | None, min_qty: float) -> list[float]:
    """Round to the step size and merge too-small slices forward; the total is preserved to the step."""
    total = sum(qtys)
    out: list[float] = []
    carry = 0.0
    for q in qtys:
        q += carry
        r = math.floor(q / step + 1e-9) * step if step else q
        if r < min_qty or r <= 0:
            carry = q
            continue
        out.append(round(r, 12))
        carry = q - r
    rest = total - sum(out)
    rest_r = math.floor(rest / step + 1e-9) * step if step else rest
    if rest_r > 0:
        if out and rest_r < min_qty:
            out[-1] = round(out[-1] + rest_r, 12)
        elif rest_r >= min_qty:
            out.append(round(rest_r, 12))
        elif not out:
            out.append(round(rest_r, 12))
    return out


def twap(
    total: float, slices: int, duration_s: float, *, step: float | None = None, min_qty: float = 0.0
) -> list[Slice]:
    if total <= 0 or slices < 1 or duration_s < 0:
        raise ValueError("total > 0, slices >= 1, duration >= 0")
    qtys = _round_slices([total / slices] * slices, step, min_qty)
    interval = duration_s / max(len(qtys), 1)
    return [Slice(i, q, i * interval) for i, q in enumerate(qtys)]


def volume_profile(candles: Sequence[Candle], buckets: int) -> list[float]:
    """Average volume share per intraday bucket (by candle open hour mapped onto `buckets`)."""
    if buckets < 1:
        raise ValueError("buckets >= 1")
    sums = [0.0] * buckets
    for c in candles:
        hour = (c.timestamp_ms // 3_600_000) % 24
        sums[hour * buckets // 24] += max(c.volume, 0.0)
    total = sum(sums)
    if total <= 0:
        return [1.0 / buckets] * buckets
    return [s / total for s in sums]


def vwap(
    total: float, weights: Sequence[float], duration_s: float, *, step: float | None = None, min_qty: float = 0.0
) -> list[Slice]:
    """Slices proportional to `weights` (e.g. `volume_profile` for the hours ahead), evenly spaced in time."""
    w = [max(float(x), 0.0) for x in weights]
    if total <= 0 or not w or sum(w) <= 0:
        raise ValueError("total > 0 and a non-empty, positive volume profile")
    s = sum(w)
    qtys = _round_slices([total * x / s for x in w], step, min_qty)
    interval = duration_s / max(len(qtys), 1)
    return [Slice(i, q, i * interval) for i, q in enumerate(qtys)]


def iceberg(total: float, display_qty: float, *, step: float | None = None, min_qty: float = 0.0) -> list[Slice]:
    if total <= 0 or display_qty <= 0:
        raise ValueError("total and display_qty must be positive")
    n = max(1, math.ceil(total / display_qty - 1e-9))
    qtys = [display_qty] * (n - 1) + [total - display_qty * (n - 1)]
    return [Slice(i, q, 0.0, True) for i, q in enumerate(_round_slices(qtys, step, min_qty))]
