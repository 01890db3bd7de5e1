"""Write-behind for a desk's bookkeeping writes (conversation turns, the usage ledger): off the request path, in order.

A request queues its writes and returns; one worker thread per desk applies them in the order they were queued.
What a queued write changes is visible to this process before it reaches the database: the owners (the conversation
store, the usage ledger) keep it in memory until the worker reports it settled.

Guarantees:
- Order: one worker, first in first out.
- Backpressure: at most `max_pending` writes wait; a request that would queue more waits up to `put_timeout_s` for
  room, then fails with `WriteBacklogFull` (a `PyMongoError`, so the API answers 503 as for any database outage).
- A write that fails because the database cannot be reached is retried (backoff up to 2 s) until it succeeds or the
  writer is closed and its deadline passes. An insert that fails with a duplicate key was applied by an earlier
  attempt and counts as done; any other error cannot be cured by retrying: it is logged with the write's label and
  dropped.
- `close()` (the app's shutdown, and `atexit` for every writer still open) waits until everything queued is written
  or the deadline passes; what is still unwritten then is logged as lost, by label. After `close()` writes run
  inline on the caller's thread, as if there were no writer.
- A process that dies without shutting down (SIGKILL, power loss) loses what was queued and not yet written:
  normally the last few milliseconds of turns, more while the database is unreachable.

Nothing on the money path goes through here: the audit log, proposals and approvals are written synchronously.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

log = logging.getLogger(__name__)

IDLE_EXIT_S = 5.0  # an idle worker thread ends; the next write starts another (desks built in tests leave none)
RETRY_MAX_S = 2.0


class WriteBacklogFull(PyMongoError):
    """Too many writes wait for the database: the request is refused rather than memory growing without bound."""


@dataclass(frozen=True)
class Write:
    label: str
    apply: Callable[[], object]
    settle: Callable[[], None]  # called once, after the write is applied or given up: the owner drops its copy


class WriteBehind:
    def __init__(self, name: str, *, max_pending: int = 1000, put_timeout_s: float = 10.0) -> None:
        self.name = name
        self.max_pending = max_pending
        self.put_timeout_s = put_timeout_s
        self._queue: deque[Write] = deque()  # the head stays queued while it is being applied
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._deadline: float | None = None  # set by close(): retries stop after it
        self._applied = 0
        self._lost = 0
        self._before_close: list[Callable[[], None]] = []
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- producer side -----------------------------------------------------------------------------------
    def submit(self, label: str, apply: Callable[[], object], settle: Callable[[], None]) -> None:
        """Queue a write. Once this returns the write is this writer's responsibility."""
        write = Write(label, apply, settle)
        with self._cond:
            if not self._closed:
                deadline = time.monotonic() + self.put_timeout_s
                while len(self._queue) >= self.max_pending:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closed:
                        break
                    self._cond.wait(left)
                if len(self._queue) < self.max_pending and not self._closed:
                    self._queue.append(write)
                    if self._thread is None:
                        self._thread = threading.Thread(target=self._run, name=f"write-behind-{self.name}", daemon=True)
                        self._thread.start()
                    self._cond.notify_all()
                    return
                if not self._closed:
                    raise WriteBacklogFull(
                        f"{len(self._queue)} writes are waiting for the database (limit {self.max_pending})"
                    )
        try:  # closed: the caller's thread writes, and sees the error as it would without a writer
            apply()
        except DuplicateKeyError:
            pass
        finally:
            settle()

    def before_close(self, hand_over: Callable[[], None]) -> None:
        """`hand_over` runs first thing in `close()`: owners that batch in memory queue what they hold."""
        self._before_close.append(hand_over)

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or given up); False if the timeout passed first."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queue:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout_s: float = 10.0) -> int:
        """Write what is queued (retrying for up to `timeout_s`), then write inline from now on; returns the number
        of writes lost (queued and never written)."""
        with self._cond:
            if self._closed or self._deadline is not None:
                return self._lost
            self._deadline = time.monotonic() + timeout_s
            self._cond.notify_all()
        for hand_over in self._before_close:
            try:
                hand_over()
            except Exception:  # one owner's failure must not keep the others' writes from going out
                log.exception("%s: handing over batched writes failed", self.name)
        self.flush(timeout_s + 1.0)
        with self._cond:
            self._closed = True
            left = list(self._queue)
            self._queue.clear()
            self._lost += len(left)
            self._cond.notify_all()
        for write in left:  # the worker is stuck in one write past its deadline: give up on the rest
            write.settle()
        if left:
            labels = [w.label for w in left]
            log.error("%s: %d writes not confirmed written at shutdown: %s", self.name, len(left), labels)
        return self._lost

    # -- worker side -------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    if not self._cond.wait(IDLE_EXIT_S) and not self._queue:
                        self._thread = None
                        return
                write = self._queue[0]
            ok = self._apply(write)
            with self._cond:
                if self._queue and self._queue[0] is write:
                    self._queue.popleft()
                    if ok:
                        self._applied += 1
                    else:
                        self._lost += 1
                    self._cond.notify_all()
                    settled = True
                else:  # close() gave up on it and settled it already
                    settled = False
            if settled:
                write.settle()

    def _apply(self, write: Write) -> bool:
        delay = 0.05
        while True:
            try:
                write.apply()
                return True
            except DuplicateKeyError:
                return True  # an earlier attempt was applied before its acknowledgement was lost
            except ConnectionFailure as exc:
                with self._cond:
                    deadline = self._deadline
                if deadline is not None and time.monotonic() >= deadline:
                    log.error("%s: gave up on %s at shutdown: %s", self.name, write.label, exc)
                    return False
                log.warning("%s: %s not written yet (%s); retrying", self.name, write.label, exc)
                with self._cond:  # close() wakes this wait so that retries are bounded by its deadline
                    self._cond.wait(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
                delay = min(delay * 2, RETRY_MAX_S)
            except Exception:
                log.exception("%s: %s failed and cannot succeed by retrying; dropped", self.name, write.label)
                return False


def _close_at_exit(ref: weakref.ref[WriteBehind]) -> None:
    writer = ref()
    if writer is not None:
        writer.close(timeout_s=5.0)
