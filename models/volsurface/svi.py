"""Raw SVI smiles: w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2)), w = total implied variance, k = ln(K/F).

Calibration is the quasi-explicit method of Zeliade (2009): for fixed (m, sigma) the model is linear in
(a, d, c) = (a, rho b sigma, b sigma) through y = (k - m) / sigma, so the inner problem is a 3-variable weighted
least squares over the polytope 0 <= |d| <= c, |d| <= 4 sigma - c, a <= max(w) and
a >= |d| - c (a linear inner bound of the minimum variance a + sqrt(c^2 - d^2) >= 0) (solved exactly by enumerating
active sets), and only (m, sigma) are searched, with Nelder-Mead. The butterfly condition (Durrleman's
g(k) >= 0) and, when a shorter-expiry slice is given, the calendar condition w(k) >= w_prev(k) are enforced as
penalties on a strike grid and verified afterwards; a final 5-parameter polish removes any remaining violation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.pricing._jit import njit

FloatArray = npt.NDArray[np.float64]

PENALTY = 1e6
G_MARGIN = 1e-4  # the fit keeps g(k) >= G_MARGIN on its grid, so the check between grid points still finds g >= 0
CAL_MARGIN = 1e-4  # and w <= (1 - CAL_MARGIN) w_longer
POLISH_NFEV = 60  # residual evaluations of the 5-parameter polish (it runs only when a condition is violated)
SIGMA_MIN = 1e-3
SIGMA_MAX = 3.0


@dataclass(frozen=True)
class SVIParams:
    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def as_array(self) -> FloatArray:
        return np.array([self.a, self.b, self.rho, self.m, self.sigma])

    def as_dict(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "rho": self.rho, "m": self.m, "sigma": self.sigma}

    def total_variance(self, k: npt.ArrayLike) -> FloatArray:
        return svi_w(self.as_array(), np.asarray(k, dtype=np.float64))

    def g(self, k: npt.ArrayLike) -> FloatArray:
        return svi_g(self.as_array(), np.asarray(k, dtype=np.float64))

    def min_variance(self) -> float:
        return self.a + self.b * self.sigma * math.sqrt(max(1.0 - self.rho * self.rho, 0.0))


def svi_w(p: FloatArray, k: FloatArray) -> FloatArray:
    a, b, rho, m, s = p
    km = k - m
    return np.asarray(a + b * (rho * km + np.sqrt(km * km + s * s)), dtype=np.float64)


def svi_g(p: FloatArray, k: FloatArray) -> FloatArray:
    """Durrleman's butterfly function; the density is non-negative where g >= 0 (and w > 0)."""
    a, b, rho, m, s = p
    km = k - m
    root = np.sqrt(km * km + s * s)
    w = a + b * (rho * km + root)
    w1 = b * (rho + km / root)
    w2 = b * s * s / root**3
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (1.0 - k * w1 / (2.0 * w)) ** 2 - w1 * w1 / 4.0 * (1.0 / w + 0.25) + w2 / 2.0
    return np.asarray(np.where(w > 0, g, -np.inf), dtype=np.float64)


# ----------------------------------------------------------------------------------------------- compiled core


@njit()
def _solve_kkt(h: FloatArray, g: FloatArray, act: FloatArray, bact: FloatArray, m: int, out: FloatArray) -> bool:
    """min p'Hp - 2g'p s.t. act[:m] p = bact[:m] via the KKT system (Gaussian elimination, partial pivoting)."""
    n = 3 + m
    mat = np.zeros((6, 7))
    for i in range(3):
        for j in range(3):
            mat[i, j] = h[i, j]
        mat[i, n] = g[i]
    for r in range(m):
        for j in range(3):
            mat[3 + r, j] = act[r, j]
            mat[j, 3 + r] = act[r, j]
        mat[3 + r, n] = bact[r]
    for col in range(n):
        piv = col
        best = abs(mat[col, col])
        for r in range(col + 1, n):
            if abs(mat[r, col]) > best:
                best = abs(mat[r, col])
                piv = r
        if best < 1e-14:
            return False
        if piv != col:
            for j in range(n + 1):
                tmp = mat[col, j]
                mat[col, j] = mat[piv, j]
                mat[piv, j] = tmp
        for r in range(col + 1, n):
            f = mat[r, col] / mat[col, col]
            if f != 0.0:
                for j in range(col, n + 1):
                    mat[r, j] -= f * mat[col, j]
    sol = np.zeros(6)
    for i in range(n - 1, -1, -1):
        acc = mat[i, n]
        for j in range(i + 1, n):
            acc -= mat[i, j] * sol[j]
        sol[i] = acc / mat[i, i]
    for i in range(3):
        out[i] = sol[i]
    return True


@njit()
def _inner(
    k: FloatArray, w: FloatArray, wt: FloatArray, m: float, s: float, wmax: float, wfloor: float, out: FloatArray
) -> float:
    """Best (a, d, c) for fixed (m, sigma); returns the weighted sum of squared errors."""
    h = np.zeros((3, 3))
    g = np.zeros(3)
    ww = 0.0
    for i in range(k.shape[0]):
        y = (k[i] - m) / s
        z = math.sqrt(y * y + 1.0)
        v0 = 1.0
        v1 = y
        v2 = z
        wi = wt[i]
        h[0, 0] += wi * v0 * v0
        h[0, 1] += wi * v0 * v1
        h[0, 2] += wi * v0 * v2
        h[1, 1] += wi * v1 * v1
        h[1, 2] += wi * v1 * v2
        h[2, 2] += wi * v2 * v2
        g[0] += wi * v0 * w[i]
        g[1] += wi * v1 * w[i]
        g[2] += wi * v2 * w[i]
        ww += wi * w[i] * w[i]
    h[1, 0] = h[0, 1]
    h[2, 0] = h[0, 2]
    h[2, 1] = h[1, 2]
    # constraints rows . (a, d, c) <= rhs
    rows = np.array(
        [
            [0.0, 1.0, -1.0],
            [0.0, -1.0, -1.0],
            [0.0, 1.0, 1.0],
            [0.0, -1.0, 1.0],
            [-1.0, 1.0, -1.0],
            [-1.0, -1.0, -1.0],
            [1.0, 0.0, 0.0],
        ]
    )
    rhs = np.array([0.0, 0.0, 4.0 * s, 4.0 * s, -wfloor, -wfloor, wmax])
    nc = 7
    best = math.inf
    p = np.zeros(3)
    act = np.zeros((3, 3))
    bact = np.zeros(3)
    tol = 1e-12 * (1.0 + wmax)
    # unconstrained first, then every active set of 1..3 constraints
    for size in range(4):
        found = False
        if size == 0:
            combos = np.zeros((1, 3), dtype=np.int64)
        elif size == 1:
            combos = np.zeros((nc, 3), dtype=np.int64)
            for i in range(nc):
                combos[i, 0] = i
        elif size == 2:
            combos = np.zeros((nc * (nc - 1) // 2, 3), dtype=np.int64)
            c = 0
            for i in range(nc):
                for j in range(i + 1, nc):
                    combos[c, 0] = i
                    combos[c, 1] = j
                    c += 1
        else:
            combos = np.zeros((nc * (nc - 1) * (nc - 2) // 6, 3), dtype=np.int64)
            c = 0
            for i in range(nc):
                for j in range(i + 1, nc):
                    for m3 in range(j + 1, nc):
                        combos[c, 0] = i
                        combos[c, 1] = j
                        combos[c, 2] = m3
                        c += 1
        for ci in range(combos.shape[0]):
            for r in range(size):
                for j in range(3):
                    act[r, j] = rows[combos[ci, r], j]
                bact[r] = rhs[combos[ci, r]]
            if not _solve_kkt(h, g, act, bact, size, p):
                continue
            feasible = True
            for r in range(nc):
                if rows[r, 0] * p[0] + rows[r, 1] * p[1] + rows[r, 2] * p[2] > rhs[r] + tol:
                    feasible = False
                    break
            if not feasible:
                continue
            f = ww
            for i in range(3):
                f -= 2.0 * g[i] * p[i]
                for j in range(3):
                    f += p[i] * h[i, j] * p[j]
            if f < best:
                best = f
                out[0] = p[0]
                out[1] = p[1]
                out[2] = p[2]
                found = True
        if size == 0 and found:
            return best
    return best


@njit()
def _to_raw(adc: FloatArray, m: float, s: float, out: FloatArray) -> None:
    a, d, c = adc[0], adc[1], adc[2]
    b = c / s
    rho = d / c if c > 0.0 else 0.0
    out[0] = a
    out[1] = b
    out[2] = min(max(rho, -0.999999), 0.999999)
    out[3] = m
    out[4] = s


@njit()
def _penalty(p: FloatArray, grid: FloatArray, wprev: FloatArray, use_prev: bool, wnext: FloatArray) -> float:
    a, b, rho, m, s = p[0], p[1], p[2], p[3], p[4]
    pen = 0.0
    for j in range(grid.shape[0]):
        k = grid[j]
        km = k - m
        root = math.sqrt(km * km + s * s)
        w = a + b * (rho * km + root)
        if w <= 0.0:
            pen += 1.0 + w * w
            continue
        w1 = b * (rho + km / root)
        w2 = b * s * s / (root * root * root)
        gk = (1.0 - k * w1 / (2.0 * w)) ** 2 - w1 * w1 / 4.0 * (1.0 / w + 0.25) + w2 / 2.0
        if gk < G_MARGIN:
            pen += (gk - G_MARGIN) ** 2 + 1e-8
        if use_prev and w < wprev[j]:
            d = wprev[j] - w
            pen += d * d + 1e-10
        cap = wnext[j] * (1.0 - CAL_MARGIN)
        if w > cap:
            d = w - cap
            pen += d * d + 1e-10
    return pen


@njit()
def _objective(
    x0: float,
    x1: float,
    k: FloatArray,
    w: FloatArray,
    wt: FloatArray,
    wmax: float,
    wmin: float,
    mlo: float,
    mhi: float,
    grid: FloatArray,
    wprev: FloatArray,
    use_prev: bool,
    wnext: FloatArray,
    raw: FloatArray,
) -> float:
    m = x0
    s = x1
    if m < mlo or m > mhi or s < SIGMA_MIN or s > SIGMA_MAX:
        return math.inf
    adc = np.zeros(3)
    f = _inner(k, w, wt, m, s, wmax, 1e-3 * wmin, adc)
    if not f < math.inf:
        return math.inf
    _to_raw(adc, m, s, raw)
    return f + PENALTY * _penalty(raw, grid, wprev, use_prev, wnext)


@njit()
def _nelder_mead(
    start: FloatArray,
    step: FloatArray,
    k: FloatArray,
    w: FloatArray,
    wt: FloatArray,
    wmax: float,
    wmin: float,
    mlo: float,
    mhi: float,
    grid: FloatArray,
    wprev: FloatArray,
    use_prev: bool,
    wnext: FloatArray,
    max_eval: int,
    out: FloatArray,
) -> tuple[float, int]:
    raw = np.zeros(5)
    pts = np.zeros((3, 2))
    fv = np.zeros(3)
    pts[0, 0] = start[0]
    pts[0, 1] = start[1]
    pts[1, 0] = start[0] + step[0]
    pts[1, 1] = start[1]
    pts[2, 0] = start[0]
    pts[2, 1] = start[1] + step[1]
    for i in range(3):
        fv[i] = _objective(pts[i, 0], pts[i, 1], k, w, wt, wmax, wmin, mlo, mhi, grid, wprev, use_prev, wnext, raw)
    nev = 3
    while nev < max_eval:
        # order
        for i in range(3):
            for j in range(2 - i):
                if fv[j + 1] < fv[j]:
                    tf = fv[j]
                    fv[j] = fv[j + 1]
                    fv[j + 1] = tf
                    for d in range(2):
                        tp = pts[j, d]
                        pts[j, d] = pts[j + 1, d]
                        pts[j + 1, d] = tp
        size = (
            abs(pts[1, 0] - pts[0, 0])
            + abs(pts[2, 0] - pts[0, 0])
            + abs(pts[1, 1] - pts[0, 1])
            + abs(pts[2, 1] - pts[0, 1])
        )
        if size < 1e-7 or (fv[2] - fv[0]) <= 1e-12 * (abs(fv[0]) + 1e-20):
            break
        cx = 0.5 * (pts[0, 0] + pts[1, 0])
        cy = 0.5 * (pts[0, 1] + pts[1, 1])
        rx = cx + (cx - pts[2, 0])
        ry = cy + (cy - pts[2, 1])
        fr = _objective(rx, ry, k, w, wt, wmax, wmin, mlo, mhi, grid, wprev, use_prev, wnext, raw)
        nev += 1
        if fr < fv[0]:
            ex = cx + 2.0 * (cx - pts[2, 0])
            ey = cy + 2.0 * (cy - pts[2, 1])
            fe = _objective(ex, ey, k, w, wt, wmax, wmin, mlo, mhi, grid, wprev, use_prev, wnext, raw)
            nev += 1
            if fe < fr:
                pts[2, 0] = ex
                pts[2, 1] = ey
                fv[2] = fe
            else:
                pts[2, 0] = rx
                pts[2, 1] = ry
                fv[2] = fr
        elif fr < fv[1]:
            pts[2, 0] = rx
            pts[2, 1] = ry
            fv[2] = fr
        else:
            if fr < fv[2]:
                qx = cx + 0.5 * (rx - cx)
                qy = cy + 0.5 * (ry - cy)
            else:
                qx = cx + 0.5 * (pts[2, 0] - cx)
                qy = cy + 0.5 * (pts[2, 1] - cy)
            fq = _objective(qx, qy, k, w, wt, wmax, wmin, mlo, mhi, grid, wprev, use_prev, wnext, raw)
            nev += 1
            if fq < min(fr, fv[2]):
                pts[2, 0] = qx
                pts[2, 1] = qy
                fv[2] = fq
            else:
                for i in range(1, 3):
                    pts[i, 0] = pts[0, 0] + 0.5 * (pts[i, 0] - pts[0, 0])
                    pts[i, 1] = pts[0, 1] + 0.5 * (pts[i, 1] - pts[0, 1])
                    fv[i] = _objective(
                        pts[i, 0], pts[i, 1], k, w, wt, wmax, wmin, mlo, mhi, grid, wprev, use_prev, wnext, raw
                    )
                    nev += 1
    best = 0
    for i in range(3):
        if fv[i] < fv[best]:
            best = i
    f = _objective(pts[best, 0], pts[best, 1], k, w, wt, wmax, wmin, mlo, mhi, grid, wprev, use_prev, wnext, raw)
    for i in range(5):
        out[i] = raw[i]
    return f, nev


@njit()
def _fit_core(
    k: FloatArray,
    w: FloatArray,
    wt: FloatArray,
    grid: FloatArray,
    wprev: FloatArray,
    use_prev: bool,
    wnext: FloatArray,
    max_eval: int,
    start_m: float,
    start_s: float,
    out: FloatArray,
) -> float:
    wmax = 0.0
    kmin = math.inf
    kmax = -math.inf
    imin = 0
    for i in range(k.shape[0]):
        if w[i] > wmax:
            wmax = w[i]
        if w[i] < w[imin]:
            imin = i
        kmin = min(kmin, k[i])
        kmax = max(kmax, k[i])
    span = max(kmax - kmin, 0.05)
    mlo = kmin - span
    mhi = kmax + span
    best = math.inf
    cand = np.zeros(5)
    start = np.zeros(2)
    step = np.zeros(2)
    warm = start_s > 0.0  # a warm start (one run); start_s = -n asks for n cold starts (1 to 3)
    for trial in range(1 if warm else max(1, min(3, int(-start_s)))):
        if warm:
            start[0] = min(max(start_m, mlo), mhi)
            start[1] = min(max(start_s, SIGMA_MIN * 2), SIGMA_MAX * 0.9)
            step[0] = 0.03 * span
            step[1] = 0.2 * start[1]
        else:
            start[0] = k[imin] if trial != 2 else 0.5 * (kmin + kmax)
            start[1] = (0.1, 0.4, 0.05)[trial] * span
            if start[1] < SIGMA_MIN * 2:
                start[1] = SIGMA_MIN * 2
            step[0] = 0.1 * span
            step[1] = 0.5 * start[1]
        f, _ = _nelder_mead(
            start, step, k, w, wt, wmax, w[imin], mlo, mhi, grid, wprev, use_prev, wnext, max_eval, cand
        )
        if f < best:
            best = f
            for i in range(5):
                out[i] = cand[i]
    return best


# ------------------------------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class SVIFit:
    params: SVIParams
    objective: float
    butterfly_free: bool
    calendar_ok: bool
    min_g: float


def check_grid(k: FloatArray) -> FloatArray:
    lo = float(min(np.min(k), -0.05))
    hi = float(max(np.max(k), 0.05))
    span = hi - lo
    return np.linspace(lo - 0.5 * span - 0.5, hi + 0.5 * span + 0.5, 121)


def fit_svi(
    k: npt.ArrayLike,
    w: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    *,
    grid: npt.ArrayLike | None = None,
    prev: SVIParams | None = None,
    upper: SVIParams | None = None,
    band: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    start: SVIParams | None = None,
    max_eval: int = 400,
    band_rounds: int = 2,
    cold_starts: int = 3,
) -> SVIFit:
    """Fit raw SVI to total variances `w` at log-moneyness `k` (weighted least squares in w).

    `prev`, the slice of a shorter expiry, adds the calendar condition w >= w_prev on `grid`; `upper`, the slice of
    a longer expiry, adds w <= w_upper. `band` = (lo, hi) total variances (bid and ask; NaN or inf = open side)
    turns the objective into the distance to the band: after a fit to `w`, each target is moved to the fitted value
    clipped into the band (shrunk by a sixth of its width at each side and blended 10 % toward `w`), and the fit
    repeats warm-started `band_rounds` times, so quotes already inside their spread stop pulling on the fit.
    `start` warm-starts the (m, sigma) search (one Nelder-Mead run instead of three).
    """
    k_ = np.ascontiguousarray(k, dtype=np.float64)
    w_ = np.ascontiguousarray(w, dtype=np.float64)
    if k_.ndim != 1 or k_.shape != w_.shape:
        raise ValueError("k and w must be 1-d arrays of the same length")
    ok = np.isfinite(k_) & np.isfinite(w_) & (w_ > 0)
    if weights is None:
        wt_ = np.ones_like(k_)
    else:
        wt_ = np.ascontiguousarray(np.broadcast_to(np.asarray(weights, dtype=np.float64), k_.shape))
        ok &= np.isfinite(wt_) & (wt_ > 0)
    lo_ = hi_ = None
    if band is not None:
        lo_ = np.broadcast_to(np.asarray(band[0], dtype=np.float64), k_.shape)
        hi_ = np.broadcast_to(np.asarray(band[1], dtype=np.float64), k_.shape)
        lo_ = np.where(np.isfinite(lo_), lo_, -np.inf)[ok]
        hi_ = np.where(np.isfinite(hi_), hi_, np.inf)[ok]
    k_, w_, wt_ = k_[ok], w_[ok], wt_[ok]
    if k_.size < 5:
        raise ValueError(f"need at least 5 valid quotes to fit SVI, got {k_.size}")
    wt_ = np.ascontiguousarray(wt_ / wt_.mean())
    g_ = check_grid(k_) if grid is None else np.ascontiguousarray(grid, dtype=np.float64)
    wprev = np.ascontiguousarray(prev.total_variance(g_) if prev is not None else np.zeros_like(g_))
    wnext = np.ascontiguousarray(upper.total_variance(g_) if upper is not None else np.full_like(g_, np.inf))
    out = np.zeros(5)
    sm, ss = (start.m, start.sigma) if start is not None else (0.0, -float(cold_starts))
    f = _fit_core(k_, w_, wt_, g_, wprev, prev is not None, wnext, max_eval, sm, ss, out)
    if lo_ is not None and hi_ is not None:
        width = np.where(np.isfinite(hi_ - lo_), hi_ - lo_, 0.0)
        lo_in = np.where(np.isfinite(lo_), lo_ + width / 6.0, -np.inf)
        hi_in = np.where(np.isfinite(hi_), hi_ - width / 6.0, np.inf)
        for _ in range(band_rounds):
            model = svi_w(out, k_)
            target = np.ascontiguousarray(0.9 * np.clip(model, lo_in, hi_in) + 0.1 * w_)
            cand = np.zeros(5)
            fc = _fit_core(k_, target, wt_, g_, wprev, prev is not None, wnext, max_eval // 2, out[3], out[4], cand)
            if not np.isfinite(fc):
                break
            out = cand
            f = fc
    params = SVIParams(*(float(v) for v in out))
    pen = float(_penalty(out, g_, wprev, prev is not None, wnext))
    if pen > 0.0:
        params = _polish(params, k_, w_, wt_, g_, wprev, prev is not None, wnext)
    gmin = float(np.min(params.g(g_)))
    wg = params.total_variance(g_)
    cal_ok = bool(np.all(wg >= wprev - 1e-12)) and bool(np.all(wg <= wnext + 1e-12))
    return SVIFit(params, float(f), gmin >= -1e-10 and params.min_variance() > 0, cal_ok, gmin)


def _polish(
    p0: SVIParams,
    k: FloatArray,
    w: FloatArray,
    wt: FloatArray,
    grid: FloatArray,
    wprev: FloatArray,
    use_prev: bool,
    wnext: FloatArray,
) -> SVIParams:
    """Full 5-parameter least squares with hard-ish penalties, used only when the quasi-explicit fit violates a
    no-arbitrage condition on the grid."""
    from scipy.optimize import least_squares

    sw = np.sqrt(wt)
    scale = float(np.mean(w))
    capped = np.isfinite(wnext)

    def resid(x: FloatArray) -> FloatArray:
        p = np.array([x[0], x[1], np.tanh(x[2]), x[3], abs(x[4]) + SIGMA_MIN])
        model = svi_w(p, k)
        fit = sw * (model - w) / scale
        gg = svi_g(p, grid)
        gg = np.where(np.isfinite(gg), gg, -1.0)
        minvar = p[0] + p[1] * p[4] * np.sqrt(1.0 - p[2] ** 2)
        pen = [1e3 * np.minimum(gg - 1e-6, 0.0), [1e3 * min(minvar / scale - 1e-4, 0.0)]]
        wg = svi_w(p, grid)
        if use_prev:
            pen.append(1e4 * np.minimum(wg - wprev - 1e-9, 0.0) / scale)
        if capped.any():
            pen.append(1e4 * np.minimum(wnext[capped] - wg[capped] - 1e-9, 0.0) / scale)
        return np.concatenate([fit, *pen])

    x0 = np.array([p0.a, p0.b, np.arctanh(np.clip(p0.rho, -0.999, 0.999)), p0.m, p0.sigma])
    res = least_squares(resid, x0, method="trf", max_nfev=POLISH_NFEV, x_scale="jac")
    x = res.x
    p = SVIParams(float(x[0]), float(abs(x[1])), float(np.tanh(x[2])), float(x[3]), float(abs(x[4]) + SIGMA_MIN))
    if use_prev:
        # a residual calendar overlap left by the soft penalty: lift the slice by it (a constant shift in w)
        gap = float(np.max(wprev - p.total_variance(grid)))
        if gap > 0:
            lifted = SVIParams(p.a + gap * (1 + 1e-9) + 1e-14, p.b, p.rho, p.m, p.sigma)
            if np.min(lifted.g(grid)) >= np.min(p.g(grid)) or np.min(lifted.g(grid)) >= 0:
                p = lifted
    if capped.any():
        # a residual overlap above the longer expiry: lower the slice by it, if that keeps w > 0 and g >= 0
        gap = float(np.max(p.total_variance(grid)[capped] - wnext[capped]))
        if gap > 0:
            lowered = SVIParams(p.a - gap * (1 + 1e-9) - 1e-14, p.b, p.rho, p.m, p.sigma)
            if lowered.min_variance() > 0 and np.min(lowered.g(grid)) >= 0:
                p = lowered
    return p
