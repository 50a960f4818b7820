"""The start grace: a fresh execution's first node waits a moment for a cancel, unless a client
follows it (then it starts at once)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from graphrun.redis.keys import Keys
from graphrun.settings import Settings
from tests.conftest import ServerHandle
from tests.graphs import REGISTRY_TOML
from tests.helpers import chain_workflow, read_events, submit, wait_status

GRACE_S = 3.0


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    toml = tmp_path / "graphrun.toml"
    toml.write_text(REGISTRY_TOML)
    return settings.model_copy(update={"config": toml, "start_grace_ms": int(GRACE_S * 1000)})


@pytest.fixture
async def client(api: ServerHandle, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
        yield c


async def test_a_followed_execution_starts_at_once(client: httpx.AsyncClient, redis: Redis, prefix: str) -> None:
    wf = await chain_workflow(client, steps=2)
    # Once untimed: the worker's subscription may still be on its way (a lost hint costs the grace).
    await read_events(client, (await submit(client, wf["id"]))["execution_id"])
    # Junk on the channel (not UTF-8) is logged and skipped; the listener goes on.
    await redis.publish(Keys(prefix).follow_channel, b"\xff\xfe")
    for _ in range(5):  # the hint may reach the worker before or after its claim
        sub = await submit(client, wf["id"])
        started = time.monotonic()
        events = await read_events(client, sub["execution_id"])  # follows it to the end
        assert [e["event"] for e in events][-1] == "complete"
        assert time.monotonic() - started < GRACE_S / 2


async def test_an_unfollowed_execution_waits_out_its_grace_within_its_time_limit(
    client: httpx.AsyncClient,
) -> None:
    wf = await chain_workflow(client, steps=2, delay_s=0.2)
    sub = await submit(client, wf["id"], timeout_s=GRACE_S * 3)
    submitted = time.monotonic()
    ex = await wait_status(client, sub["execution_id"], "succeeded", "timed_out", "failed", timeout=20)
    assert ex["status"] == "succeeded", ex
    assert time.monotonic() - submitted > GRACE_S * 0.8
    # A client that joins late (after the grace) changes nothing and reads the whole log.
    kinds = [e["event"] for e in await read_events(client, sub["execution_id"])]
    assert kinds == ["start", "node_start", "node_end", "node_start", "node_end", "complete"]


async def test_the_grace_takes_at_most_half_the_time_limit(client: httpx.AsyncClient) -> None:
    """The time limit counts from the claim, grace included; a limit shorter than the grace still
    leaves the run half of it (here 1 s of 2 s, for two nodes of 0.1 s)."""
    wf = await chain_workflow(client, steps=2, delay_s=0.1)
    sub = await submit(client, wf["id"], timeout_s=2.0)
    ex = await wait_status(client, sub["execution_id"], "succeeded", "timed_out", "failed", timeout=20)
    assert ex["status"] == "succeeded", ex
    slow = await submit(client, (await chain_workflow(client, steps=2, delay_s=5))["id"], timeout_s=2.0)
    ex = await wait_status(client, slow["execution_id"], "succeeded", "timed_out", "failed", timeout=20)
    assert ex["status"] == "timed_out", ex
    # The limit from the claim (started_at), not limit + grace (which would be 3 s).
    ran = dt.datetime.fromisoformat(ex["finished_at"]) - dt.datetime.fromisoformat(ex["started_at"])
    assert 1.9 < ran.total_seconds() < 2.6, ex


async def _run_worker(settings: Settings) -> tuple[asyncio.Event, asyncio.Task[None]]:
    from graphrun.worker.process import run_worker

    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(run_worker(settings, stop))
    await asyncio.sleep(0.05)
    if task.done():
        task.result()
    return stop, task


async def test_a_worker_stopped_during_the_grace_hands_the_execution_over_before_start(
    api: ServerHandle, settings: Settings
) -> None:
    """Shut down while an execution waits out its grace: it goes back to the queue without a
    ``start``, and the next worker runs it once (one ``start``, no ``resumed``)."""
    quick_stop = settings.model_copy(update={"shutdown_grace_s": 0.0})
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        wf = await chain_workflow(client, steps=2)
        stop, first = await _run_worker(quick_stop)
        sub = await submit(client, wf["id"])  # nobody follows it: it waits out its grace
        await wait_status(client, sub["execution_id"], "running", timeout=10)
        stop.set()
        await asyncio.wait_for(first, 10)
        ex = (await client.get(f"/executions/{sub['execution_id']}")).json()
        assert ex["status"] == "queued" and ex["attempt"] == 1, ex
        stop, second = await _run_worker(quick_stop)
        try:
            ex = await wait_status(client, sub["execution_id"], "succeeded", "failed", timeout=20)
            assert ex["status"] == "succeeded" and ex["attempt"] == 2, ex
            kinds = [e["event"] for e in await read_events(client, sub["execution_id"])]
            assert kinds == ["start", "node_start", "node_end", "node_start", "node_end", "complete"]
        finally:
            stop.set()
            await asyncio.wait_for(second, 10)


async def test_an_execution_queued_for_over_twice_the_grace_gets_none(api: ServerHandle, settings: Settings) -> None:
    """A backlog: a cancel sent right after the submit would have been seen at the claim, so an
    execution that waited in the queue for more than twice the grace starts at once."""
    short = settings.model_copy(update={"start_grace_ms": 1000})
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        wf = await chain_workflow(client, steps=2)
        sub = await submit(client, wf["id"])  # no worker yet: it waits in the queue
        await asyncio.sleep(2.3)
        stop, task = await _run_worker(short)
        try:
            ex = await wait_status(client, sub["execution_id"], "succeeded", "failed", timeout=20)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
    assert ex["status"] == "succeeded", ex
    ran = dt.datetime.fromisoformat(ex["finished_at"]) - dt.datetime.fromisoformat(ex["started_at"])
    assert ran.total_seconds() < 0.6, ex  # with its grace it would take 1 s and more
