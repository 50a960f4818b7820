"""The servers that the LangGraph conformance suite drives through `langgraph_sdk`, each started as
its users start it, from the project in tests/lgproject/:

- ``serve``: `graphrun serve` in the project folder (it finds langgraph.json in its working directory);
- ``fleet``: `graphrun api` under Gunicorn (2 processes) and 2 `graphrun worker` processes, on the
  test session's Redis with a prefix of their own and PostgreSQL when reachable (else a SQLite file),
  the project named by GRAPHRUN_CONFIG;
- ``reference``: LangGraph's own `langgraph dev`, from the venv named by GRAPHRUN_TEST_REFERENCE_VENV
  (default bench/.peer-venv, where `make test-reference` installs it); skipped when it is absent.

Every start waits on a condition (the server answers, the workers listen), bounded by the suite's
time factor; every stop sends the process its stop signal, then kills it if it does not exit."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from graphrun.redis.embedded import free_port
from graphrun.redis.keys import Keys
from tests.helpers import scaled

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "tests" / "lgproject"
REFERENCE_VENV = Path(os.environ.get("GRAPHRUN_TEST_REFERENCE_VENV", ROOT / "bench" / ".peer-venv"))
REFERENCE_MISSING = "reference server not installed: run make test-reference"

GRAPHRUN_TARGETS = ("serve", "fleet")
ALL_TARGETS = [*GRAPHRUN_TARGETS, pytest.param("reference", marks=pytest.mark.reference)]

# Fast leases so that a killed worker's run is taken over within the test's time.
FAST_RECOVERY = {
    "GRAPHRUN_LEASE_S": "2",
    "GRAPHRUN_SWEEP_INTERVAL_S": "0.5",
    "GRAPHRUN_REQUEUE_AFTER_S": "3",
    "GRAPHRUN_START_GRACE_MS": "0",
}


@dataclass
class Proc:
    """A server process with its log file; started in a session of its own so that a stop that
    comes to killing reaches the children it made too."""

    name: str
    args: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    popen: subprocess.Popen[bytes] = field(init=False)
    _log: IO[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.start()

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.popen = subprocess.Popen(
            self.args, env=self.env, cwd=self.cwd, stdout=self._log, stderr=self._log, start_new_session=True
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crash; the process's own children are left to notice their parent's end."""
        self.popen.kill()
        self.popen.wait(scaled(10))
        self._log.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop_all([self], sig)

    def _reap(self) -> None:
        """Wait for a process already signalled; its whole group is killed if it takes too long."""
        try:
            self.popen.wait(scaled(15))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(scaled(10))
        self._log.close()


def stop_all(procs: list[Proc], sig: int = signal.SIGTERM) -> None:
    """Signal every process first, then wait for each: they shut down side by side."""
    for proc in procs:
        if proc.alive():
            proc.popen.send_signal(sig)
    for proc in procs:
        proc._reap()


@dataclass
class Target:
    kind: str
    url: str
    procs: list[Proc]
    workers: list[Proc] = field(default_factory=list)
    redis_url: str | None = None
    prefix: str | None = None

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log()[-6000:]}" for p in [*self.procs, *self.workers])


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without its graphrun settings (the test's own choices only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHRUN_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


def _poll(condition: Any, seconds: float, what: str, procs: list[Proc]) -> Any:
    """Poll ``condition()`` until it is truthy; fail if a process died or after ``scaled(seconds)``."""
    deadline = time.monotonic() + scaled(seconds)
    while True:
        for proc in procs:
            if not proc.alive():
                raise AssertionError(
                    f"{proc.name} exited ({proc.popen.returncode}) while {what}:\n{proc.log()[-6000:]}"
                )
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            logs = "\n".join(p.log()[-4000:] for p in procs)
            raise AssertionError(f"timed out after {scaled(seconds):.0f} s {what}:\n{logs}")
        time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_workers_listening(redis_url: str, prefix: str, count: int, procs: list[Proc]) -> None:
    """Every worker process subscribes to the cancel channel once it is ready to take work."""
    import redis

    channel = Keys(prefix).cancel_channel
    probe = redis.Redis.from_url(redis_url)
    try:

        def listening() -> bool:
            return int(dict(probe.pubsub_numsub(channel)).get(channel.encode(), 0)) >= count

        _poll(listening, 60, f"waiting for {count} worker(s) to listen", procs)
    finally:
        probe.close()


@contextlib.contextmanager
def serve(tmp: Path) -> Iterator[Target]:
    port = free_port()
    env = _clean_env(
        GRAPHRUN_PORT=str(port),
        GRAPHRUN_DATA_DIR=str(tmp / "data"),
        GRAPHRUN_LOG_LEVEL="WARNING",
        # Not the API's port: serve's worker must leave it alone.
        GRAPHRUN_WORKER_METRICS_PORT=str(port),
    )
    proc = Proc("serve", [sys.executable, "-m", "graphrun", "serve"], env, PROJECT, tmp / "serve.log")
    try:
        url = f"http://127.0.0.1:{port}"
        _poll(lambda: _answers(f"{url}/readyz"), 60, "waiting for graphrun serve", [proc])
        yield Target("serve", url, [proc])
    finally:
        proc.stop(signal.SIGINT)


@contextlib.contextmanager
def _database(tmp: Path) -> Iterator[str]:
    """A fresh PostgreSQL schema when PostgreSQL answers, else a SQLite file: the URL."""
    from tests.conftest import PG_URL, postgres_available

    if postgres_available() is not None:
        yield f"sqlite:///{tmp / 'graphrun.db'}"
        return
    import psycopg

    schema = f"gr_lg_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextlib.contextmanager
def fleet(tmp: Path, redis_url: str, **extra: str) -> Iterator[Target]:
    port = free_port()
    prefix = f"gr-lg:{uuid.uuid4().hex[:12]}:"
    with _database(tmp) as database_url:
        env = _clean_env(
            GRAPHRUN_CONFIG=str(PROJECT / "langgraph.json"),
            GRAPHRUN_REDIS_URL=redis_url,
            GRAPHRUN_REDIS_PREFIX=prefix,
            GRAPHRUN_DATABASE_URL=database_url,
            GRAPHRUN_DATA_DIR=str(tmp),
            GRAPHRUN_PORT=str(port),
            GRAPHRUN_API_WORKERS="2",
            GRAPHRUN_LOG_LEVEL="WARNING",
            # A run a test left going is handed over after 2 s instead of holding the teardown for
            # the default 30 s grace (the hand-over itself is what the recovery tests check).
            GRAPHRUN_SHUTDOWN_GRACE_S="2",
            **extra,
        )
        procs: list[Proc] = []
        workers: list[Proc] = []
        try:
            # All at once: the workers need nothing from the API, and every process that opens the
            # store migrates it under a lock (store/migrate.py).
            procs.append(Proc("api", [sys.executable, "-m", "graphrun", "api"], env, tmp, tmp / "api.log"))
            for i in range(2):
                args = [sys.executable, "-m", "graphrun", "worker", "--processes", "1"]
                workers.append(Proc(f"worker{i}", args, env, tmp, tmp / f"worker{i}.log"))
            url = f"http://127.0.0.1:{port}"
            _poll(lambda: _answers(f"{url}/readyz"), 60, "waiting for graphrun api", [*procs, *workers])
            wait_workers_listening(redis_url, prefix, 2, [*procs, *workers])
            yield Target("fleet", url, procs, workers, redis_url, prefix)
        finally:
            stop_all([*workers, *procs])


_API_LINE = re.compile(r"API:\s*(?:\x1b\[[0-9;]*m)*(http://[0-9.]+:(\d+))")


@contextlib.contextmanager
def reference(tmp: Path) -> Iterator[Target]:
    cli = REFERENCE_VENV / "bin" / "langgraph"
    if not cli.exists():
        pytest.skip(REFERENCE_MISSING)
    # A copy of the project: the dev server keeps its state in the folder it runs in (.langgraph_api).
    project = tmp / "lgproject"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__", ".langgraph_api"))
    port = free_port()
    env = _clean_env(
        LANGGRAPH_CLI_NO_ANALYTICS="1",  # no calls home
        LANGGRAPH_NO_VERSION_CHECK="true",
        LANGSMITH_TRACING="false",
    )
    args = [str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)]
    proc = Proc("langgraph-dev", [*args, "--config", "langgraph.json"], env, project, tmp / "langgraph-dev.log")
    try:
        # It may listen elsewhere than asked (it moves on when the port is taken): its "API:" line says where.
        def listening() -> str | None:
            found = _API_LINE.search(proc.log())
            return found.group(1) if found and _answers(f"{found.group(1)}/ok") else None

        url = _poll(listening, 120, "waiting for langgraph dev", [proc])
        yield Target("reference", url, [proc])
    finally:
        proc.stop(signal.SIGINT)


@contextlib.contextmanager
def start(kind: str, tmp: Path, redis_url: str) -> Iterator[Target]:
    starters = {
        "serve": lambda: serve(tmp),
        "fleet": lambda: fleet(tmp, redis_url),
        "reference": lambda: reference(tmp),
    }
    with starters[kind]() as target:
        yield target


def dump(value: Any) -> str:
    return json.dumps(value, indent=1, default=str)[:4000]
