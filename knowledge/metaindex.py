"""An in-process index of the Chroma filter metadata (id, time, source, coins, events) as NumPy arrays.

Selective filtered searches use it to find the matching ids in about a millisecond and then ask Chroma for the
nearest among those ids (Chroma's own metadata pre-filter costs ~100 ms at 100k documents, and fetching ids from
the embedded Mongo ~20 us per id). The index is rebuilt from Chroma when this process changes the collection, when
the collection's count changes (checked at most every `check_s` seconds), and at least every `max_age_s` seconds,
so documents ingested by another process reach it within `check_s` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray


class MetaIndex:
    def __init__(self, collection: Any, *, page: int = 5000, check_s: float = 5.0, max_age_s: float = 600.0) -> None:
        self.col = collection
        self.page = page
        self.check_s = check_s
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._built_at = 0.0
        self._checked_at = 0.0
        self._count = -1
        self.ids: NDArray[Any] = np.array([], dtype=object)
        self.ts: NDArray[np.int64] = np.array([], dtype=np.int64)
        self.source: NDArray[Any] = np.array([], dtype=object)
        self._symbols: list[str] = []
        self._events: list[str] = []
        self._masks: dict[str, NDArray[np.bool_]] = {}

    @property
    def size(self) -> int:
        """Documents in the index as of the last `match`."""
        return len(self.ids)

    def invalidate(self) -> None:
        with self._lock:
            self._count = -1

    def _rebuild(self) -> None:
        ids: list[str] = []
        ts: list[int] = []
        src: list[str] = []
        syms: list[str] = []
        evs: list[str] = []
        offset = 0
        while True:
            got = self.col.get(include=["metadatas"], limit=self.page, offset=offset)
            batch = got["ids"]
            for i, m in zip(batch, got["metadatas"] or [], strict=False):
                m = m or {}
                ids.append(i)
                ts.append(int(m.get("published_ts", 0)))
                src.append(str(m.get("source", "")))
                syms.append("," + str(m.get("symbols", "")) + ",")
                evs.append("," + str(m.get("events", "")) + ",")
            if len(batch) < self.page:
                break
            offset += self.page
        self.ids = np.array(ids, dtype=object)
        self.ts = np.array(ts, dtype=np.int64)
        self.source = np.array(src, dtype=object)
        self._symbols, self._events, self._masks = syms, evs, {}
        self._count = len(ids)
        self._built_at = self._checked_at = time.monotonic()

    def _fresh(self) -> None:
        now = time.monotonic()
        if self._count >= 0 and now - self._built_at < self.max_age_s:
            if now - self._checked_at < self.check_s:
                return
            self._checked_at = now
            if int(self.col.count()) == self._count:
                return
        self._rebuild()

    def _tag_mask(self, kind: str, tag: str) -> NDArray[np.bool_]:
        key = f"{kind}:{tag}"
        mask = self._masks.get(key)
        if mask is None:
            values = self._symbols if kind == "sym" else self._events
            needle = f",{tag},"
            mask = np.fromiter((needle in v for v in values), dtype=bool, count=len(values))
            self._masks[key] = mask
        return mask

    def match(
        self,
        *,
        symbols: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        sources: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
    ) -> list[str]:
        """Ids whose metadata passes the filters (same semantics as `retrieval.build_where`)."""
        with self._lock:
            self._fresh()
            mask = np.ones(len(self.ids), dtype=bool)
            if symbols:
                any_sym = np.zeros(len(self.ids), dtype=bool)
                for s in symbols:
                    any_sym |= self._tag_mask("sym", s)
                mask &= any_sym
            if events:
                any_ev = np.zeros(len(self.ids), dtype=bool)
                for e in events:
                    any_ev |= self._tag_mask("ev", e)
                mask &= any_ev
            if sources:
                any_src = np.zeros(len(self.ids), dtype=bool)
                for src in sources:
                    key = f"src:{src}"
                    if key not in self._masks:
                        self._masks[key] = np.asarray(self.source == src, dtype=bool)
                    any_src |= self._masks[key]
                mask &= any_src
            if since is not None:
                mask &= self.ts >= int(since.timestamp())
            if until is not None:
                mask &= self.ts <= int(until.timestamp())
            return [str(i) for i in self.ids[mask]]
