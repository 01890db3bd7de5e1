"""Launcher for the embedded MongoDB-compatible server (nx-27017: MongoDB wire protocol on SQLite).

Used when MONGO_URI is not set: started as a subprocess on a free loopback port with its data under the data
directory, health-checked with a ping, and stopped on exit.
"""

from __future__ import annotations

import atexit
import contextlib
import socket
import subprocess  # nosec B404
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError


class EmbeddedMongoError(RuntimeError):
    """The embedded server could not be started; the message says why and how to fix it."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedMongo:
    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, timeout_s: float = 20.0) -> str:
        if self.process is not None and self.process.poll() is None:
            return self.uri
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        log_path = self.data_dir / "nx-27017.log"
        cmd = [
            sys.executable,
            "-m",
            "nx_27017.nx_27017",
            "--data-dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--pid-file",
            str(self.data_dir / f"nx-27017-{self.port}.pid"),
            "--log-file",
            str(log_path),
        ]
        try:
            self.process = subprocess.Popen(  # noqa: S603  # nosec B603
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise EmbeddedMongoError(f"cannot start embedded MongoDB (nx-27017): {exc}; set MONGO_URI instead") from exc
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout_s
        last_error = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace")
                raise EmbeddedMongoError(
                    f"embedded MongoDB (nx-27017) exited with code {self.process.returncode}: {err[-500:]}"
                    f" (log: {log_path}); set MONGO_URI to use another server"
                )
            try:
                client: MongoClient[dict[str, object]] = MongoClient(self.uri, serverSelectionTimeoutMS=300)
                client.admin.command("ping")
                client.close()
                return self.uri
            except PyMongoError as exc:
                last_error = str(exc)
                time.sleep(0.1)
        self.stop()
        raise EmbeddedMongoError(
            f"embedded MongoDB (nx-27017) did not answer within {timeout_s:.0f}s on port {self.port}: {last_error}"
        )

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()

    def kill(self) -> None:
        """SIGKILL the server (fault-injection tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
