"""`graphrun serve` as a user runs it: a subprocess with the embedded Redis and SQLite, driven over
real HTTP and SSE; and `graphrun run` against it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from graphrun.redis.embedded import free_port
from tests.helpers import chain_workflow, read_events, submit

# One xdist worker runs the whole module, so that its `graphrun serve` starts once (the last test
# stops it).
pytestmark = pytest.mark.xdist_group("serve-e2e")


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHRUN_")}
    env.update(GRAPHRUN_PORT=str(port), GRAPHRUN_DATA_DIR=str(tmp_path / "data"), GRAPHRUN_LOG_LEVEL="WARNING")
    return env


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    tmp = tmp_path_factory.mktemp("serve")
    port = free_port()
    log = open(tmp / "serve.log", "wb")  # noqa: SIM115
    # A worker metrics port that serve's own worker must leave alone (the API already reports the
    # workers): the API's own. Were the worker to take it, the API or the worker would fail to start.
    env = {**_env(tmp, port), "GRAPHRUN_WORKER_METRICS_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "graphrun", "serve"], cwd=tmp, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None, (tmp / "serve.log").read_text()
        assert time.monotonic() < deadline, "graphrun serve did not become ready in 60 s"
        time.sleep(0.2)
    yield url, proc, tmp
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    log.close()


async def test_chain_over_http_and_sse_with_resume(served: tuple[str, subprocess.Popen[bytes], Path]) -> None:
    url, _proc, _tmp = served
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        wf = await chain_workflow(client, steps=6)
        sub = await submit(client, wf["id"])
        events = await read_events(client, sub["execution_id"])
        kinds = [e["event"] for e in events]
        assert kinds[0] == "start" and kinds[-1] == "complete"
        assert [e["data"]["node"] for e in events if e["event"] == "node_end"] == [f"step_{i}" for i in range(1, 7)]
        assert events[-1]["data"]["output"] == {"n": 6}
        middle = len(events) // 2
        rest = await read_events(client, sub["execution_id"], last_event_id=events[middle]["id"])
        assert rest == events[middle + 1 :]
        ex = (await client.get(f"/executions/{sub['execution_id']}")).json()
        assert ex["status"] == "succeeded" and ex["output"] == {"n": 6}


def test_an_idle_connection_outlives_an_http_clients_keepalive(
    served: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    """The server keeps an idle connection longer than httpx's pool does (5 s): a client sending on
    a connection it still considers alive never finds it closed under it."""
    url, _proc, _tmp = served
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        request = f"GET /readyz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(6)
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "the server closed the idle connection"


def test_graphrun_run_prints_a_live_view(served: tuple[str, subprocess.Popen[bytes], Path]) -> None:
    url, _proc, tmp = served
    done = subprocess.run(
        [sys.executable, "-m", "graphrun", "run", "chain", "--input", '{"n": 0}', "--url", url],
        cwd=tmp,
        env=_env(tmp, 1),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("execution ")
    assert any("start" in line for line in lines)
    assert sum("✓ step_" in line for line in lines) == 5
    assert "complete" in lines[-1] and '{"n": 5}' in lines[-1]
    failing = subprocess.run(
        [sys.executable, "-m", "graphrun", "run", "nosuch", "--url", url],
        env=_env(tmp, 1),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failing.returncode == 2 and "registered graphs" in failing.stderr


def test_graphrun_run_ctrl_c_cancels(served: tuple[str, subprocess.Popen[bytes], Path]) -> None:
    url, _proc, tmp = served
    wf = httpx.post(f"{url}/workflows", json={"name": "slow", "graph": "chain", "config": {"delay_s": 30}}).json()
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphrun", "run", str(wf["id"]), "--input", '{"n": 0}', "--url", url],
        env=_env(tmp, 1),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    while "node_start" not in (line := proc.stdout.readline()):
        assert line, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGINT)
    out, _err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "cancelled" in out
    page = httpx.get(f"{url}/executions", params={"workflow_id": wf["id"]}).json()
    assert page["items"][0]["status"] == "cancelled"


def test_ctrl_c_stops_everything(served: tuple[str, subprocess.Popen[bytes], Path]) -> None:
    url, proc, tmp = served
    redis_pid = int(subprocess.check_output(["pgrep", "-P", str(proc.pid), "redis-server"]).split()[0])
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz", timeout=1)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{redis_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{redis_pid}").exists(), "embedded Redis outlived graphrun serve"
    assert (tmp / "data" / "graphrun.db").exists()
    assert (tmp / "data" / "appendonly.aof").exists()
