"""The production shape on one machine: `graphrun api` (Gunicorn + Uvicorn workers) and
`graphrun worker` processes on a shared external Redis and database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from graphrun.redis.embedded import free_port
from graphrun.settings import Settings
from tests.helpers import chain_workflow, process_env, submit


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
    env = process_env(
        settings,
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


def test_a_stream_longer_than_gunicorns_timeout_outlives_it(settings: Settings, tmp_path: Path) -> None:
    """Gunicorn's `timeout` watches the worker's event loop, not the requests: an SSE client of an
    execution that outlasts that timeout by 40% is served to the end and no Gunicorn worker is
    restarted (the arbiter would have killed a worker whose request held it past the timeout). The
    timeout is short and not scaled: Gunicorn forks workers from a preloaded app, so a worker's
    start-up imports nothing and its loop answers the heartbeat at once, even on a busy machine."""
    port = free_port()
    gunicorn_timeout_s = 4
    step_s = 0.7 * gunicorn_timeout_s  # two steps: 1.4 times the timeout
    timeout_s = str(gunicorn_timeout_s)
    env = process_env(settings, GRAPHRUN_PORT=str(port), GRAPHRUN_API_WORKERS="2", GRAPHRUN_API_TIMEOUT_S=timeout_s)
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
                    "/workflows", json={"name": "c", "graph": "chain", "config": {"steps": 2, "delay_s": step_s}}
                ).json()
                sub = client.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}}).json()
                began = time.monotonic()
                with client.stream("GET", f"/executions/{sub['execution_id']}/events") as r:
                    body = r.read().decode()
                elapsed = time.monotonic() - began
            frames = body.rstrip().split("\n\n")
            assert elapsed > gunicorn_timeout_s + 1, elapsed
            assert "event: complete" in frames[-1] and '"output":{"n":2}' in frames[-1], frames[-1]
            assert sum("event: node_end" in f for f in frames) == 2
            assert sorted(subprocess.check_output(["pgrep", "-P", str(api.pid)]).split()) == children
            assert "WORKER TIMEOUT" not in api_log.read_text()
        finally:
            for proc in (api, worker):
                proc.send_signal(signal.SIGTERM)
            for proc in (api, worker):
                proc.wait(30)


async def test_gauges_sum_over_gunicorn_workers_and_drop_a_killed_ones_share(
    settings: Settings, tmp_path: Path
) -> None:
    """Under `graphrun api` (prometheus multiprocess mode) /metrics adds up the SSE clients and hub
    streams of both Gunicorn workers; a worker killed with its clients leaves the sums at once
    (Gunicorn's child_exit marks it dead). No graphrun worker runs: the executions stay queued and
    their streams stay open."""
    port = free_port()
    env = process_env(settings, GRAPHRUN_PORT=str(port), GRAPHRUN_API_WORKERS="2", GRAPHRUN_LOG_LEVEL="WARNING")
    api_log = tmp_path / "api.log"
    with open(api_log, "wb") as a:
        api = subprocess.Popen([sys.executable, "-m", "graphrun", "api"], env=env, stdout=a, stderr=a, cwd=tmp_path)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, api, api_log)
            children = subprocess.check_output(["pgrep", "-P", str(api.pid)]).split()
            assert len(children) == 2

            async def gauge(client: httpx.AsyncClient, name: str) -> float:
                text = (await client.get("/metrics")).text
                values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(f"{name} ")]
                return values[0] if values else 0.0

            async def wait_gauges(client: httpx.AsyncClient, clients: float, streams: float) -> None:
                deadline = time.monotonic() + 15
                while True:
                    now = (
                        await gauge(client, "graphrun_sse_clients"),
                        await gauge(client, "graphrun_stream_hub_streams"),
                    )
                    if now == (clients, streams):
                        return
                    assert time.monotonic() < deadline, (now, api_log.read_text())
                    await asyncio.sleep(0.1)

            # Separate connections, so that the streams land on either Gunicorn worker.
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                wf = await chain_workflow(client, steps=1)
                ids = [(await submit(client, wf["id"]))["execution_id"] for _ in range(3)]
                streams = [
                    httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0))
                    for _ in range(6)
                ]
                responses = []
                try:
                    for i, stream in enumerate(streams):
                        request = stream.build_request("GET", f"/executions/{ids[i % 3]}/events")
                        responses.append(await stream.send(request, stream=True))
                        assert responses[-1].status_code == 200
                    # Each worker follows the streams of its own clients: 3 to 6 in all.
                    deadline = time.monotonic() + 15
                    while (clients := await gauge(client, "graphrun_sse_clients")) != 6:
                        assert time.monotonic() < deadline, clients
                        await asyncio.sleep(0.1)
                    assert 3 <= await gauge(client, "graphrun_stream_hub_streams") <= 6
                    assert 'graphrun_event_loop_stalls_total{role="api"}' in (await client.get("/metrics")).text

                    for pid in children:
                        os.kill(int(pid), signal.SIGKILL)
                    deadline = time.monotonic() + 30
                    while True:
                        now = subprocess.run(
                            ["pgrep", "-P", str(api.pid)], check=False, capture_output=True
                        ).stdout.split()
                        if len(now) == 2 and not set(now) & set(children):
                            break
                        assert time.monotonic() < deadline, now
                        await asyncio.sleep(0.2)
                    _wait_ready(url, api, api_log)
                    await wait_gauges(client, 0, 0)
                finally:
                    for response in responses:
                        await response.aclose()
                    for stream in streams:
                        await stream.aclose()
        finally:
            api.send_signal(signal.SIGTERM)
            api.wait(30)
