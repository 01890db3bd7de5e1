"""The embedded MongoDB-compatible server (nx-27017: MongoDB wire protocol on SQLite), supervised.

Used when MONGO_URI is not set: started as a subprocess on a free loopback port with its data under the data
directory, health-checked with a ping, and stopped on exit. Four rules keep one healthy server per data directory:

- **One per data directory.** The process that starts the server holds an exclusive `flock` on
  `<data_dir>/nx-27017.lock` for as long as it runs and records the server in `<data_dir>/nx-27017.json` (owner
  pid, server pid, port). Another process on the same directory (the CLI while `serve` runs, a second `serve`)
  finds the lock held and *attaches* to the running server instead of starting a second one on the same files; if
  that server does not answer, it refuses with a message naming the owner.
- **No orphan.** The server is spawned from the supervisor thread (which lives as long as the process) with
  `PR_SET_PDEATHSIG`: when the owner dies, even by SIGKILL, the kernel sends the server SIGTERM. And a process that
  takes the lock stops a server left behind by a dead owner (found through the state file) before starting its
  own.
- **Supervised.** A server that dies unexpectedly is restarted on the same port and files (backoff 0.2 s doubling
  to 5 s, reset after a minute up), so the clients' connection pools reconnect on their own.
- **Reported.** `status()` says whether the server is up, how often it was restarted and why it last died;
  `/health` answers 503 naming the store when it does not answer.

`kill()` is fault injection: it SIGKILLs the server *and* stands the supervisor down until `start()` (an outage the
test controls). A server killed from outside is restarted.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess  # nosec B404
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)

LOCK_FILE = "nx-27017.lock"
STATE_FILE = "nx-27017.json"
BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 5.0
STABLE_AFTER_S = 60.0  # a server up this long resets the backoff


class EmbeddedMongoError(RuntimeError):
    """The embedded server could not be started; the message says why and how to fix it."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Run first in the child: ask the kernel for SIGTERM when the spawning thread (the supervisor) dies, exit if it is
# already gone, then exec the server (the death signal survives exec). A wrapper instead of `preexec_fn`, which is
# unsafe in a threaded parent.
_DIE_WITH_PARENT = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(1, 15, 0, 0, 0)\n"  # PR_SET_PDEATHSIG, SIGTERM
    "os.getppid() == int(sys.argv[1]) or sys.exit(3)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_server(pid: int, data_dir: Path) -> bool:
    """True if `pid` runs nx-27017 on `data_dir` (so that a recycled pid is never signalled)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in cmdline]
    return any("nx_27017" in a for a in args) and str(data_dir) in args


def _ping(uri: str, timeout_ms: int = 300) -> str | None:
    """None if the server at `uri` answers a ping, else why not."""
    client: MongoClient[dict[str, Any]] = MongoClient(
        uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
    )
    try:
        client.admin.command("ping")
        return None
    except PyMongoError as exc:
        return str(exc)
    finally:
        client.close()


@dataclass
class EmbeddedMongo:
    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    restarts: int = field(default=0, init=False)  # unexpected deaths the supervisor restarted
    last_exit: str | None = field(default=None, init=False)
    owner_pid: int | None = field(default=None, init=False)  # set when attached to another process's server
    _lock_fd: IO[str] | None = field(default=None, init=False, repr=False)
    _supervisor: threading.Thread | None = field(default=None, init=False, repr=False)
    _wanted: bool = field(default=False, init=False, repr=False)  # the supervisor keeps a server running
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)
    _spawn_error: BaseException | None = field(default=None, init=False, repr=False)
    _generation: int = field(default=0, init=False, repr=False)  # servers spawned so far
    _atexit: bool = field(default=False, init=False, repr=False)

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @property
    def attached(self) -> bool:
        """True when this process uses a server another process owns (it neither supervises nor stops it)."""
        return self.owner_pid is not None

    @property
    def pid(self) -> int | None:
        proc = self.process
        return proc.pid if proc is not None and proc.poll() is None else None

    # ------------------------------------------------------------------ start
    def start(self, timeout_s: float = 20.0) -> str:
        """Start (or attach to) the data directory's server and return its URI once it answers a ping."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.attached:
            return self._attach(timeout_s)
        if self._lock_fd is None and not self._take_lock():
            return self._attach(timeout_s)
        with self._cond:
            if self._wanted and self.pid is not None:
                return self.uri
            self._wanted = True
            self._spawn_error = None
            target = self._generation + 1
            if self._supervisor is None or not self._supervisor.is_alive():
                self._supervisor = threading.Thread(target=self._supervise, name="nx-27017-supervisor", daemon=True)
                self._supervisor.start()
            else:
                self._cond.notify_all()
            ok = self._cond.wait_for(lambda: self._generation >= target or self._spawn_error is not None, timeout_s)
            error = self._spawn_error
        if error is not None:
            self.stop()
            raise error
        if not ok:
            self.stop()
            raise EmbeddedMongoError(f"embedded MongoDB (nx-27017) did not start within {timeout_s:.0f}s")
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        return self.uri

    def _take_lock(self) -> bool:
        """Take the data directory's lock; stop a server a dead owner left behind. False if a live process owns it."""
        fd = open(self.data_dir / LOCK_FILE, "a+")  # held open (and locked) for the life of the server
        try:
            fcntl.flock(fd.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fd.close()
            return False
        self._lock_fd = fd
        self._stop_orphan()
        return True

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads((self.data_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_state(self, server_pid: int | None) -> None:
        state = {"owner_pid": os.getpid(), "server_pid": server_pid, "port": self.port}
        tmp = self.data_dir / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state))
        tmp.replace(self.data_dir / STATE_FILE)

    def _stop_orphan(self) -> None:
        pid = int(self._read_state().get("server_pid") or 0)
        if pid <= 0 or pid == self.pid or not _alive(pid) or not _is_our_server(pid, self.data_dir):
            return
        log.warning("stopping embedded MongoDB pid %d left behind by a dead owner on %s", pid, self.data_dir)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _attach(self, timeout_s: float) -> str:
        """Use the server the lock's owner runs; wait for it while it starts; refuse if it never answers."""
        deadline = time.monotonic() + timeout_s
        last = "no state file"
        while True:
            state = self._read_state()
            owner = int(state.get("owner_pid") or 0)
            port = int(state.get("port") or 0)
            if port and state.get("server_pid"):
                uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
                why = _ping(uri)
                if why is None:
                    self.port, self.owner_pid = port, owner
                    return self.uri
                last = why
            if time.monotonic() >= deadline:
                raise EmbeddedMongoError(
                    f"the data directory {self.data_dir} belongs to process {owner or '?'}, whose embedded MongoDB "
                    f"(port {port or '?'}) does not answer ({last[:200]}); stop that process or set MONGO_URI"
                )
            # the owner may be gone (its lock released): take over
            if self._take_lock():
                self.owner_pid = None
                return self.start(max(1.0, deadline - time.monotonic()))
            time.sleep(0.1)

    # ------------------------------------------------------------------ supervision
    def _spawn(self) -> subprocess.Popen[bytes]:
        if not self.port:
            self.port = free_port()
        wrapper = [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid())] if sys.platform.startswith("linux") else []
        cmd = [
            *wrapper,
            sys.executable, "-m", "nx_27017.nx_27017",
            "--data-dir", str(self.data_dir),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--pid-file", str(self.data_dir / f"nx-27017-{self.port}.pid"),
            "--log-file", str(self.data_dir / "nx-27017.log"),
        ]
        try:
            # its own session: a Ctrl-C or a signal to the owner's process group does not take the store down before
            # the owner has flushed its writes; the owner stops it last (and the kernel when the owner dies)
            proc = subprocess.Popen(  # noqa: S603  # nosec B603
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
            )
        except OSError as exc:
            raise EmbeddedMongoError(f"cannot start embedded MongoDB (nx-27017): {exc}; set MONGO_URI instead") from exc
        self._write_state(proc.pid)
        return proc

    def _wait_ready(self, proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace")
                raise EmbeddedMongoError(
                    f"embedded MongoDB (nx-27017) exited with code {proc.returncode}: {err[-500:]}"
                    f" (log: {self.data_dir / 'nx-27017.log'}); set MONGO_URI to use another server"
                )
            why = _ping(self.uri)
            if why is None:
                return
            last = why
            time.sleep(0.1)
        _terminate(proc)
        raise EmbeddedMongoError(
            f"embedded MongoDB (nx-27017) did not answer within {timeout_s:.0f}s on port {self.port}: {last}"
        )

    def _supervise(self) -> None:
        """Keep a server running while one is wanted: spawn, wait for its exit, restart with backoff."""
        backoff = BACKOFF_START_S
        first = True
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wanted)
            started = time.monotonic()
            try:
                proc = self._spawn()
                self.process = proc
                self._wait_ready(proc)
            except BaseException as exc:  # reported to start(), or retried when it is a restart
                with self._cond:
                    self.process = None
                    if first or not self._wanted:
                        self._wanted = False
                        self._spawn_error = exc
                        self._cond.notify_all()
                        first = True
                        continue
                log.error("embedded MongoDB restart failed (%s); retrying in %.1fs", exc, backoff)
                time.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            with self._cond:
                first = False
                self._generation += 1
                self._cond.notify_all()
            code = proc.wait()
            if proc.stderr:
                with contextlib.suppress(OSError):
                    proc.stderr.close()
            with self._cond:
                if not self._wanted:
                    continue
                self.restarts += 1
                self.last_exit = f"exited with code {code} after {time.monotonic() - started:.1f}s"
            if time.monotonic() - started > STABLE_AFTER_S:
                backoff = BACKOFF_START_S
            log.error("embedded MongoDB (nx-27017) %s; restarting in %.1fs", self.last_exit, backoff)
            time.sleep(backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2)

    # ------------------------------------------------------------------ status and stop
    def status(self) -> dict[str, Any]:
        """Up or down, whose server, restarts and the last unexpected exit (for /health and /ready)."""
        why = _ping(self.uri) if self.port else "not started"
        return {
            "up": why is None,
            "error": why,
            "port": self.port,
            "pid": self.pid,
            "owner_pid": self.owner_pid or os.getpid(),
            "attached": self.attached,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
        }

    def _stand_down(self) -> subprocess.Popen[bytes] | None:
        with self._cond:
            self._wanted = False
            proc, self.process = self.process, None
            self._cond.notify_all()
        return proc

    def stop(self) -> None:
        """Stop the server (the owner) or forget it (an attached process), and release the data directory."""
        if self.attached:
            self.owner_pid = None
            return
        proc = self._stand_down()
        if proc is not None:
            _terminate(proc)
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                (self.data_dir / STATE_FILE).unlink()
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd.fileno(), fcntl.LOCK_UN)
            self._lock_fd.close()
            self._lock_fd = None

    def kill(self) -> None:
        """Fault injection: SIGKILL the server and keep it down (the supervisor stands by) until `start()`."""
        proc = self._stand_down()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
    if proc.stderr:
        with contextlib.suppress(OSError):
            proc.stderr.close()
