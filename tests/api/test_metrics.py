"""What an API process reports on /metrics about itself: its SSE clients, the streams its hub
follows, and stalls of its event loop. Read from /metrics of a real API over HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from graphrun.settings import Settings
from tests.conftest import InLoopWorker, ServerHandle
from tests.helpers import LiveEvents, chain_workflow, scaled, submit, wait_status, wait_until


async def sample(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """One sample of the API's /metrics (0 when it is not there)."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


async def wait_sample(client: httpx.AsyncClient, name: str, expected: float, timeout: float = 10) -> None:
    async def reached() -> bool:
        return await sample(client, name) == expected

    await wait_until(reached, timeout, f"{name} = {expected}")


@pytest.fixture
def client(client: httpx.AsyncClient, worker: InLoopWorker) -> httpx.AsyncClient:
    """The API client, with a worker running."""
    return client


async def test_sse_clients_and_hub_streams_gauges(client: httpx.AsyncClient) -> None:
    """Four SSE clients on three running executions (two on the first): 4 clients, 3 streams; both
    back where they were once the clients hang up, while the executions still run."""
    # Other tests of this process may have left nothing behind, but measure from where they are.
    clients_before = await sample(client, "graphrun_sse_clients")
    streams_before = await sample(client, "graphrun_stream_hub_streams")
    wf = await chain_workflow(client, steps=2, delay_s=60)
    ids = [(await submit(client, wf["id"]))["execution_id"] for _ in range(3)]
    try:
        for execution_id in ids:
            await wait_status(client, execution_id, "running")
        streams = [LiveEvents(client, execution_id) for execution_id in [*ids, ids[0]]]
        try:
            # A client that got its first event is past the point where it is counted.
            for live in streams:
                await live.wait_for("node_start", timeout=10)
            assert await sample(client, "graphrun_sse_clients") == clients_before + 4
            assert await sample(client, "graphrun_stream_hub_streams") == streams_before + 3

            # One of the two clients of the first execution hangs up: its stream is still followed.
            await streams.pop().close()
            await wait_sample(client, "graphrun_sse_clients", clients_before + 3)
            assert await sample(client, "graphrun_stream_hub_streams") == streams_before + 3
        finally:
            for live in streams:
                await live.close()
        await wait_sample(client, "graphrun_sse_clients", clients_before)
        await wait_sample(client, "graphrun_stream_hub_streams", streams_before)
        for execution_id in ids:
            assert (await client.get(f"/executions/{execution_id}")).json()["status"] == "running"
    finally:
        # Not left for the worker's shutdown, which would wait for them.
        for execution_id in ids:
            await client.post(f"/executions/{execution_id}/cancel")


async def test_a_stall_of_the_api_event_loop_is_counted_as_the_apis(
    settings: Settings,
    api_factory: Callable[[Settings], Awaitable[ServerHandle]],
    client_factory: Callable[..., httpx.AsyncClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The API runs in this test's event loop, so blocking this loop blocks the API's. No worker runs
    here: the stall is counted under role="api" only."""
    caplog.set_level(logging.WARNING, logger="graphrun.api.looplag")
    client = client_factory(await api_factory(settings.model_copy(update={"loop_stall_ms": 100})))
    api_before = await sample(client, "graphrun_event_loop_stalls_total", role="api")
    worker_before = await sample(client, "graphrun_event_loop_stalls_total", role="worker")
    lags_before = await sample(client, "graphrun_event_loop_lag_seconds_count", role="api")

    time.sleep(0.5)  # the deliberate block of the API's event loop

    async def counted() -> bool:
        return await sample(client, "graphrun_event_loop_stalls_total", role="api") >= api_before + 1

    await wait_until(counted, 5, lambda: [(r.name, r.args) for r in caplog.records])
    assert await sample(client, "graphrun_event_loop_stalls_total", role="worker") == worker_before
    assert await sample(client, "graphrun_event_loop_lag_seconds_count", role="api") > lags_before
    # The record's arguments: (stall ms, threshold ms, where the loop was, executions running).
    records = [
        r
        for r in caplog.records
        if r.name == "graphrun.api.looplag"
        and isinstance(r.args, tuple)
        and "test_a_stall_of_the_api_event_loop" in r.args[2]
    ]
    assert len(records) == 1, [(r.name, r.args) for r in caplog.records]
    (record,) = records
    stalled_ms, threshold_ms, _, running = record.args  # type: ignore[misc]
    assert record.levelno == logging.WARNING and threshold_ms == 100
    assert 300 <= stalled_ms < scaled(5000), record.args  # the 500 ms block, less at most one 100 ms interval
    assert running == ""  # an API process runs no executions, so it names none


async def test_execution_counters(client: httpx.AsyncClient) -> None:
    """Submitted, running and finished-by-status, as the API and the worker (same process here)
    count them."""
    from tests.helpers import read_events

    submitted = await sample(client, "graphrun_executions_submitted_total")
    succeeded = await sample(client, "graphrun_executions_total", status="succeeded")
    cancelled = await sample(client, "graphrun_executions_total", status="cancelled")
    fast = await chain_workflow(client, steps=2)
    for _ in range(3):
        await read_events(client, (await submit(client, fast["id"]))["execution_id"])
    slow = await chain_workflow(client, steps=2, delay_s=60)
    sub = await submit(client, slow["id"])
    try:
        # Counted once the worker holds its lease, a round trip after the claim that the status shows.
        await wait_sample(client, "graphrun_executions_running", 1)
    finally:
        # Not left for the worker's shutdown, which would wait for it.
        await client.post(f"/executions/{sub['execution_id']}/cancel")
    await wait_status(client, sub["execution_id"], "cancelled")
    assert await sample(client, "graphrun_executions_submitted_total") == submitted + 4
    assert await sample(client, "graphrun_executions_total", status="succeeded") == succeeded + 3
    await wait_sample(client, "graphrun_executions_running", 0)
    assert await sample(client, "graphrun_executions_total", status="cancelled") == cancelled + 1
