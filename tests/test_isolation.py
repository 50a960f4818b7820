"""Executions of one worker process do not hold each other up: a blocking synchronous node runs in
a thread, a burst beyond the concurrency limit queues, and a node that does block the event loop
is caught by the loop-lag monitor."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import httpx
import pytest
from prometheus_client import REGISTRY

from graphrun.settings import Settings
from tests.conftest import InLoopWorker
from tests.graphs import REGISTRY_TOML
from tests.helpers import LiveEvents, chain_workflow, read_events, scaled, submit, wait_status, wait_until

WorkerFactory = Callable[[Settings], Awaitable[InLoopWorker]]


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(REGISTRY_TOML)


async def test_a_blocking_node_holds_up_no_other_execution(client: httpx.AsyncClient, worker: InLoopWorker) -> None:
    """One `time.sleep(10)` node and 20 fast executions on the same worker process (this test's own
    event loop, shared with the API): the fast ones all finish while it sleeps, within 2 s; then
    the blocking one is cancelled within 1 s although its thread sleeps on."""
    blocking = await chain_workflow(client, steps=1, delay_s=10, blocking=True)
    fast = await chain_workflow(client, steps=3)
    slow = await submit(client, blocking["id"])
    live = LiveEvents(client, slow["execution_id"])
    try:
        node_start = await live.wait_for("node_start")  # its thread is in time.sleep(10) from now on
        began = time.monotonic()

        async def run_fast() -> str:
            execution_id = (await submit(client, fast["id"]))["execution_id"]
            return (await read_events(client, execution_id))[-1]["event"]

        assert await asyncio.gather(*(run_fast() for _ in range(20))) == ["complete"] * 20
        assert time.monotonic() - began < scaled(2.0)
        assert "complete" not in live.kinds

        sent = time.monotonic()
        assert (await client.post(f"/executions/{slow['execution_id']}/cancel")).status_code == 202
        cancelled = await live.wait_for("cancelled", timeout=10)
        assert cancelled["at"] - sent < scaled(1.0)
        assert cancelled["at"] < node_start["at"] + 10  # not waiting for the thread's sleep to end
        assert (await client.get(f"/executions/{slow['execution_id']}")).json()["status"] == "cancelled"
    finally:
        await live.close()


async def test_as_many_blocking_nodes_as_the_concurrency_run_at_once(
    client: httpx.AsyncClient, worker: InLoopWorker
) -> None:
    """13 synchronous nodes that return only once all 13 wait at one barrier: the stock default
    executor of a 2-core machine (6 threads) could never hold them all at once."""
    config = {"barrier": uuid.uuid4().hex, "parties": 13, "wait_s": scaled(10)}
    wf = (await client.post("/workflows", json={"name": "b", "graph": "barrier", "config": config})).json()
    ids = [(await submit(client, wf["id"]))["execution_id"] for _ in range(13)]
    ends = [(await read_events(client, i))[-1] for i in ids]
    assert [e["event"] for e in ends] == ["complete"] * 13, ends


async def test_a_burst_beyond_the_concurrency_limit_queues(
    client: httpx.AsyncClient, settings: Settings, worker_factory: WorkerFactory
) -> None:
    await worker_factory(settings.model_copy(update={"worker_concurrency": 2}))
    wf = await chain_workflow(client, steps=1, delay_s=0.5)
    ids = [(await submit(client, wf["id"]))["execution_id"] for _ in range(6)]
    done = [await wait_status(client, i, "succeeded", timeout=30) for i in ids]
    # Claimed (started_at) and finished (finished_at) as the store recorded them.
    spans = [(datetime.fromisoformat(e["started_at"]), datetime.fromisoformat(e["finished_at"])) for e in done]
    edges = sorted([(s, 1) for s, _ in spans] + [(f, -1) for _, f in spans], key=lambda x: (x[0], x[1]))
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    assert most == 2, spans  # never more than the limit, and the limit really is used


async def test_a_node_that_blocks_the_event_loop_is_reported(
    client: httpx.AsyncClient, settings: Settings, worker_factory: WorkerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="graphrun.worker.looplag")
    worker_role = {"role": "worker"}
    stalls_before = REGISTRY.get_sample_value("graphrun_event_loop_stalls_total", worker_role) or 0.0
    lags_before = REGISTRY.get_sample_value("graphrun_event_loop_lag_seconds_count", worker_role) or 0.0
    worker = await worker_factory(settings.model_copy(update={"loop_stall_ms": 200}))
    created = await client.post("/workflows", json={"name": "b", "graph": "loop_blocker", "config": {"block_s": 0.6}})
    sub = await submit(client, created.json()["id"])
    assert (await read_events(client, sub["execution_id"]))[-1]["event"] == "complete"

    def reports() -> list[logging.LogRecord]:
        # The record's arguments: (stall ms, threshold ms, where the loop was, executions running).
        return [
            r
            for r in caplog.records
            if r.name == "graphrun.worker.looplag" and isinstance(r.args, tuple) and sub["execution_id"] in r.args[3]
        ]

    await wait_until(reports, 5, lambda: [(r.name, r.args) for r in caplog.records])
    await worker.stop()
    (record,) = [r for r in reports() if "blocker" in r.args[2]]  # type: ignore[index, operator]
    assert record.levelno == logging.WARNING
    stalled_ms, threshold_ms, where, _ = record.args  # type: ignore[misc]
    assert threshold_ms == 200 and "tests/graphs.py" in where
    # The watchdog posts every 100 ms, so it sees at least the block's 600 ms less one interval.
    assert 400 <= stalled_ms < scaled(5000)
    assert (REGISTRY.get_sample_value("graphrun_event_loop_stalls_total", worker_role) or 0.0) >= stalls_before + 1
    assert (REGISTRY.get_sample_value("graphrun_event_loop_lag_seconds_count", worker_role) or 0.0) > lags_before
