"""The strategy interface shared by backtests, paper and live trading.

A strategy turns candles into *target positions*: a weight per symbol, a fraction of account equity
(+1 = fully long, -1 = fully short, 0 = flat). It never places orders; the runner turns changes of the target into
order intents, the risk gate decides, and a fill model (backtest, paper) or an exchange (live) executes.

Two entry points, one piece of code:
- `targets(data)` computes the target for every bar of a history at once (causal: the value at bar i uses
  candles up to and including bar i only). Backtests and parameter sweeps use this.
- `on_bar(candle)` feeds one closed candle at a time (paper and live). The default implementation keeps a bounded
  history and evaluates `targets` on it, so the live path runs exactly the code the backtest ran. A stateful
  strategy (entries/exits with hysteresis) gives the same answer as long as `history` covers its memory.
- `on_tick(price)` is for strategies that react inside a bar; bar strategies keep their last target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from trading.types import Candle

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Bars:
    """Columnar candles of one symbol (float64 arrays of equal length, oldest first)."""

    timestamp_ms: npt.NDArray[np.int64]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    symbol: str = ""

    def __post_init__(self) -> None:
        n = len(self.close)
        for name in ("timestamp_ms", "open", "high", "low", "volume"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"bars column {name} has {len(getattr(self, name))} rows, close has {n}")

    def __len__(self) -> int:
        return len(self.close)

    @classmethod
    def from_candles(cls, candles: Sequence[Candle], symbol: str = "") -> Bars:
        return cls(
            timestamp_ms=np.fromiter((c.timestamp_ms for c in candles), dtype=np.int64, count=len(candles)),
            open=np.fromiter((c.open for c in candles), dtype=np.float64, count=len(candles)),
            high=np.fromiter((c.high for c in candles), dtype=np.float64, count=len(candles)),
            low=np.fromiter((c.low for c in candles), dtype=np.float64, count=len(candles)),
            close=np.fromiter((c.close for c in candles), dtype=np.float64, count=len(candles)),
            volume=np.fromiter((c.volume for c in candles), dtype=np.float64, count=len(candles)),
            symbol=symbol,
        )

    @classmethod
    def from_close(cls, close: Sequence[float] | FloatArray, symbol: str = "", step_ms: int = 3_600_000) -> Bars:
        """Bars from closes only (open = previous close, high/low = max/min of the two, a large volume)."""
        c = np.asarray(close, dtype=np.float64)
        o = np.concatenate([c[:1], c[:-1]])
        return cls(
            timestamp_ms=np.arange(len(c), dtype=np.int64) * step_ms,
            open=o,
            high=np.maximum(o, c),
            low=np.minimum(o, c),
            close=c,
            volume=np.full(len(c), 1e12),
            symbol=symbol,
        )

    def slice(self, start: int, stop: int) -> Bars:
        return Bars(
            self.timestamp_ms[start:stop], self.open[start:stop], self.high[start:stop], self.low[start:stop],
            self.close[start:stop], self.volume[start:stop], self.symbol,
        )


@dataclass(frozen=True)
class ParamSpec:
    """One tunable parameter with its declared range (the search never leaves it)."""

    name: str
    kind: Literal["int", "float", "bool", "choice"]
    default: Any
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()
    doc: str = ""

    def validate(self, value: Any) -> Any:
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"parameter {self.name} must be true or false, got {value!r}")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"parameter {self.name} must be one of {list(self.choices)}, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"parameter {self.name} must be a number, got {value!r}")
        if self.kind == "int":
            if float(value) != int(value):
                raise ValueError(f"parameter {self.name} must be an integer, got {value!r}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"parameter {self.name} must be finite, got {value!r}")
        if self.low is not None and value < self.low:
            raise ValueError(f"parameter {self.name}={value} is below its range [{self.low}, {self.high}]")
        if self.high is not None and value > self.high:
            raise ValueError(f"parameter {self.name}={value} is above its range [{self.low}, {self.high}]")
        return value

    def grid(self, points: int) -> list[Any]:
        """Evenly spaced values across the declared range (for grid search)."""
        if self.kind == "bool":
            return [False, True]
        if self.kind == "choice":
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            vals = np.unique(np.round(np.linspace(self.low, self.high, max(points, 1))).astype(int))
            return [int(v) for v in vals]
        return [float(v) for v in np.linspace(self.low, self.high, max(points, 1))]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "default": self.default}
        if self.kind in ("int", "float"):
            out.update(low=self.low, high=self.high)
        if self.kind == "choice":
            out["choices"] = list(self.choices)
        if self.doc:
            out["doc"] = self.doc
        return out


@dataclass
class StrategyState:
    """What a running strategy remembers between bars (kept small and JSON-able for persistence)."""

    bars_seen: int = 0
    last_target: tuple[float, ...] = ()
    last_timestamp_ms: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Strategy:
    """Base class. Subclasses declare `name`, `family`, `PARAMS`, and implement `_targets`."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    description: ClassVar[str] = ""
    n_symbols: ClassVar[int] = 1  # 2 for pairs
    PARAMS: ClassVar[tuple[ParamSpec, ...]] = ()

    def __init__(self, periods_per_year: float = 8760.0, history: int = 2000, **params: Any) -> None:
        specs = {p.name: p for p in self.PARAMS}
        unknown = sorted(set(params) - set(specs))
        if unknown:
            raise ValueError(f"unknown parameter(s) for {self.name}: {', '.join(unknown)}; known: {', '.join(specs)}")
        values = {p.name: p.default for p in self.PARAMS}
        for key, val in params.items():
            values[key] = specs[key].validate(val)
        self.params: dict[str, Any] = values
        self.check_params(values)
        if periods_per_year <= 0:
            raise ValueError("periods_per_year must be positive")
        self.periods_per_year = float(periods_per_year)
        self.history = max(int(history), self.warmup() + 2)
        self.state = StrategyState()
        self._buffers: list[list[Candle]] = [[] for _ in range(self.n_symbols)]

    # --- declared interface -------------------------------------------------------------------------------
    @classmethod
    def param_specs(cls) -> tuple[ParamSpec, ...]:
        return cls.PARAMS

    def check_params(self, params: Mapping[str, Any]) -> None:
        """Cross-parameter constraints (e.g. fast < slow). Raise ValueError with a readable message."""

    def warmup(self) -> int:
        """Bars needed before the first non-flat target."""
        return 1

    def _targets(self, data: Sequence[Bars]) -> FloatArray:
        raise NotImplementedError

    # --- vectorised history ---------------------------------------------------------------------------------
    def targets(self, data: Bars | Sequence[Bars]) -> FloatArray:
        """Target weights, shape (n_bars, n_symbols); NaN-free, causal."""
        seq: list[Bars] = [data] if isinstance(data, Bars) else list(data)
        if len(seq) != self.n_symbols:
            raise ValueError(f"{self.name} needs {self.n_symbols} symbol(s), got {len(seq)}")
        n = len(seq[0])
        if any(len(b) != n for b in seq):
            raise ValueError("all symbols must have the same number of bars (align them first)")
        out = np.asarray(self._targets(seq), dtype=np.float64)
        if out.ndim == 1:
            out = out.reshape(-1, 1)
        if out.shape != (n, self.n_symbols):
            raise AssertionError(f"{self.name} returned targets of shape {out.shape}, expected {(n, self.n_symbols)}")
        if not np.isfinite(out).all():
            out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
        return out

    # --- streaming (paper / live) ---------------------------------------------------------------------------
    def on_bar(self, candle: Candle | Sequence[Candle]) -> tuple[float, ...]:
        """Feed one closed candle (a sequence of one per symbol for pairs); returns the current target weights."""
        candles: list[Candle] = [candle] if isinstance(candle, Candle) else list(candle)
        if len(candles) != self.n_symbols:
            raise ValueError(f"{self.name} needs {self.n_symbols} candle(s) per bar, got {len(candles)}")
        ts = candles[0].timestamp_ms
        if self.state.last_timestamp_ms is not None and ts <= self.state.last_timestamp_ms:
            # a repeated or out-of-order candle changes nothing (feeds can redeliver)
            return self.state.last_target
        for buf, c in zip(self._buffers, candles, strict=True):
            buf.append(c)
            if len(buf) > self.history:
                del buf[: len(buf) - self.history]
        bars = [Bars.from_candles(buf) for buf in self._buffers]
        last = self.targets(bars)[-1]
        self.state.bars_seen += 1
        self.state.last_timestamp_ms = ts
        self.state.last_target = tuple(float(x) for x in last)
        return self.state.last_target

    def on_tick(self, price: float | Sequence[float]) -> tuple[float, ...]:
        """Bar strategies ignore intrabar ticks and keep their last target."""
        return self.state.last_target or tuple(0.0 for _ in range(self.n_symbols))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "symbols": self.n_symbols,
            "params": dict(self.params),
            "param_specs": [p.to_json() for p in self.PARAMS],
        }
