"""`graphrun worker` on a machine of its own reports /metrics on GRAPHRUN_WORKER_METRICS_PORT."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from graphrun.redis.embedded import free_port
from graphrun.settings import Settings
from tests.helpers import process_env


def _scrape(port: int, proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"worker exited with {proc.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"no /metrics in 60 s:\n{log.read_text()}")


def _worker_that_stops(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`graphrun worker` expected to refuse to start: its exit status and output."""
    return subprocess.run(
        [sys.executable, "-m", "graphrun", "worker"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


@pytest.mark.parametrize("processes", [1, 2])
async def test_worker_processes_report_their_metrics(
    settings: Settings, client: httpx.AsyncClient, tmp_path: Path, processes: int
) -> None:
    port = free_port()
    env = process_env(settings, GRAPHRUN_WORKER_METRICS_PORT=str(port))
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "graphrun", "worker", "--processes", str(processes)],
            env=env,
            stdout=out,
            stderr=out,
            cwd=tmp_path,
        )
    try:
        await asyncio.to_thread(_scrape, port, proc, log)
        wf = (await client.post("/workflows", json={"name": "m", "graph": "chain", "config": {"steps": 2}})).json()
        for _ in range(3):
            sub = (await client.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}})).json()
            async with client.stream("GET", f"/executions/{sub['execution_id']}/events") as r:
                assert "event: complete" in (await r.aread()).decode()
        text = await asyncio.to_thread(_scrape, port, proc, log)
        # Counted by the worker processes (summed over both when there are two), not by the API.
        assert 'graphrun_executions_total{status="succeeded"} 3.0' in text, text
        assert 'graphrun_event_loop_lag_seconds_count{role="worker"}' in text
        # A second worker given the same port stops at once, without touching the first one's
        # metrics (they live in a folder named after the port).
        second = await asyncio.to_thread(_worker_that_stops, env, tmp_path)
        assert second.returncode == 2 and "GRAPHRUN_WORKER_METRICS_PORT" in second.stderr, second.stderr
        text = await asyncio.to_thread(_scrape, port, proc, log)
        assert 'graphrun_executions_total{status="succeeded"} 3.0' in text, text
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_metrics_port_already_taken_stops_the_worker_with_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = process_env(settings, GRAPHRUN_WORKER_METRICS_PORT=str(port))
        done = _worker_that_stops(env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"GRAPHRUN_WORKER_METRICS_PORT: cannot listen on 127.0.0.1:{port}" in done.stderr


def test_a_bad_metrics_port_is_a_config_error(settings: Settings, tmp_path: Path) -> None:
    env = process_env(settings, GRAPHRUN_WORKER_METRICS_PORT="70000")
    done = _worker_that_stops(env, tmp_path)
    assert done.returncode == 2 and "GRAPHRUN_WORKER_METRICS_PORT" in done.stderr, done.stderr
