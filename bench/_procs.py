"""The benchmarks' view of processes from outside, through psutil: memory, CPU time (per process,
per thread, of the whole machine), children and sockets; and starting, waiting for and stopping the
servers under test. Imports nothing of graphrun's, so that the load generator can use it cheaply."""

from __future__ import annotations

import contextlib
import json
import resource
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil


def rss_kib(pid: int) -> int:
    """Resident memory (VmRSS) in KiB; 0 for a process that is gone."""
    try:
        return int(psutil.Process(pid).memory_info().rss // 1024)
    except psutil.Error:
        return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used; 0 for a process that is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU time of each thread of a process, by thread id (the main thread's is the pid)."""
    try:
        return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}
    except psutil.Error:
        return {}


def machine_busy_seconds() -> float:
    """CPU time the whole machine (all cores) spent not idle and not waiting for I/O."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0))


def descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def exe_name(pid: int) -> str:
    try:
        return Path(psutil.Process(pid).exe()).name
    except psutil.Error:
        return ""


def tcp_connections(pid: int, remote_port: int) -> int:
    """Established TCP connections from ``pid`` to ``remote_port`` (its Redis connections)."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return 0
    return sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.raddr and c.raddr.port == remote_port)


def pg_backends(database: str) -> list[int]:
    """The PostgreSQL backends on this machine connected to ``database``, found by the title each
    backend gives itself ("postgres: 15/main: <user> <database> <client> <state>"), so that no
    connection to the server is needed. The cluster's own processes (WAL writer, checkpointer) serve
    every database and are not counted."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        words = " ".join(proc.info["cmdline"] or []).split()
        if words[:1] == ["postgres:"] and database in words[2:]:
            found.append(proc.pid)
    return found


def raise_nofile() -> int:
    """Raise the open-files limit to the hard limit (thousands of sockets); returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def http_json(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_ok(url: str, popen: subprocess.Popen[Any], what: str, log_tail: Callable[[], str], timeout_s: float) -> None:
    """Poll ``url`` until it answers 200; raise with the server's log if it exits or takes too long."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{what} exited with {popen.returncode}:\n{log_tail()}")
        with contextlib.suppress(OSError, ValueError):
            if http_json("GET", url, timeout=1)[0] == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout_s:.0f} s:\n{log_tail()}")


def stop(popen: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
    """Ask a process to stop with ``sig``; kill it if it has not within ``timeout_s``."""
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            popen.send_signal(sig)
    try:
        popen.wait(timeout_s)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(10)


class ChurningGroup:
    """CPU time of a set of processes that come and go while it is measured (PostgreSQL backends: a
    pool opens connections under load and closes its overflow), found again by ``find`` at every
    ``sample``. A process first seen after ``start`` was born in the window and counts from zero; one
    that exits takes with it what it used since its last sample, so the caller samples often."""

    def __init__(self, find: Callable[[], list[int]]) -> None:
        self.find = find
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}

    def start(self) -> None:
        self._first = {pid: cpu_seconds(pid) for pid in self.find()}
        self._last = dict(self._first)

    def sample(self) -> None:
        for pid in self.find():
            used = cpu_seconds(pid)
            if used:
                self._last[pid] = used

    def used(self) -> float:
        self.sample()
        return sum(last - self._first.get(pid, 0.0) for pid, last in self._last.items())


class CpuShare:
    """CPU time between ``start`` and ``stop``, as a share of one core: of each group of processes
    (fixed lists, or ``churning`` groups found again while measuring: call ``sample`` often), of this
    process (under ``own``), and of everything else the machine did meanwhile ("other": other users
    of this shared machine, the kernel), which says how far the figures can be trusted."""

    def __init__(
        self, groups: dict[str, list[int]], own: str, churning: dict[str, ChurningGroup] | None = None
    ) -> None:
        self.groups = groups
        self.own = own
        self.churning = churning or {}
        self._start: tuple[float, float, dict[str, float], float] | None = None

    def _groups(self) -> dict[str, float]:
        fixed = {group: sum(cpu_seconds(p) for p in pids) for group, pids in self.groups.items()}
        return {**fixed, **{group: churn.used() for group, churn in self.churning.items()}}

    def sample(self) -> None:
        for churn in self.churning.values():
            churn.sample()

    def start(self) -> None:
        for churn in self.churning.values():
            churn.start()
        self._start = (time.perf_counter(), time.process_time(), self._groups(), machine_busy_seconds())

    def stop(self) -> dict[str, float]:
        if self._start is None:
            return {}
        t0, own0, groups0, machine0 = self._start
        wall = time.perf_counter() - t0
        used = {g: s - groups0[g] for g, s in self._groups().items()}
        own = time.process_time() - own0
        other = machine_busy_seconds() - machine0 - sum(used.values()) - own
        return {**{g: s / wall for g, s in used.items()}, self.own: own / wall, "other": max(0.0, other / wall)}
