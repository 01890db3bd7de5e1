"""Optional numba: `njit` compiles when numba is importable, otherwise it returns the plain Python function.

The vectorised NumPy paths in this package never need numba; the compiled kernels are the fast path.
"""

from __future__ import annotations

import struct
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


def float_bits(x: float) -> int:
    """The IEEE-754 bit pattern of a float64 as an int64 (a no-op bitcast when compiled)."""
    return int(struct.unpack("<q", struct.pack("<d", x))[0])


def bits_float(i: int) -> float:
    """The float64 with bit pattern i (the inverse of float_bits)."""
    return float(struct.unpack("<d", struct.pack("<q", i))[0])


if _numba is not None:
    prange = _numba.prange  # type: ignore[assignment]

    from numba import types as _types
    from numba.extending import intrinsic as _intrinsic

    @_intrinsic  # type: ignore[misc]
    def _f2i(typingctx: Any, x: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.bitcast(args[0], context.get_value_type(_types.int64))

        return _types.int64(_types.float64), codegen

    @_intrinsic  # type: ignore[misc]
    def _i2f(typingctx: Any, i: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.bitcast(args[0], context.get_value_type(_types.float64))

        return _types.float64(_types.int64), codegen

    # Compiled code calls the intrinsics; interpreted code keeps the struct versions.
    from numba.extending import overload as _overload

    @_overload(float_bits, inline="always")  # type: ignore[misc]
    def _ol_float_bits(x):  # type: ignore[no-untyped-def]  # numba matches the signature, annotations included
        return lambda x: _f2i(x)  # type: ignore[call-arg]

    @_overload(bits_float, inline="always")  # type: ignore[misc]
    def _ol_bits_float(i):  # type: ignore[no-untyped-def]
        return lambda i: _i2f(i)  # type: ignore[call-arg]
