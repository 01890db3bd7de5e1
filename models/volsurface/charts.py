"""PNG charts (matplotlib Agg): smile per expiry with bid/ask/mark quotes and the fit, and the fitted surface."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from models.volsurface.surface import SurfaceFit


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_smiles(fit: SurfaceFit, path: str | Path) -> Path:
    """One panel per expiry: bid/ask IV bars, mark IV, SVI fit (and SSVI when present), in vol points vs strike."""
    plt = _plt()
    chain = fit.chain
    labels = np.array(chain.expiry_label)
    n = len(fit.surface.slices)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax, sl in zip(axes.ravel(), fit.surface.slices, strict=False):
        sel = labels == sl.label
        k = chain.log_moneyness[sel]
        strikes = chain.strike[sel]
        both = chain.has_both[sel]
        bid = chain.bid_iv[sel] * 100
        ask = chain.ask_iv[sel] * 100
        ax.vlines(strikes[both], bid[both], ask[both], color="0.6", lw=2.5, label="bid/ask IV")
        ax.plot(strikes, chain.mark_iv[sel] * 100, ".", color="tab:orange", ms=4, label="mark IV")
        kk = np.linspace(k.min() - 0.05, k.max() + 0.05, 200)
        kgrid = sl.forward * np.exp(kk)
        ax.plot(kgrid, np.sqrt(sl.total_variance(kk) / sl.t) * 100, color="tab:blue", lw=1.5, label="SVI")
        if fit.surface.ssvi is not None:
            w = fit.surface.ssvi.total_variance(kk, sl.t)
            ax.plot(kgrid, np.sqrt(w / sl.t) * 100, "--", color="tab:green", lw=1, label="SSVI")
        ax.axvline(sl.forward, color="0.85", lw=1)
        ax.set_title(f"{sl.label}  (T={sl.t * 365:.1f}d)", fontsize=9)
        ax.set_xlabel("strike")
        ax.set_ylabel("implied vol (%)")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    q = fit.quality
    fig.suptitle(
        f"{chain.underlying} smiles: within spread {q.within_spread_frac:.1%}, RMSE {q.rmse_vol_pts:.2f} vol pts, "
        f"arbitrage-free: {fit.arbitrage.arbitrage_free}",
        fontsize=11,
    )
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_surface(fit: SurfaceFit, path: str | Path) -> Path:
    """3-d surface of SVI implied vol over log-moneyness and expiry (interpolated between slices)."""
    plt = _plt()
    ts = fit.surface.t
    tt = np.linspace(ts[0], ts[-1], 40)
    kk = np.linspace(-0.6, 0.6, 61)
    K, T = np.meshgrid(kk, tt)
    iv = fit.surface.implied_vol_k(K, T) * 100
    fig = plt.figure(figsize=(8, 6))
    ax = fig.add_subplot(111, projection="3d")
    ax.plot_surface(K, T * 365, iv, cmap="viridis", linewidth=0, antialiased=True, alpha=0.9)
    ax.set_xlabel("log-moneyness ln(K/F)")
    ax.set_ylabel("days to expiry")
    ax.set_zlabel("implied vol (%)")
    ax.set_title(f"{fit.chain.underlying} SVI volatility surface")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def surface_chart_paths(path: str | Path) -> tuple[Path, Path]:
    """Smile chart at `path` and the surface chart next to it (`<stem>_surface.png`)."""
    p = Path(path)
    return p, p.with_name(p.stem + "_surface" + (p.suffix or ".png"))


def write_charts(fit: SurfaceFit, path: str | Path) -> list[Path]:
    smiles, surface = surface_chart_paths(path)
    return [plot_smiles(fit, smiles), plot_surface(fit, surface)]
