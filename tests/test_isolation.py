"""Executions of one worker process do not hold each other up: a blocking synchronous node runs in
a thread, a burst beyond the concurrency limit queues, and a node that does block the event loop
is caught by the loop-lag monitor."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from graphrun.settings import Settings
from graphrun.worker.process import run_worker
from tests.conftest import ServerHandle
from tests.graphs import REGISTRY_TOML
from tests.helpers import LiveEvents, chain_workflow, read_events, submit, wait_status


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    toml = tmp_path / "graphrun.toml"
    toml.write_text(REGISTRY_TOML)
    return settings.model_copy(update={"config": toml})


@pytest.fixture
async def client(api: ServerHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
        yield c


async def test_a_blocking_node_holds_up_no_other_execution(client: httpx.AsyncClient, worker: None) -> None:
    """One `time.sleep(10)` node and 20 fast executions on the same worker process (this test's own
    event loop, shared with the API): the fast ones all finish within 2 s; then the blocking one is
    cancelled within 1 s although its thread sleeps on."""
    blocking = await chain_workflow(client, steps=1, delay_s=10, blocking=True)
    fast = await chain_workflow(client, steps=3)
    slow = await submit(client, blocking["id"])
    live = LiveEvents(client, slow["execution_id"])
    try:
        await live.wait_for("node_start")  # its thread is in time.sleep(10) from now on
        began = time.monotonic()

        async def run_fast() -> str:
            execution_id = (await submit(client, fast["id"]))["execution_id"]
            return (await read_events(client, execution_id))[-1]["event"]

        assert await asyncio.gather(*(run_fast() for _ in range(20))) == ["complete"] * 20
        assert time.monotonic() - began < 2.0
        assert "complete" not in live.kinds

        sent = time.monotonic()
        assert (await client.post(f"/executions/{slow['execution_id']}/cancel")).status_code == 202
        assert (await live.wait_for("cancelled", timeout=10))["at"] - sent < 1.0
        assert (await client.get(f"/executions/{slow['execution_id']}")).json()["status"] == "cancelled"
    finally:
        await live.close()


async def test_as_many_blocking_nodes_as_the_concurrency_run_at_once(client: httpx.AsyncClient, worker: None) -> None:
    """13 synchronous nodes sleeping 1 s each finish together: the stock default executor of a
    2-core machine (6 threads) would need three rounds."""
    wf = await chain_workflow(client, steps=1, delay_s=1.0, blocking=True)
    began = time.monotonic()
    ids = [(await submit(client, wf["id"]))["execution_id"] for _ in range(13)]
    assert [(await read_events(client, i))[-1]["event"] for i in ids] == ["complete"] * 13
    assert time.monotonic() - began < 2.5


async def test_a_burst_beyond_the_concurrency_limit_queues(client: httpx.AsyncClient, settings: Settings) -> None:
    stop = asyncio.Event()
    worker = asyncio.get_running_loop().create_task(
        run_worker(settings.model_copy(update={"worker_concurrency": 2}), stop)
    )
    try:
        wf = await chain_workflow(client, steps=1, delay_s=0.5)
        ids = [(await submit(client, wf["id"]))["execution_id"] for _ in range(6)]
        done = [await wait_status(client, i, "succeeded", timeout=30) for i in ids]
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)
    # Claimed (started_at) and finished (finished_at) as the store recorded them.
    spans = [(datetime.fromisoformat(e["started_at"]), datetime.fromisoformat(e["finished_at"])) for e in done]
    edges = sorted([(s, 1) for s, _ in spans] + [(f, -1) for _, f in spans], key=lambda x: (x[0], x[1]))
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    assert most == 2, spans  # never more than the limit, and the limit really is used


async def test_a_node_that_blocks_the_event_loop_is_reported(
    client: httpx.AsyncClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="graphrun.worker.looplag")
    worker_role = {"role": "worker"}
    stalls_before = REGISTRY.get_sample_value("graphrun_event_loop_stalls_total", worker_role) or 0.0
    lags_before = REGISTRY.get_sample_value("graphrun_event_loop_lag_seconds_count", worker_role) or 0.0
    stop = asyncio.Event()
    worker = asyncio.get_running_loop().create_task(
        run_worker(settings.model_copy(update={"loop_stall_ms": 200}), stop)
    )
    try:
        created = await client.post(
            "/workflows", json={"name": "b", "graph": "loop_blocker", "config": {"block_s": 0.6}}
        )
        sub = await submit(client, created.json()["id"])
        assert (await read_events(client, sub["execution_id"]))[-1]["event"] == "complete"
        deadline = time.monotonic() + 5
        while not any(sub["execution_id"] in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)
    messages = [r.getMessage() for r in caplog.records if sub["execution_id"] in r.getMessage()]
    (message,) = [m for m in messages if "blocker" in m]
    assert "event loop stalled for" in message and "tests/graphs.py" in message
    stalled_ms = float(message.split("stalled for ")[1].split(" ms")[0])
    # The watchdog posts every 100 ms, so it sees at least the block's 600 ms less one interval.
    assert 400 <= stalled_ms < 5000
    assert (REGISTRY.get_sample_value("graphrun_event_loop_stalls_total", worker_role) or 0.0) >= stalls_before + 1
    assert (REGISTRY.get_sample_value("graphrun_event_loop_lag_seconds_count", worker_role) or 0.0) > lags_before
