"""SSVI (Gatheral & Jacquier 2014) with the power-law curvature phi(theta) = eta theta^-gamma (1 + theta)^(gamma-1).

w(k, theta_t) = theta_t / 2 * (1 + rho phi k + sqrt((phi k + rho)^2 + 1 - rho^2)).
The surface is free of static arbitrage when theta_t is non-decreasing in t, 0 < gamma <= 1/2 and
eta (1 + |rho|) <= 2 (GJ 2014, section 4); the fit is parameterised so that these hold by construction:
eta = 2 u / (1 + |rho|) with 0 < u <= 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SSVIParams:
    rho: float
    eta: float
    gamma: float
    t: FloatArray  # expiries (years), increasing
    theta: FloatArray  # ATM total variance at each expiry, non-decreasing

    def phi(self, theta: npt.ArrayLike) -> FloatArray:
        th = np.asarray(theta, dtype=np.float64)
        return np.asarray(self.eta * th ** (-self.gamma) * (1.0 + th) ** (self.gamma - 1.0), dtype=np.float64)

    def theta_at(self, t: npt.ArrayLike) -> FloatArray:
        """ATM total variance at any t: linear in t between expiries (monotone), proportional to t outside."""
        tt = np.asarray(t, dtype=np.float64)
        inside = np.interp(tt, self.t, self.theta)
        before = self.theta[0] * tt / self.t[0]
        after = self.theta[-1] * tt / self.t[-1]
        return np.asarray(np.where(tt < self.t[0], before, np.where(tt > self.t[-1], after, inside)))

    def total_variance(self, k: npt.ArrayLike, t: npt.ArrayLike) -> FloatArray:
        th = self.theta_at(t)
        return ssvi_w(np.asarray(k, dtype=np.float64), th, self.rho, self.phi(th))

    def conditions(self) -> dict[str, bool]:
        return {
            "theta_non_decreasing": bool(np.all(np.diff(self.theta) >= 0)),
            "gamma_in_(0,1/2]": 0.0 < self.gamma <= 0.5,
            "eta(1+|rho|)<=2": self.eta * (1.0 + abs(self.rho)) <= 2.0 + 1e-12,
            "|rho|<1": abs(self.rho) < 1.0,
        }

    def arbitrage_free(self) -> bool:
        return all(self.conditions().values())

    def as_dict(self) -> dict[str, object]:
        return {
            "rho": self.rho,
            "eta": self.eta,
            "gamma": self.gamma,
            "t": self.t.tolist(),
            "theta": self.theta.tolist(),
        }


def ssvi_w(k: FloatArray, theta: FloatArray, rho: float, phi: FloatArray) -> FloatArray:
    pk = phi * k
    return np.asarray(0.5 * theta * (1.0 + rho * pk + np.sqrt((pk + rho) ** 2 + 1.0 - rho * rho)), dtype=np.float64)


def _unpack(x: FloatArray) -> tuple[float, float, float]:
    """Unconstrained x -> (rho, eta, gamma) inside the no-arbitrage region (see module docstring)."""
    rho = math.tanh(float(x[0]))
    u = 1.0 / (1.0 + math.exp(-float(x[1])))
    gamma = 0.5 / (1.0 + math.exp(-float(x[2])))
    return rho, 2.0 * u / (1.0 + abs(rho)), max(gamma, 1e-6)


class _Problem:
    """Weighted SSVI residuals and their analytic Jacobian in the unconstrained parameters.

    The analytic Jacobian replaces MINPACK's forward differences (3 extra residual evaluations per iteration), and
    the theta-only factors of phi are computed once per fit instead of once per evaluation."""

    def __init__(self, k: FloatArray, th_q: FloatArray, w: FloatArray, rs: FloatArray) -> None:
        self.k, self.th_q, self.w, self.rs = k, th_q, w, rs
        self.ln_th = np.log(th_q)
        self.ln_th1 = np.log1p(th_q)
        self.ln_ratio = self.ln_th1 - self.ln_th  # d ln(phi) / d gamma
        self.half_th_rs = 0.5 * th_q * rs

    def phi(self, eta: float, gamma: float) -> FloatArray:
        return np.asarray(eta * np.exp((gamma - 1.0) * self.ln_th1 - gamma * self.ln_th))

    def resid(self, x: FloatArray) -> FloatArray:
        rho, eta, gamma = _unpack(x)
        return np.asarray(self.rs * (ssvi_w(self.k, self.th_q, rho, self.phi(eta, gamma)) - self.w))

    def jac(self, x: FloatArray) -> FloatArray:
        rho, eta, gamma = _unpack(x)
        pk = self.phi(eta, gamma) * self.k
        root = np.sqrt((pk + rho) ** 2 + 1.0 - rho * rho)
        dw_drho = self.half_th_rs * pk * (1.0 + 1.0 / root)  # d/d rho with phi held fixed
        dw_dlnphi = self.half_th_rs * pk * (rho + (pk + rho) / root)  # phi * d/d phi
        rho_x = 1.0 - rho * rho  # d rho / d x0
        u = 1.0 / (1.0 + math.exp(-float(x[1])))
        g = 1.0 / (1.0 + math.exp(-float(x[2])))
        # eta = 2u / (1 + |rho|): d ln(eta)/d x0 = -sign(rho) rho_x / (1 + |rho|), d ln(eta)/d x1 = 1 - u
        dln_eta_x0 = -math.copysign(1.0, rho) * rho_x / (1.0 + abs(rho)) if rho != 0.0 else 0.0
        dgamma_x2 = 0.5 * g * (1.0 - g) if 0.5 * g > 1e-6 else 0.0  # zero where the 1e-6 floor binds
        out = np.empty((self.k.size, 3))
        out[:, 0] = dw_drho * rho_x + dw_dlnphi * dln_eta_x0
        out[:, 1] = dw_dlnphi * (1.0 - u)
        out[:, 2] = dw_dlnphi * self.ln_ratio * dgamma_x2
        return out


@dataclass(frozen=True)
class SSVIFit:
    params: SSVIParams
    rmse_w: float
    nfev: int


def fit_ssvi(
    k: npt.ArrayLike,
    t: npt.ArrayLike,
    w: npt.ArrayLike,
    theta_t: npt.ArrayLike,
    theta: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> SSVIFit:
    """Fit (rho, eta, gamma) to total variances w at (k, t) given ATM total variances theta at expiries theta_t.

    theta is made non-decreasing (running maximum) before the fit."""
    from scipy.optimize import least_squares

    k_ = np.asarray(k, dtype=np.float64)
    t_ = np.asarray(t, dtype=np.float64)
    w_ = np.asarray(w, dtype=np.float64)
    tt = np.asarray(theta_t, dtype=np.float64)
    order = np.argsort(tt)
    tt = tt[order]
    th = np.maximum.accumulate(np.maximum(np.asarray(theta, dtype=np.float64)[order], 1e-10))
    wt = np.ones_like(w_) if weights is None else np.asarray(weights, dtype=np.float64)
    ok = np.isfinite(k_) & np.isfinite(t_) & np.isfinite(w_) & (w_ > 0) & np.isfinite(wt) & (wt > 0)
    if ok.sum() < 4:
        raise ValueError("need at least 4 valid quotes to fit SSVI")
    k_, t_, w_, wt = k_[ok], t_[ok], w_[ok], wt[ok]
    probe = SSVIParams(0.0, 1.0, 0.5, tt, th)
    th_q = probe.theta_at(t_)
    sw = np.sqrt(wt / wt.mean())
    scale = float(np.mean(w_))

    prob = _Problem(k_, th_q, w_, sw / scale)

    def solve(x0: list[float]) -> Any:
        return least_squares(prob.resid, np.array(x0), jac=prob.jac, method="lm", max_nfev=300, xtol=1e-10, ftol=1e-12)

    best = solve([-0.2, 0.0, 0.0])
    if not best.success or not np.isfinite(best.cost):
        alt = solve([0.2, 1.0, 1.0])
        if alt.cost < best.cost:
            best = alt
    rho, eta, gamma = _unpack(best.x)
    params = SSVIParams(rho, eta, gamma, tt, th)
    rmse = float(np.sqrt(np.mean((params.total_variance(k_, t_) - w_) ** 2)))
    return SSVIFit(params, rmse, int(best.nfev))
