"""The graph cache across real worker processes: invalidation, pinning, single flight, prewarm."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphrun.redis.keys import Keys
from graphrun.settings import Settings
from tests.graphs import builds
from tests.helpers import process_env, read_events, submit, wait_subscribed, wait_until

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory('[graphs]\nlogged = "tests.graphs:logged"\n')


@pytest.fixture
async def two_workers(settings: Settings, tmp_path: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    """`graphrun worker --processes 2`, both processes ready (until then the first to start would
    take every execution)."""
    log = open(tmp_path / "workers.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphrun", "worker", "--processes", "2", "--concurrency", "1"],
        env=process_env(settings),
        stdout=log,
        stderr=log,
        cwd=tmp_path,
    )
    try:
        await wait_subscribed(settings.require_redis_url(), Keys(settings.redis_prefix).cancel_channel, 2, 60)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()


async def _run_pair(client: httpx.AsyncClient, workflow_id: int) -> list[dict[str, Any]]:
    """Two executions at once; with one slot per worker process they run on different processes,
    which the store proves (their run times overlap)."""
    subs = [await submit(client, workflow_id) for _ in range(2)]
    ends = [(await read_events(client, s["execution_id"]))[-1] for s in subs]
    rows = [(await client.get(f"/executions/{s['execution_id']}")).json() for s in subs]
    a, b = rows
    assert a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"], "ran on one process"
    return ends


async def test_update_reaches_every_worker_process_at_once(
    client: httpx.AsyncClient, two_workers: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    log = str(tmp_path / "builds.log")
    config = {"log": log, "steps": 2, "delay_s": 0.8}
    wf = (await client.post("/workflows", json={"name": "w", "graph": "logged", "config": config})).json()
    ends = await _run_pair(client, wf["id"])  # both processes now hold v1
    assert [e["data"]["output"] for e in ends] == [{"n": 2}, {"n": 2}]
    assert len({pid for pid, _ in builds(log)}) == 2

    # Executions submitted before the update finish on the old version…
    before = [await submit(client, wf["id"]) for _ in range(2)]
    put = await client.put(f"/workflows/{wf['id']}", json={"config": {**config, "steps": 4}})
    assert put.json()["version"] == 2
    for s in before:
        assert s["workflow_version"] == 1
        assert (await read_events(client, s["execution_id"]))[-1]["data"]["output"] == {"n": 2}
    # …and the very next one on each process uses the new config: no waiting, no expiry.
    ends = await _run_pair(client, wf["id"])
    assert [e["data"]["output"] for e in ends] == [{"n": 4}, {"n": 4}]
    assert all(e["data"]["execution_id"] for e in ends)


async def test_prewarm_after_update_and_one_build_per_process(
    client: httpx.AsyncClient, two_workers: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    log = str(tmp_path / "builds.log")
    config = {"log": log, "steps": 1, "build_s": 1.0}
    wf = (await client.post("/workflows", json={"name": "slow", "graph": "logged", "config": config})).json()
    subs = await asyncio.gather(*(submit(client, wf["id"]) for _ in range(50)))
    ends = await asyncio.gather(*(read_events(client, s["execution_id"]) for s in subs))
    assert all(e[-1]["event"] == "complete" for e in ends)
    per_process: dict[int, int] = {}
    for pid, _ in builds(log):
        per_process[pid] = per_process.get(pid, 0) + 1
    assert per_process and all(n == 1 for n in per_process.values()), per_process
    # One process can take the whole burst; then run more until the other holds the graph too, so
    # that the last execution below finds it prewarmed wherever it lands.
    for _ in range(40):
        if len(per_process) == 2:
            break
        await read_events(client, (await submit(client, wf["id"]))["execution_id"])
        per_process = {pid: n for pid, n in ((p, sum(1 for q, _ in builds(log) if q == p)) for p, _ in builds(log))}
    assert sorted(per_process.values()) == [1, 1], per_process

    # After an update, processes that held the graph build the new version unasked.
    await client.put(f"/workflows/{wf['id']}", json={"config": {**config, "steps": 3}})
    holders = set(per_process)

    def rebuilt() -> set[int]:
        return {pid for pid, steps in builds(log) if steps == 3}

    await wait_until(lambda: rebuilt() == holders, 10, lambda: f"prewarmed on {rebuilt()}, held by {holders}")
    count = len(builds(log))
    sub = await submit(client, wf["id"])
    assert (await read_events(client, sub["execution_id"]))[-1]["data"]["output"] == {"n": 3}
    assert len(builds(log)) == count  # served from the prewarmed cache: no cold build
