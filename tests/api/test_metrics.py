"""What an API process reports on /metrics about itself: its SSE clients, the streams its hub
follows, and stalls of its event loop. Read from /metrics of a real API over HTTP."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from graphrun.settings import Settings
from tests.conftest import ServerHandle, start_api
from tests.helpers import LiveEvents, chain_workflow, submit, wait_status


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
    deadline = time.monotonic() + timeout
    while (value := await sample(client, name)) != expected:
        assert time.monotonic() < deadline, f"{name} = {value}, expected {expected}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def client(api: ServerHandle, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
        yield c


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
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The API runs in this test's event loop, so blocking this loop blocks the API's. No worker runs
    here: the stall is counted under role="api" only."""
    caplog.set_level(logging.WARNING, logger="graphrun.api.looplag")
    handle, task = await start_api(settings.model_copy(update={"loop_stall_ms": 100}))
    try:
        async with httpx.AsyncClient(base_url=handle.url, timeout=30) as client:
            api_before = await sample(client, "graphrun_event_loop_stalls_total", role="api")
            worker_before = await sample(client, "graphrun_event_loop_stalls_total", role="worker")
            lags_before = await sample(client, "graphrun_event_loop_lag_seconds_count", role="api")

            time.sleep(0.5)  # the deliberate block of the API's event loop

            deadline = time.monotonic() + 5
            while await sample(client, "graphrun_event_loop_stalls_total", role="api") < api_before + 1:
                assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
                await asyncio.sleep(0.05)
            assert await sample(client, "graphrun_event_loop_stalls_total", role="worker") == worker_before
            assert await sample(client, "graphrun_event_loop_lag_seconds_count", role="api") > lags_before
    finally:
        handle.server.should_exit = True
        await asyncio.wait_for(task, 10)
    messages = [
        r.getMessage()
        for r in caplog.records
        if r.name == "graphrun.api.looplag" and "test_a_stall_of_the_api_event_loop" in r.getMessage()
    ]
    assert len(messages) == 1, [r.getMessage() for r in caplog.records]
    stalled_ms = float(messages[0].split("stalled for ")[1].split(" ms")[0])
    assert 300 <= stalled_ms < 5000, messages[0]  # the 500 ms block, less at most one 100 ms interval
    assert "executions running" not in messages[0]


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
    await wait_status(client, sub["execution_id"], "running")
    assert await sample(client, "graphrun_executions_running") == 1
    await client.post(f"/executions/{sub['execution_id']}/cancel")
    await wait_status(client, sub["execution_id"], "cancelled")
    assert await sample(client, "graphrun_executions_submitted_total") == submitted + 4
    assert await sample(client, "graphrun_executions_total", status="succeeded") == succeeded + 3
    await wait_sample(client, "graphrun_executions_running", 0)
    assert await sample(client, "graphrun_executions_total", status="cancelled") == cancelled + 1
