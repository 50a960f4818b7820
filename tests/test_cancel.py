"""Cancelling executions: mid-node within a second, racing the pick-up, and synchronous nodes that
no one can stop (their execution ends at once, whatever they return later is dropped)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from graphrun.redis.batch import CommandBatcher
from graphrun.redis.cancel import CancelBus
from graphrun.redis.keys import Keys
from graphrun.settings import Settings
from tests.conftest import InLoopWorker, ServerHandle
from tests.graphs import REGISTRY_TOML
from tests.helpers import LiveEvents, chain_workflow, read_events, scaled, submit, wait_status, wait_until

WorkerFactory = Callable[[Settings], Awaitable[InLoopWorker]]


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(REGISTRY_TOML)


@pytest.fixture
def client(client: httpx.AsyncClient, worker: InLoopWorker) -> httpx.AsyncClient:
    """The API client, with a worker running."""
    return client


async def cancel_and_time(client: httpx.AsyncClient, live: LiveEvents) -> float:
    """Seconds from sending the cancel request to receiving the `cancelled` event over SSE."""
    sent = time.monotonic()
    response = await client.post(f"/executions/{live.execution_id}/cancel")
    assert response.status_code == 202, response.text
    return (await live.wait_for("cancelled", timeout=10))["at"] - sent


async def test_cancel_inside_a_30_s_node_arrives_within_one_second(client: httpx.AsyncClient) -> None:
    wf = await chain_workflow(client, steps=3, delay_s=30)
    sub = await submit(client, wf["id"])
    live = LiveEvents(client, sub["execution_id"])
    try:
        assert (await live.wait_for("node_start"))["data"]["node"] == "step_1"
        await asyncio.sleep(0.2)  # well inside step_1's 30 s
        assert await cancel_and_time(client, live) < scaled(1.0)
        # The final status was stored before the terminal event was written.
        assert (await client.get(f"/executions/{sub['execution_id']}")).json()["status"] == "cancelled"
    finally:
        await live.close()
    events = await read_events(client, sub["execution_id"])
    assert [e["event"] for e in events] == ["start", "node_start", "cancelled"]
    assert {e["data"].get("node") for e in events} == {None, "step_1"}  # step_2 never started
    again = await client.post(f"/executions/{sub['execution_id']}/cancel")
    assert again.status_code == 202 and again.json()["status"] == "cancelled"


async def test_cancel_racing_the_pick_up_is_never_lost(client: httpx.AsyncClient, settings: Settings) -> None:
    """Cancel sent the moment submit returns, on an idle worker ready to pick each up at once, 100
    times one after another: every one ends cancelled and none runs a node (the worker holds a fresh
    execution's first node for its start grace, and no client follows these). The same when the
    client opens the event stream and cancels at once (the follow hint ends the grace only a few ms
    after it arrives). Then 100 pairs at once, where client, API and worker share this one event
    loop: every one ends cancelled, and one that ran a node had its cancel arrive after its grace was
    over (the grace is a margin, not a lock; bench/cancel.py measures the race against `graphrun
    serve`)."""
    grace_s = settings.start_grace_ms / 1000
    assert grace_s > 0
    wf = await chain_workflow(client, steps=2, delay_s=30)

    async def submit_then_cancel() -> str:
        execution_id = (await submit(client, wf["id"]))["execution_id"]
        response = await client.post(f"/executions/{execution_id}/cancel")
        assert response.status_code == 202, response.text
        return execution_id

    async def outcome(execution_id: str) -> tuple[dict, tuple[str, ...]]:
        ex = await wait_status(client, execution_id, "cancelled", "succeeded", "failed", "timed_out")
        return ex, tuple(e["event"] for e in await read_events(client, execution_id))

    async def follow_and_cancel() -> str:
        # The stream's request goes out first: its follow hint ends the grace a moment later.
        execution_id = (await submit(client, wf["id"]))["execution_id"]
        follower = asyncio.ensure_future(read_events(client, execution_id))
        await asyncio.sleep(0)
        response = await client.post(f"/executions/{execution_id}/cancel")
        assert response.status_code == 202, response.text
        await follower
        return execution_id

    one_by_one = [await submit_then_cancel() for _ in range(100)]
    burst = list(await asyncio.gather(*(submit_then_cancel() for _ in range(100))))
    followed = [await follow_and_cancel() for _ in range(100)]
    for name, ids in (("one by one", one_by_one), ("100 at once", burst), ("follow and cancel", followed)):
        outcomes = await asyncio.gather(*(outcome(i) for i in ids))
        print(f"\nsubmit→cancel, {name}: {dict(Counter(kinds for _, kinds in outcomes))}")
        for ex, kinds in outcomes:
            assert ex["status"] == "cancelled", ex
            # Cancelled while queued or in its grace (just `cancelled`), or found by the worker's
            # last look before the first node (`start`, `cancelled`): no node ran.
            if name == "one by one" or kinds in {("cancelled",), ("start", "cancelled")}:
                assert kinds in {("cancelled",), ("start", "cancelled")}, (name, kinds)
                continue
            assert kinds == ("start", "node_start", "cancelled"), kinds
            events = await read_events(client, ex["id"])
            # Interrupted at once, not run out (its node awaits 30 s).
            assert events[-1]["data"]["ts"] - events[1]["data"]["ts"] < 10, events
            if name == "100 at once":
                created, started = (dt.datetime.fromisoformat(ex[k]).timestamp() for k in ("created_at", "started_at"))
                # `start` is written once the grace is over: held for the grace from the claim, or
                # none for one that had waited over twice the grace when the worker looked (see
                # worker/grace.py; on a busy machine that look comes a while after the claim).
                began = events[0]["data"]["ts"]
                assert began - started >= grace_s or began - created > 2 * grace_s, (
                    ex,
                    events[0],
                    "a node ran before its grace was over",
                )
        if name == "follow and cancel":
            # The follower's hint ends the grace 2 ms after it arrives: a margin the cancel sent
            # with it wins unless this shared loop stalls (bench/cancel.py: 0 of 100 on serve).
            ran = sum("node_start" in kinds for _, kinds in outcomes)
            assert ran <= 5, f"{ran} of 100 ran a node"


async def test_a_worker_that_claims_after_the_flag_never_starts_the_graph(
    client_factory: Callable[..., httpx.AsyncClient],
    api: ServerHandle,
    worker_factory: WorkerFactory,
    settings: Settings,
    redis: Redis,
    prefix: str,
    batcher: CommandBatcher,
) -> None:
    """The half of the race the worker owns, made deterministic: the API has set the flag (it does
    so before it looks at the execution), then a worker claims the execution before the API's own
    compare-and-set. The worker finds the flag right after its claim and never starts the graph."""
    c = client_factory(api)
    wf = await chain_workflow(c, steps=2, delay_s=30)
    sub = await submit(c, wf["id"])  # no worker yet: it stays queued
    await CancelBus(redis, Keys(prefix), batcher=batcher).request(sub["execution_id"], push=False)
    await worker_factory(settings)
    ex = await wait_status(c, sub["execution_id"], "cancelled", "running", timeout=20)
    ex = await wait_status(c, sub["execution_id"], "cancelled", timeout=5)
    assert ex["started_at"] is not None and ex["attempt"] == 1  # claimed by the worker, not the API
    assert [e["event"] for e in await read_events(c, sub["execution_id"])] == ["cancelled"]


@pytest.mark.parametrize("graph", ["sync_sleeper", "stubborn"])
async def test_a_node_that_cannot_be_stopped_is_cancelled_at_once_and_its_late_result_dropped(
    client: httpx.AsyncClient, tmp_path: Path, graph: str
) -> None:
    """A synchronous node (a thread nothing can stop), or an async node that ignores its
    cancellation: the execution ends at once all the same, and what the node does afterwards
    never reaches the log or the store."""
    marker, release = tmp_path / "returned", tmp_path / "release"
    # The node holds until the test releases it (60 s at most), however slow this machine is.
    config = {"sleep_s": 60, "marker": str(marker), "release": str(release)}
    created = await client.post("/workflows", json={"name": "s", "graph": graph, "config": config})
    sub = await submit(client, created.json()["id"])
    live = LiveEvents(client, sub["execution_id"])
    try:
        await live.wait_for("node_start")
        await wait_until(Path(f"{marker}.entered").exists, 10, "the node to run")
        assert await cancel_and_time(client, live) < scaled(1.0)
        assert not marker.exists(), "the node's thread was still sleeping when the execution ended"
        assert (await client.get(f"/executions/{sub['execution_id']}")).json()["status"] == "cancelled"
    finally:
        await live.close()
        release.touch()
    await wait_until(marker.exists, 10, "the node to return")
    await asyncio.sleep(0.5)  # room for a late node_end / custom event to (wrongly) arrive
    events = await read_events(client, sub["execution_id"])
    assert [e["event"] for e in events] == ["start", "node_start", "cancelled"]
    ex = (await client.get(f"/executions/{sub['execution_id']}")).json()
    assert (ex["status"], ex["output"]) == ("cancelled", None)


async def test_a_sync_node_times_out_at_once_and_its_late_result_dropped(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    marker, release = tmp_path / "returned", tmp_path / "release"
    config = {"sleep_s": 60, "marker": str(marker), "release": str(release)}
    created = await client.post("/workflows", json={"name": "s", "graph": "sync_sleeper", "config": config})
    sub = await submit(client, created.json()["id"], timeout_s=0.3)
    live = LiveEvents(client, sub["execution_id"])
    try:
        start = await live.wait_for("start")
        timeout = await live.wait_for("timeout", timeout=10)
        assert timeout["data"]["timeout_s"] == 0.3
        assert timeout["at"] - start["at"] < 0.3 + scaled(1.0)
        assert not marker.exists()
        assert (await client.get(f"/executions/{sub['execution_id']}")).json()["status"] == "timed_out"
    finally:
        await live.close()
        release.touch()
    await wait_until(marker.exists, 10, "the node to return")
    await asyncio.sleep(0.5)  # room for a late node_end / custom event to (wrongly) arrive
    events = await read_events(client, sub["execution_id"])
    assert [e["event"] for e in events] == ["start", "node_start", "timeout"]


async def test_cancelling_the_execution_that_builds_a_graph_fails_none_waiting_for_it(
    client: httpx.AsyncClient,
) -> None:
    """Executions of one workflow version share one build; cancelling the execution that started it
    must not fail the others waiting for the same graph."""
    created = await client.post("/workflows", json={"name": "s", "graph": "slow_to_build", "config": {"build_s": 1}})
    first = await submit(client, created.json()["id"])
    await wait_status(client, first["execution_id"], "running")  # building the graph now
    others = [await submit(client, created.json()["id"]) for _ in range(3)]
    for other in others:
        await wait_status(client, other["execution_id"], "running")  # waiting for that build
    await asyncio.sleep(0.2)
    assert (await client.post(f"/executions/{first['execution_id']}/cancel")).status_code == 202
    for other in others:
        ex = await wait_status(client, other["execution_id"], "succeeded", "failed", "cancelled", timeout=30)
        assert (ex["status"], ex["output"], ex["error"]) == ("succeeded", {"n": 1}, None), ex
    assert (await client.get(f"/executions/{first['execution_id']}")).json()["status"] == "cancelled"


async def test_a_push_missed_while_the_listener_reconnects_is_caught_up(
    client: httpx.AsyncClient, redis: Redis, prefix: str, batcher: CommandBatcher
) -> None:
    wf = await chain_workflow(client, steps=2, delay_s=30)
    sub = await submit(client, wf["id"])
    live = LiveEvents(client, sub["execution_id"])
    try:
        await live.wait_for("node_start")
        # The flag alone, as if its push had been published while the worker's listener was away.
        await CancelBus(redis, Keys(prefix), batcher=batcher).request(sub["execution_id"], push=False)
        await asyncio.sleep(0.3)
        assert "cancelled" not in live.kinds  # nothing polls the flag: only a push or a re-check
        await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # the listener reconnects
        await live.wait_for("cancelled", timeout=10)
    finally:
        await live.close()
