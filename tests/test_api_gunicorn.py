"""The production shape on one machine: `graphrun api` (Gunicorn + Uvicorn workers) and
`graphrun worker` processes on a shared external Redis and database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from graphrun.embedded import free_port
from graphrun.settings import Settings


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not ready in 60 s:\n{log.read_text()}")


def test_api_under_gunicorn_with_separate_workers(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHRUN_")}
    env.update(
        GRAPHRUN_REDIS_URL=settings.redis_url or "",
        GRAPHRUN_DATABASE_URL=f"sqlite:///{tmp_path / 'shared.db'}",
        GRAPHRUN_REDIS_PREFIX=settings.redis_prefix,
        GRAPHRUN_PORT=str(port),
        GRAPHRUN_API_WORKERS="2",
        GRAPHRUN_HEARTBEAT_S="0.5",
        GRAPHRUN_LOG_LEVEL="WARNING",
    )
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    with open(api_log, "wb") as a, open(worker_log, "wb") as w:
        api = subprocess.Popen([sys.executable, "-m", "graphrun", "api"], env=env, stdout=a, stderr=a, cwd=tmp_path)
        workers = subprocess.Popen(
            [sys.executable, "-m", "graphrun", "worker", "--processes", "2"], env=env, stdout=w, stderr=w, cwd=tmp_path
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, api, api_log)
            children = subprocess.check_output(["pgrep", "-P", str(api.pid)]).split()
            assert len(children) == 2, "two Gunicorn workers"
            with httpx.Client(base_url=url, timeout=30) as client:
                wf = client.post(
                    "/workflows", json={"name": "c", "graph": "chain", "config": {"steps": 3, "delay_s": 0.7}}
                ).json()
                ids = [
                    client.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}}).json()["execution_id"]
                    for _ in range(4)
                ]
                bodies = []
                for execution_id in ids:
                    with client.stream("GET", f"/executions/{execution_id}/events") as r:
                        bodies.append(r.read().decode())
                for body in bodies:
                    last = body.rstrip().split("\n\n")[-1]
                    assert last.startswith("id: ") and "event: complete" in last and '"output":{"n":3}' in last
                assert ": ping" in bodies[0]  # heartbeats while the first run's nodes wait
            assert subprocess.check_output(["pgrep", "-P", str(api.pid)]).split() == children, "no worker restarted"
        finally:
            for proc in (api, workers):
                proc.send_signal(signal.SIGTERM)
            for proc in (api, workers):
                proc.wait(30)


def test_a_60_s_stream_outlives_a_5_s_gunicorn_timeout(settings: Settings, tmp_path: Path) -> None:
    """Gunicorn's `timeout` watches the worker's event loop, not the requests: an SSE client of a
    60 s execution is served to the end and no Gunicorn worker is restarted."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHRUN_")}
    env.update(
        GRAPHRUN_REDIS_URL=settings.redis_url or "",
        GRAPHRUN_DATABASE_URL=f"sqlite:///{tmp_path / 'shared.db'}",
        GRAPHRUN_REDIS_PREFIX=settings.redis_prefix,
        GRAPHRUN_PORT=str(port),
        GRAPHRUN_API_WORKERS="2",
        GRAPHRUN_API_TIMEOUT_S="5",
        GRAPHRUN_LOG_LEVEL="INFO",
    )
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    with open(api_log, "wb") as a, open(worker_log, "wb") as w:
        api = subprocess.Popen([sys.executable, "-m", "graphrun", "api"], env=env, stdout=a, stderr=a, cwd=tmp_path)
        worker = subprocess.Popen(
            [sys.executable, "-m", "graphrun", "worker"], env=env, stdout=w, stderr=w, cwd=tmp_path
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, api, api_log)
            children = sorted(subprocess.check_output(["pgrep", "-P", str(api.pid)]).split())
            assert len(children) == 2
            with httpx.Client(base_url=url, timeout=30) as client:
                wf = client.post(
                    "/workflows", json={"name": "c", "graph": "chain", "config": {"steps": 6, "delay_s": 10}}
                ).json()
                sub = client.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}}).json()
                began = time.monotonic()
                with client.stream("GET", f"/executions/{sub['execution_id']}/events") as r:
                    body = r.read().decode()
                elapsed = time.monotonic() - began
            frames = body.rstrip().split("\n\n")
            assert elapsed >= 59, elapsed
            assert "event: complete" in frames[-1] and '"output":{"n":6}' in frames[-1], frames[-1]
            assert sum("event: node_end" in f for f in frames) == 6
            assert sorted(subprocess.check_output(["pgrep", "-P", str(api.pid)]).split()) == children
            assert "WORKER TIMEOUT" not in api_log.read_text()
        finally:
            for proc in (api, worker):
                proc.send_signal(signal.SIGTERM)
            for proc in (api, worker):
                proc.wait(30)
