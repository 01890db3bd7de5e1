"""A smooth, local correction on top of an SVI slice, for smiles raw SVI cannot follow within the bid/ask spread.

c(k) is a cubic spline in total variance with zero value and zero slope at both ends (a little outside the quoted
strikes) and zero outside, so the SVI wings stay as fitted. Its node values are fitted by ridge least squares to
the distance from SVI to each quote's bid/ask band (alternating: targets are the current curve clipped into the
band). The correction is then scaled by the largest s in [0, 1] for which w_svi + s c keeps Durrleman's g >= 0 and
stays between the neighbouring expiries' total variances on the check grid: s = 0 is the SVI slice itself, which
already satisfies both, so the result is never less arbitrage-free than SVI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from models.volsurface.arbitrage import durrleman_g
from models.volsurface.svi import SVIParams

FloatArray = npt.NDArray[np.float64]
G_FLOOR = 1e-4
CAL_FLOOR = 1e-4


@dataclass(frozen=True)
class SmileCorrection:
    knots: FloatArray  # increasing; the first and last carry value 0 and slope 0
    values: FloatArray  # correction in total variance at the knots
    _spline: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        from scipy.interpolate import CubicSpline

        object.__setattr__(self, "_spline", CubicSpline(self.knots, self.values, bc_type="clamped"))

    def derivatives(self, k: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        kk = np.asarray(k, dtype=np.float64)
        inside = (kk > self.knots[0]) & (kk < self.knots[-1])
        out = []
        for nu in (0, 1, 2):
            v = np.zeros(kk.shape)
            if inside.any():
                v[inside] = self._spline(kk[inside], nu)
            out.append(v)
        return out[0], out[1], out[2]

    def w(self, k: npt.ArrayLike) -> FloatArray:
        return self.derivatives(k)[0]

    def scaled(self, s: float) -> SmileCorrection:
        return SmileCorrection(self.knots, self.values * s)

    def as_dict(self) -> dict[str, list[float]]:
        return {"knots": self.knots.tolist(), "values": self.values.tolist()}


def _svi_derivs(p: SVIParams, k: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    km = k - p.m
    root = np.sqrt(km * km + p.sigma * p.sigma)
    w = p.a + p.b * (p.rho * km + root)
    return w, p.b * (p.rho + km / root), p.b * p.sigma * p.sigma / root**3


def fit_correction(
    params: SVIParams,
    k: FloatArray,
    lo_w: FloatArray,
    hi_w: FloatArray,
    weight: FloatArray,
    grid: FloatArray,
    lower: Any | None = None,
    upper: Any | None = None,
    rounds: int = 6,
) -> SmileCorrection | None:
    """Correction for two-sided quotes at k with total-variance band [lo_w, hi_w]; None when SVI is already inside
    every band or no admissible correction helps. `lower` / `upper` are callables k -> w of the neighbouring
    expiries (calendar bounds)."""
    n = k.size
    w_svi = params.total_variance(k)
    if n < 6 or np.all((w_svi >= lo_w) & (w_svi <= hi_w)):
        return None
    kmin, kmax = float(np.min(k)), float(np.max(k))
    span = max(kmax - kmin, 1e-3)
    pad = 0.15 * span
    n_int = int(min(10, max(2, n // 3)))
    interior = np.quantile(k, np.linspace(0.0, 1.0, n_int))
    interior = np.unique(np.round(interior, 10))
    knots = np.concatenate([[kmin - pad], interior, [kmax + pad]])
    if np.any(np.diff(knots) <= 1e-9):
        return None
    m = interior.size
    from scipy.interpolate import CubicSpline

    eye = np.zeros((knots.size, m))
    eye[1:-1, :] = np.eye(m)
    basis = CubicSpline(knots, eye, bc_type="clamped", axis=0)(k)  # (n, m): the spline is linear in its values
    sw = np.sqrt(weight / np.mean(weight))
    a = basis * sw[:, None]
    width = hi_w - lo_w
    lo_in, hi_in = lo_w + width / 6.0, hi_w - width / 6.0
    ridge = 1e-3 * float(np.sum(a * a)) / m
    # smoothness: penalise second differences of the node values (with the zero ends)
    d2 = np.zeros((m, m))
    for i in range(m):
        d2[i, i] = -2.0
        if i > 0:
            d2[i, i - 1] = 1.0
        if i < m - 1:
            d2[i, i + 1] = 1.0
    lhs = a.T @ a + ridge * (np.eye(m) + d2.T @ d2)
    v = np.zeros(m)
    for _ in range(rounds):
        cur = w_svi + basis @ v
        target = np.clip(cur, lo_in, hi_in) - w_svi
        v = np.linalg.solve(lhs, a.T @ (sw * target))
    corr = SmileCorrection(knots, np.concatenate([[0.0], v, [0.0]]))
    # the largest admissible scale: g >= G_FLOOR on the grid and a fine grid over the quotes, calendar bounds kept
    kk = np.unique(np.concatenate([grid, np.linspace(knots[0], knots[-1], 241)]))
    w0, w1, w2 = _svi_derivs(params, kk)
    c0, c1, c2 = corr.derivatives(kk)
    lo_b = lower(kk) if lower is not None else None
    hi_b = upper(kk) if upper is not None else None
    # floors relative to the SVI slice itself (s = 0 always passes): where SVI already sits within the margin of a
    # bound, the correction may not move it any closer
    g_req = np.minimum(G_FLOOR, durrleman_g(kk, w0, w1, w2))
    lo_req = np.minimum(lo_b * (1.0 + CAL_FLOOR), w0) if lo_b is not None else None
    hi_req = np.maximum(hi_b * (1.0 - CAL_FLOOR), w0) if hi_b is not None else None

    def ok(s: float) -> bool:
        w = w0 + s * c0
        if np.any(w <= 0):
            return False
        if np.any(durrleman_g(kk, w, w1 + s * c1, w2 + s * c2) < g_req):
            return False
        if lo_req is not None and np.any(w < lo_req):
            return False
        return not (hi_req is not None and np.any(w > hi_req))

    if ok(1.0):
        return corr
    lo_s, hi_s = 0.0, 1.0
    for _ in range(8):
        mid = 0.5 * (lo_s + hi_s)
        if ok(mid):
            lo_s = mid
        else:
            hi_s = mid
    if lo_s <= 0.0:
        return None
    return corr.scaled(lo_s)
