"""``graphrun worker``: one worker process, or a supervisor of several."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine
from typing import Any

from graphrun.errors import ConfigError
from graphrun.settings import Settings
from graphrun.store import open_store

log = logging.getLogger("graphrun.worker")


def worker_command(processes: int) -> list[str]:
    return [sys.executable, "-m", "graphrun", "worker", "--processes", str(processes)]


def _migrate(settings: Settings) -> None:
    async def go() -> None:
        store = await open_store(settings.sqlalchemy_url)
        await store.close()

    asyncio.run(go())


def _run(main: Coroutine[Any, Any, None]) -> None:
    """The worker's event loop is uvloop's where it exists (as Uvicorn's is in the API): the loop
    itself is a large share of a worker's CPU per execution (see docs/benchmarks.md)."""
    try:
        from uvloop import run
    except ImportError:  # not built for every platform; asyncio's own loop works the same
        asyncio.run(main)
        return
    run(main)


def check_metrics_port(settings: Settings) -> None:
    """Fail before anything is set up (share_metrics empties the port's metrics folder, which a
    worker already serving that port still uses) if the metrics port cannot be had."""
    import socket

    assert settings.worker_metrics_port
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the metrics server does
        try:
            probe.bind((settings.host, settings.worker_metrics_port))
        except OSError as exc:
            raise _port_taken(settings, exc) from None


def _port_taken(settings: Settings, exc: OSError) -> ConfigError:
    return ConfigError(
        f"GRAPHRUN_WORKER_METRICS_PORT: cannot listen on {settings.host}:{settings.worker_metrics_port} ({exc})"
    )


def run_workers(settings: Settings) -> int:
    settings.require_redis_url()
    if settings.worker_metrics_port:
        # Served by the one process, or by the supervisor for all of its children (their metrics
        # meet in the folder share_metrics set up); before any child starts.
        from graphrun.metrics import serve_http

        try:
            serve_http(settings.host, settings.worker_metrics_port)
        except OSError as exc:
            raise _port_taken(settings, exc) from None
    if settings.worker_processes == 1:
        from graphrun.heap import freeze_startup_heap
        from graphrun.worker.process import run_worker

        freeze_startup_heap()
        _run(run_worker(settings))
        return 0
    _migrate(settings)  # once, before the children race for it
    # The children report through this process's port; they must not try to take it themselves
    # (the environment wins over a .env file).
    env = {**os.environ, "GRAPHRUN_WORKER_METRICS_PORT": "0"}
    return supervise([worker_command(1) for _ in range(settings.worker_processes)], env=env)


def supervise(commands: list[list[str]], env: dict[str, str]) -> int:
    """Run the commands, restart any that dies unexpectedly, stop all on SIGTERM/SIGINT."""
    from graphrun.redis.embedded import die_with_parent

    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    procs = [subprocess.Popen(cmd, env=env, preexec_fn=die_with_parent) for cmd in commands]  # noqa: PLW1509
    restarts = [0.0] * len(procs)
    while not stopping:
        time.sleep(0.2)
        for i, proc in enumerate(procs):
            if proc.poll() is not None and not stopping:
                # Back off a child that keeps dying at start-up instead of spinning.
                if time.monotonic() - restarts[i] < 1.0:
                    time.sleep(1.0)
                log.warning("worker process %s exited with %s; restarting", proc.pid, proc.returncode)
                from graphrun.metrics import mark_process_dead

                mark_process_dead(proc.pid)
                restarts[i] = time.monotonic()
                procs[i] = subprocess.Popen(commands[i], env=env, preexec_fn=die_with_parent)  # noqa: PLW1509
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0
