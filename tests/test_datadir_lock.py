"""One data directory, one owner: a second `graphrun serve` on a directory in use refuses, naming the
first, which runs on untouched; a killed serve leaves no lock behind. Real processes throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from graphrun.cli.datadir import LOCK_NAME, DataDirInUse, lock_data_dir
from graphrun.redis.embedded import free_port
from tests.helpers import chain_workflow, read_events, submit


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHRUN_")}
    env.update(GRAPHRUN_PORT=str(port), GRAPHRUN_DATA_DIR=str(data_dir), GRAPHRUN_LOG_LEVEL="WARNING")
    return env


class Serve:
    """`graphrun serve` in its own process group, so that a test can kill it with its children."""

    def __init__(self, data_dir: Path, port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "graphrun", "serve"],
                env=_env(data_dir, port),
                stdout=out,
                stderr=out,
                start_new_session=True,
            )

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"graphrun serve not ready in {timeout_s} s:\n{self.log.read_text()}"
            time.sleep(0.2)

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-s", str(self.proc.pid)], check=False, capture_output=True, text=True).stdout
        return [int(p) for p in out.split() if int(p) != self.proc.pid]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(60)


@pytest.fixture
def serves(tmp_path: Path) -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for s in started:
        if s.proc.poll() is None:
            os.killpg(s.proc.pid, signal.SIGKILL)
            s.proc.wait()


def _gone(pids: list[int], timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{p}").exists() for p in pids):
            return True
        time.sleep(0.1)
    return False


async def _run_chain(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        wf = await chain_workflow(client, steps=2)
        sub = await submit(client, wf["id"])
        events = await read_events(client, sub["execution_id"])
        assert events[-1]["event"] == "complete", events


async def test_a_second_serve_refuses_and_a_kill_9_leaves_no_lock(tmp_path: Path, serves: list[Serve]) -> None:
    data = tmp_path / "data"
    first = Serve(data, free_port(), tmp_path / "first.log")
    serves.append(first)
    first.wait_ready()
    before = sorted(p.name for p in data.iterdir())
    aof_before = {p.name: p.stat().st_mtime_ns for p in data.rglob("*") if "appendonly" in p.name}

    other_port = free_port()
    second = subprocess.run(
        [sys.executable, "-m", "graphrun", "serve"],
        env=_env(data, other_port),
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode != 0
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert f"pid {first.proc.pid}" in lines[0] and first.url in lines[0], lines[0]
    assert "Traceback" not in second.stderr and second.stdout == ""
    # It touched nothing: no metrics folder of its own, no second Redis on the append-only file.
    assert sorted(p.name for p in data.iterdir()) == before
    assert {p.name for p in data.rglob("*") if "appendonly" in p.name} == set(aof_before)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{other_port}/healthz", timeout=1)

    # The first runs on untouched.
    assert httpx.get(f"{first.url}/healthz", timeout=5).status_code == 200
    await _run_chain(first.url)

    # kill -9 of serve and everything it started: the kernel drops the lock with the last of them.
    children = first.children()
    assert children, "serve started no processes?"
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.proc.wait()
    assert _gone(children)

    third = Serve(data, first.port, tmp_path / "third.log")  # same directory, same port
    serves.append(third)
    third.wait_ready()
    await _run_chain(third.url)
    third.stop()
    assert third.proc.returncode == 0


def test_a_serve_killed_alone_lets_the_next_one_start(tmp_path: Path, serves: list[Serve]) -> None:
    """kill -9 of the serve process only: its embedded Redis and workers get SIGTERM from the kernel
    and exit (until then they keep the directory owned); the next serve waits for them, then starts."""
    data = tmp_path / "data"
    first = Serve(data, free_port(), tmp_path / "first.log")
    serves.append(first)
    first.wait_ready()
    children = first.children()
    first.proc.kill()
    first.proc.wait()

    second = Serve(data, first.port, tmp_path / "second.log")
    serves.append(second)
    second.wait_ready()
    assert _gone(children), "the killed serve's embedded Redis or workers outlived it"
    owner = json.loads((data / LOCK_NAME).read_text())
    assert owner == {"pid": second.proc.pid, "address": second.url}


def test_the_lock_names_its_owner_and_waits_only_for_a_dead_ones_leftovers(tmp_path: Path) -> None:
    held = lock_data_dir(tmp_path, "http://127.0.0.1:1")
    try:
        # flock is per open file: a second open in this same process is refused like another process.
        with pytest.raises(DataDirInUse, match=rf"pid {os.getpid()}, listening on http://127\.0\.0\.1:1\)"):
            lock_data_dir(tmp_path, "http://127.0.0.1:2")
    finally:
        held.release()

    # A holder whose recorded owner is dead: a leftover child of a killed serve. Waited for, and
    # named if it does not go.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(tmp_path / LOCK_NAME)!r}, os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            'os.ftruncate(fd, 0); os.write(fd, b\'{"pid": 999999999, "address": "x"}\')\n'
            "print('held', flush=True)\n"
            "time.sleep(float(sys.argv[1]))\n",
            "1.5",
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    with pytest.raises(DataDirInUse, match="still held by processes that graphrun serve \\(pid 999999999\\)"):
        lock_data_dir(tmp_path, "http://127.0.0.1:3", orphan_wait_s=0.3)
    lock = lock_data_dir(tmp_path, "http://127.0.0.1:4", orphan_wait_s=30)  # the leftover exits
    assert holder.wait(5) == 0
    assert json.loads((tmp_path / LOCK_NAME).read_text()) == {"pid": os.getpid(), "address": "http://127.0.0.1:4"}
    lock.release()
