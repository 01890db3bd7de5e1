"""Optional numba: `njit` compiles when numba is importable, otherwise it returns the plain Python function.

The vectorised NumPy paths in this package never need numba; the compiled kernels are the fast path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_numba: Any
try:  # pragma: no cover - exercised implicitly by whichever environment runs the tests
    import numba as _numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    _numba = None
    HAVE_NUMBA = False

# Only flags that cannot change results for finite inputs: fused multiply-add contraction and no signed zeros.
# (No 'nnan'/'ninf': the kernels rely on NaN checks; no 'reassoc'/'afn': they would cost accuracy.)
FASTMATH = {"contract", "nsz"}


def njit(*, parallel: bool = False, inline: bool = False) -> Callable[[F], F]:
    def wrap(fn: F) -> F:
        if _numba is None:
            return fn
        opts: dict[str, Any] = {"cache": True, "fastmath": FASTMATH, "nogil": True, "error_model": "numpy"}
        if parallel:
            opts["parallel"] = True
        if inline:
            opts["inline"] = "always"
        return _numba.njit(**opts)(fn)  # type: ignore[no-any-return]

    return wrap


def prange(n: int) -> range:
    """`numba.prange` inside compiled kernels; plain `range` when interpreted."""
    return range(n)


if _numba is not None:
    prange = _numba.prange  # type: ignore[assignment]
