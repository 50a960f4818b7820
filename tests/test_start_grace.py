"""The start grace: a fresh execution's first node waits a moment for a cancel, unless a client
follows it (then it starts at once)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from redis.asyncio import Redis

from graphrun.redis.keys import Keys
from graphrun.settings import Settings
from tests.conftest import InLoopWorker
from tests.graphs import REGISTRY_TOML
from tests.helpers import chain_workflow, read_events, scaled, submit, wait_status, wait_until

GRACE_S = 3.0
# A grace no run on a loaded machine comes near: where a test must see that a run did not wait out
# its grace, or that a stop landed inside it, it runs with this one instead.
LONG_GRACE_S = 60.0

WorkerFactory = Callable[[Settings], Awaitable[InLoopWorker]]


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(REGISTRY_TOML, start_grace_ms=int(GRACE_S * 1000))


def with_grace(settings: Settings, grace_s: float, **update: object) -> Settings:
    return settings.model_copy(update={"start_grace_ms": int(grace_s * 1000), **update})


async def test_a_followed_execution_starts_at_once(
    client: httpx.AsyncClient, settings: Settings, worker_factory: WorkerFactory, redis: Redis, prefix: str
) -> None:
    await worker_factory(with_grace(settings, LONG_GRACE_S))
    wf = await chain_workflow(client, steps=2)
    await read_events(client, (await submit(client, wf["id"]))["execution_id"])  # builds the graph
    # Junk on the channel (not UTF-8) is logged and skipped; the listener goes on.
    await redis.publish(Keys(prefix).follow_channel, b"\xff\xfe")
    for _ in range(5):  # the hint may reach the worker before or after its claim
        sub = await submit(client, wf["id"])
        started = time.monotonic()
        events = await read_events(client, sub["execution_id"])  # follows it to the end
        assert [e["event"] for e in events][-1] == "complete"
        assert time.monotonic() - started < scaled(1.5)  # its grace would hold it for 60 s


async def test_an_unfollowed_execution_waits_out_its_grace_within_its_time_limit(
    client: httpx.AsyncClient, worker: InLoopWorker
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


async def test_the_grace_takes_at_most_half_the_time_limit(
    client: httpx.AsyncClient, settings: Settings, worker_factory: WorkerFactory
) -> None:
    """The time limit counts from the claim, grace included; a limit shorter than the grace still
    leaves the run half of it (here 2 s of 4 s, for two nodes of 0.1 s)."""
    await worker_factory(with_grace(settings, LONG_GRACE_S))
    wf = await chain_workflow(client, steps=2, delay_s=0.1)
    sub = await submit(client, wf["id"], timeout_s=4.0)
    ex = await wait_status(client, sub["execution_id"], "succeeded", "timed_out", "failed", timeout=20)
    assert ex["status"] == "succeeded", ex
    slow = await submit(client, (await chain_workflow(client, steps=2, delay_s=30))["id"], timeout_s=4.0)
    ex = await wait_status(client, slow["execution_id"], "succeeded", "timed_out", "failed", timeout=20)
    assert ex["status"] == "timed_out", ex
    # The limit from the claim (started_at), not limit + grace (which would be 6 s).
    ran = dt.datetime.fromisoformat(ex["finished_at"]) - dt.datetime.fromisoformat(ex["started_at"])
    assert 3.9 < ran.total_seconds() < 6.0, ex


async def test_a_worker_stopped_during_the_grace_hands_the_execution_over_before_start(
    client: httpx.AsyncClient, settings: Settings, worker_factory: WorkerFactory
) -> None:
    """Shut down while an execution waits out its grace: it goes back to the queue without a
    ``start``, and the next worker runs it once (one ``start``, no ``resumed``)."""
    quick_stop = with_grace(settings, LONG_GRACE_S, shutdown_grace_s=0.0)
    wf = await chain_workflow(client, steps=2)
    first = await worker_factory(quick_stop)
    sub = await submit(client, wf["id"])  # nobody follows it: it waits out its grace
    await wait_status(client, sub["execution_id"], "running", timeout=10)
    await first.stop()
    ex = (await client.get(f"/executions/{sub['execution_id']}")).json()
    assert ex["status"] == "queued" and ex["attempt"] == 1, ex
    await worker_factory(quick_stop)
    ex = await wait_status(client, sub["execution_id"], "succeeded", "failed", timeout=20)
    assert ex["status"] == "succeeded" and ex["attempt"] == 2, ex
    kinds = [e["event"] for e in await read_events(client, sub["execution_id"])]
    assert kinds == ["start", "node_start", "node_end", "node_start", "node_end", "complete"]


async def test_an_execution_queued_for_over_twice_the_grace_gets_none(
    client: httpx.AsyncClient, settings: Settings, worker_factory: WorkerFactory
) -> None:
    """A backlog: a cancel sent right after the submit would have been seen at the claim, so an
    execution that waited in the queue for more than twice the grace starts at once."""
    grace_s = 2.0
    wf = await chain_workflow(client, steps=2)
    sub = await submit(client, wf["id"])  # no worker yet: it waits in the queue
    row = (await client.get(f"/executions/{sub['execution_id']}")).json()
    created = dt.datetime.fromisoformat(row["created_at"])
    await wait_until(lambda: (dt.datetime.now(dt.UTC) - created).total_seconds() > 2 * grace_s + 0.1, 10)
    await worker_factory(with_grace(settings, grace_s))
    ex = await wait_status(client, sub["execution_id"], "succeeded", "failed", timeout=20)
    assert ex["status"] == "succeeded", ex
    ran = dt.datetime.fromisoformat(ex["finished_at"]) - dt.datetime.fromisoformat(ex["started_at"])
    assert ran.total_seconds() < scaled(0.6), ex  # with its grace it would take 2 s and more
