"""One data directory, one owner: ``graphrun serve`` holds a lock on ``DATA_DIR/serve.lock``.

Two ``serve`` on one directory would run two embedded Redis servers on one append-only file beside
one SQLite database, and each one's sweeper would re-queue the other's executions. So ``serve``
takes this lock before it touches anything else in the directory, and a second one refuses to start.

The lock is ``flock`` on an open file, not a pid file: the kernel releases it when the last process
holding the file is gone, even by SIGKILL, so a killed ``serve`` never leaves a stale lock to clean
up by hand. The pid and address written into the file are only for the refusal message.

The processes ``serve`` starts that write in the directory (the embedded Redis, the workers) inherit
the locked file (``pass_fds``): the directory stays owned until the last of them has exited. After
a ``kill -9`` of ``serve`` alone they receive SIGTERM from the kernel (``die_with_parent``) and shut
down; a new ``serve`` waits for that instead of starting a second Redis on a file still in use.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from graphrun.errors import ConfigError

LOCK_NAME = "serve.lock"
# How long a new serve waits for what a killed one left running (workers finishing their
# executions' last writes, Redis flushing its append-only file) before it gives up.
ORPHAN_WAIT_S = 40.0

log = logging.getLogger("graphrun.serve")


class DataDirInUse(ConfigError):
    """Another ``graphrun serve`` (or what it started) owns the data directory."""


@dataclass(slots=True)
class DataDirLock:
    path: Path
    fd: int  # open, locked; pass it to the children that must keep the directory owned

    def record(self, address: str) -> None:
        """Tell a second serve who holds the directory (the message it prints names us)."""
        data = json.dumps({"pid": os.getpid(), "address": address}).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _owner(fd: int) -> tuple[int | None, str]:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        pid = info.get("pid")
        return (pid if isinstance(pid, int) else None), str(info.get("address") or "address unknown")
    except (OSError, ValueError, AttributeError):
        return None, "address unknown"


def _alive(pid: int) -> bool:
    """A zombie (killed, not yet reaped by its parent) counts as gone: it holds no files."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill()
    return stat.rpartition(")")[2].split()[0] != "Z"


def lock_data_dir(data_dir: Path, address: str, *, orphan_wait_s: float = ORPHAN_WAIT_S) -> DataDirLock:
    """Own ``data_dir`` for this process's life, or raise DataDirInUse naming who does."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    # No O_TRUNC: until we hold the lock, the content is the owner's, for our own message.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    deadline: float | None = None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            pid, where = _owner(fd)
            if pid is not None and _alive(pid):
                os.close(fd)
                raise DataDirInUse(
                    f"the data directory {data_dir.resolve()} is in use by graphrun serve "
                    f"(pid {pid}, listening on {where}); stop it first, or give this one another "
                    "GRAPHRUN_DATA_DIR"
                ) from None
            # The owner is gone (or has not written its pid yet) but a process it started still
            # holds the file: it is shutting down, since the kernel sent it SIGTERM.
            now = time.monotonic()
            if deadline is None:
                deadline = now + orphan_wait_s
                if pid is not None:
                    log.info("waiting for the processes of the stopped serve (pid %s) to exit", pid)
            elif now > deadline:
                os.close(fd)
                raise DataDirInUse(
                    f"the data directory {data_dir.resolve()} is still held by processes that "
                    f"graphrun serve (pid {pid or 'unknown'}) left running; stop them "
                    f"(`fuser -v {path.resolve()}` lists them)"
                ) from None
            time.sleep(0.1)
    lock = DataDirLock(path, fd)
    lock.record(address)
    return lock
