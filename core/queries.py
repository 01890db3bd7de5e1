"""Query shapes that every MongoDB server reads alike but the embedded one serves very differently."""

from __future__ import annotations

from typing import Any


def eq(**fields: Any) -> dict[str, Any]:
    """An equality filter written with `$eq`.

    nx-27017 (the embedded server) compiles a bare `{"field": value}` into a per-row check that ignores compound
    indexes: on 100,000 candles a latest-candle lookup took 97 ms bare and 0.6 ms with `$eq`, and 50 upserts 4.3 s
    against 12 ms. MongoDB treats both forms the same, and an upsert fills the `$eq` fields into the new document on
    both servers.
    """
    return {name: {"$eq": value} for name, value in fields.items()}
