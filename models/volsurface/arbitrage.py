"""Static-arbitrage checks on total-variance surfaces w(k, t) (k = ln(K/F)).

- Butterfly: Durrleman's g(k) = (1 - k w'/(2w))^2 - w'^2/4 (1/w + 1/4) + w''/2 must be >= 0 (density >= 0).
- Calendar: w(k, t) must be non-decreasing in t at every k.
The functions take plain callables or arrays so that they check any surface, not only ours.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def durrleman_g(k: FloatArray, w: FloatArray, w1: FloatArray, w2: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (1.0 - k * w1 / (2.0 * w)) ** 2 - w1 * w1 / 4.0 * (1.0 / w + 0.25) + w2 / 2.0
    return np.asarray(np.where(w > 0, g, -np.inf), dtype=np.float64)


def g_numeric(w_of_k: Callable[[FloatArray], FloatArray], k: FloatArray, h: float = 1e-4) -> FloatArray:
    """g(k) with central finite differences of a total-variance smile."""
    w = w_of_k(k)
    wp = w_of_k(k + h)
    wm = w_of_k(k - h)
    return durrleman_g(k, w, (wp - wm) / (2 * h), (wp - 2 * w + wm) / (h * h))


@dataclass
class ArbitrageReport:
    butterfly_ok: bool
    calendar_ok: bool
    min_g: float
    max_calendar_drop: float
    butterfly_violations: list[dict[str, float]] = field(default_factory=list)
    calendar_violations: list[dict[str, float]] = field(default_factory=list)

    @property
    def arbitrage_free(self) -> bool:
        return self.butterfly_ok and self.calendar_ok

    def as_dict(self) -> dict[str, object]:
        return {
            "arbitrage_free": self.arbitrage_free,
            "butterfly_ok": self.butterfly_ok,
            "calendar_ok": self.calendar_ok,
            "min_g": self.min_g,
            "max_calendar_drop": self.max_calendar_drop,
            "butterfly_violations": self.butterfly_violations[:10],
            "calendar_violations": self.calendar_violations[:10],
        }


def check_butterfly(
    smiles: Sequence[Callable[[FloatArray], FloatArray]], t: FloatArray, k: FloatArray, tol: float = 1e-9
) -> tuple[float, list[dict[str, float]]]:
    viol: list[dict[str, float]] = []
    gmin = np.inf
    for ti, smile in zip(t, smiles, strict=True):
        g = g_numeric(smile, k)
        gmin = min(gmin, float(np.min(g)))
        bad = np.flatnonzero(g < -tol)
        if bad.size:
            j = bad[np.argmin(g[bad])]
            viol.append({"t": float(ti), "k": float(k[j]), "g": float(g[j]), "points": float(bad.size)})
    return float(gmin), viol


def check_calendar(
    w_grid: FloatArray, t: FloatArray, k: FloatArray, tol: float = 1e-10
) -> tuple[float, list[dict[str, float]]]:
    """w_grid[i, j] = w(k_j, t_i) with t increasing; returns the largest decrease and the violations."""
    order = np.argsort(t)
    wg = w_grid[order]
    drop = wg[:-1] - wg[1:]
    viol: list[dict[str, float]] = []
    worst = float(np.max(drop)) if drop.size else 0.0
    for i in range(drop.shape[0]):
        bad = np.flatnonzero(drop[i] > tol)
        if bad.size:
            j = bad[np.argmax(drop[i, bad])]
            viol.append(
                {"t1": float(t[order][i]), "t2": float(t[order][i + 1]), "k": float(k[j]), "drop": float(drop[i, j])}
            )
    return max(worst, 0.0), viol


def _at_t(w: Callable[[FloatArray, float], FloatArray], t: float, k: FloatArray) -> FloatArray:
    return w(k, t)


def check_surface(
    w: Callable[[FloatArray, float], FloatArray], t: npt.ArrayLike, k: npt.ArrayLike, tol: float = 1e-9
) -> ArbitrageReport:
    """Check a surface given as w(k_array, t) at expiries t on the strike grid k."""
    t_ = np.sort(np.asarray(t, dtype=np.float64))
    k_ = np.asarray(k, dtype=np.float64)
    smiles = [functools.partial(_at_t, w, float(tt)) for tt in t_]
    gmin, bviol = check_butterfly(smiles, t_, k_, tol)
    grid = np.vstack([w(k_, float(tt)) for tt in t_])
    drop, cviol = check_calendar(grid, t_, k_, tol)
    return ArbitrageReport(not bviol, not cviol, gmin, drop, bviol, cviol)
