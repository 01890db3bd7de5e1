"""Synthetic option chains with known SVI smiles (no dependency on shared data)."""

from __future__ import annotations

import numpy as np
import pytest

from models.volsurface import OptionChain, SVIParams

# Calendar-consistent slices: total variance grows with t at every k.
TRUE_SLICES = [
    (7 / 365, SVIParams(0.0020, 0.030, -0.20, 0.01, 0.05)),
    (30 / 365, SVIParams(0.0100, 0.080, -0.25, 0.02, 0.10)),
    (90 / 365, SVIParams(0.0300, 0.130, -0.30, 0.03, 0.20)),
    (180 / 365, SVIParams(0.0600, 0.180, -0.30, 0.04, 0.30)),
]
FORWARD = 9350.0
SNAPSHOT_MS = 1_589_435_000_000


def make_chain(noise: float = 0.0, half_spread: float = 0.01, seed: int = 0) -> OptionChain:
    rng = np.random.default_rng(seed)
    labels, ts, ks, calls, fwds, bids, asks, marks = [], [], [], [], [], [], [], []
    for i, (t, p) in enumerate(TRUE_SLICES):
        width = 0.25 + 1.2 * np.sqrt(t)
        k = np.linspace(-width, width, 21)
        iv = np.sqrt(p.total_variance(k) / t)
        mid = iv * (1 + noise * rng.standard_normal(k.size))
        for kk, m, v in zip(k, mid, iv, strict=True):
            for call in (True, False):
                labels.append(f"E{i}")
                ts.append(t)
                ks.append(FORWARD * np.exp(kk))
                calls.append(call)
                fwds.append(FORWARD)
                bids.append(m - half_spread)
                asks.append(m + half_spread)
                marks.append(v)
    return OptionChain(
        labels,
        np.array(ts),
        np.array(ks),
        np.array(calls),
        np.array(fwds),
        np.array(bids),
        np.array(asks),
        np.array(marks),
        "BTC",
    )


def chain_to_csv(chain: OptionChain) -> str:
    header = (
        "snapshot_ts_ms,instrument_name,option_type,strike,expiry_ts_ms,expiry_utc,underlying_price,"
        "bid_iv,ask_iv,mark_iv"
    )
    rows = [header]
    for i in range(len(chain)):
        exp_ms = SNAPSHOT_MS + chain.t[i] * 365 * 86_400_000
        kind = "call" if chain.is_call[i] else "put"
        rows.append(
            f"{SNAPSHOT_MS},BTC-X-{chain.strike[i]:.0f}-{kind[0].upper()},{kind},{float(chain.strike[i])!r},{float(exp_ms)!r},"
            f"{chain.expiry_label[i]},{float(chain.forward[i])!r},{float(chain.bid_iv[i] * 100)!r},"
            f"{float(chain.ask_iv[i] * 100)!r},"
            f"{float(chain.mark_iv[i] * 100)!r}"
        )
    return "\n".join(rows) + "\n"


@pytest.fixture()
def synthetic_chain() -> OptionChain:
    return make_chain()


@pytest.fixture()
def synthetic_csv(tmp_path, synthetic_chain):
    path = tmp_path / "chain.csv"
    path.write_text(chain_to_csv(synthetic_chain))
    return path
