"""The SSE stream over real HTTP against a real API and worker (API.md §3): resumes after any
disconnect, hundreds of clients on a constant number of Redis connections, an expired log."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from graphrun.events.ids import ZERO, StreamId
from graphrun.redis.connections import API_POOL_SIZE, ConnectionName
from graphrun.redis.keys import Keys
from graphrun.settings import Settings
from tests.conftest import InLoopWorker, ServerHandle
from tests.helpers import chain_workflow, parse_frame, read_events, scaled, submit, wait_status, wait_until

ApiFactory = Callable[[Settings], Awaitable[ServerHandle]]
WorkerFactory = Callable[[Settings], Awaitable[InLoopWorker]]


@pytest.fixture
def client(client: httpx.AsyncClient, worker: InLoopWorker) -> httpx.AsyncClient:
    """The API client, with a worker running."""
    return client


def seeded_rng(name: str) -> tuple[int, random.Random]:
    """A random seed per run (GRAPHRUN_TEST_SEED replays one), printed so a failure can be replayed."""
    seed = int(os.environ.get("GRAPHRUN_TEST_SEED") or random.randrange(2**32))
    print(f"{name}: GRAPHRUN_TEST_SEED={seed}")
    return seed, random.Random(seed)


async def read_some(
    client: httpx.AsyncClient, execution_id: str, last_event_id: str | None, count: int
) -> list[dict[str, Any]]:
    """Read ``count`` events, then drop the connection (whatever else is in flight is lost)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    events: list[dict[str, Any]] = []
    buffer = ""
    async with client.stream("GET", f"/executions/{execution_id}/events", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        async for chunk in response.aiter_text():
            buffer += chunk
            while "\n\n" in buffer:
                frame, buffer = buffer.split("\n\n", 1)
                event = parse_frame(frame)
                if event:
                    events.append(event)
                if len(events) == count or (event and event["event"] == "complete"):
                    return events  # leaving the block closes the connection mid-stream
    return events


async def stream_end(redis: Redis, keys: Keys, execution_id: str) -> StreamId:
    raw = await redis.xrevrange(keys.events(execution_id), max="+", min="-", count=1)
    return StreamId.parse(raw[0][0]) if raw else ZERO


async def test_resume_after_hundreds_of_random_disconnects_equals_one_read(
    client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    seed, rng = seeded_rng("random disconnects")
    keys = Keys(settings.redis_prefix)
    # 25 nodes x (40 custom + node_start + node_end) + start + complete = 1,052 events, written in
    # bursts 0.25 s apart: a reader is behind (catch-up) right after a burst and live before the next.
    steps, emit = 25, 40
    wf = await chain_workflow(client, steps=steps, emit=emit, delay_s=0.25)
    execution_id = (await submit(client, wf["id"]))["execution_id"]
    uninterrupted = asyncio.create_task(read_events(client, execution_id, timeout=120))

    seen: list[dict[str, Any]] = []
    disconnects = live = catch_up = 0
    while not (seen and seen[-1]["event"] == "complete"):
        end_before = await stream_end(redis, keys, execution_id)
        count = rng.randint(1, 7)
        if live < 3 and rng.random() < 0.05:
            # Now and then read past the end seen before connecting, so that the drop lands live
            # even when a busy machine keeps the reader behind the writer.
            count += end_before.seq - (StreamId.parse(seen[-1]["id"]).seq if seen else -1)
        part = await read_some(client, execution_id, seen[-1]["id"] if seen else None, count)
        seen += part
        if part and part[-1]["event"] != "complete":
            disconnects += 1
            # Events above the end seen before connecting reached this connection live (hub);
            # otherwise the connection was still replaying the log when it was dropped.
            if StreamId.parse(part[-1]["id"]) > end_before:
                live += 1
            else:
                catch_up += 1
    whole = await asyncio.wait_for(uninterrupted, 120)
    print(f"{disconnects} disconnects: {live} live, {catch_up} during catch-up (seed {seed})")

    assert len(whole) == 2 + steps * (emit + 2), f"seed {seed}"
    assert [StreamId.parse(e["id"]).seq for e in whole] == list(range(len(whole)))
    assert seen == whole, f"resumed reads differ from one uninterrupted read (seed {seed})"
    assert disconnects >= 200, f"seed {seed}"
    assert live >= 3 and catch_up >= 3, f"{live} live, {catch_up} catch-up disconnects (seed {seed})"


async def api_connections(redis: Redis, after_id: int) -> dict[str, int]:
    """Connections opened after ``after_id``, by client name (ids only grow)."""
    counts: dict[str, int] = {}
    for c in await redis.client_list():
        if int(c["id"]) > after_id:
            counts[c["name"]] = counts.get(c["name"], 0) + 1
    return counts


def api_total(counts: dict[str, int]) -> int:
    return counts.get(ConnectionName.API, 0) + counts.get(ConnectionName.STREAM_HUB, 0)


async def test_hundreds_of_clients_share_a_constant_number_of_redis_connections(
    settings: Settings, redis: Redis, api_factory: ApiFactory, worker_factory: WorkerFactory
) -> None:
    clients, executions = 300, 10
    baseline = max(int(c["id"]) for c in await redis.client_list())
    handle = await api_factory(settings)
    worker = await worker_factory(settings)
    try:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(base_url=handle.url, timeout=120, limits=limits) as http:
            quick = await chain_workflow(http, steps=2, delay_s=0.3, emit=3)
            single = (await submit(http, quick["id"]))["execution_id"]
            one_client = await read_events(http, single)
            after_one = api_total(await api_connections(redis, baseline))

            # No worker until every client is connected (slow on a busy machine): the executions
            # wait in the queue, their streams followed, and connections are sampled with all the
            # clients there; then they run, and sampling goes on while events flow.
            await worker.stop()
            wf = await chain_workflow(http, steps=2, delay_s=0.3, emit=3)

            ids = [(await submit(http, wf["id"]))["execution_id"] for _ in range(executions)]
            connected = 0

            async def follow(execution_id: str) -> list[dict[str, Any]]:
                nonlocal connected
                events: list[dict[str, Any]] = []
                async with http.stream("GET", f"/executions/{execution_id}/events") as response:
                    assert response.status_code == 200
                    connected += 1
                    buffer = ""
                    async for chunk in response.aiter_text():
                        buffer += chunk
                        while "\n\n" in buffer:
                            frame, buffer = buffer.split("\n\n", 1)
                            if event := parse_frame(frame):
                                events.append(event)
                connected -= 1
                return events

            readers = [asyncio.create_task(follow(ids[i % executions])) for i in range(clients)]
            await wait_until(lambda: connected == clients, 60, lambda: f"{connected} of {clients} connected")
            samples: list[tuple[int, dict[str, int]]] = []
            for _ in range(3):
                samples.append((connected, await api_connections(redis, baseline)))
            worker = await worker_factory(settings)
            deadline = time.monotonic() + scaled(120)
            while not all(r.done() for r in readers) and time.monotonic() < deadline:
                samples.append((connected, await api_connections(redis, baseline)))
                await asyncio.sleep(0.1)
            results = await asyncio.wait_for(asyncio.gather(*readers), scaled(60))
            after_all = await api_connections(redis, baseline)
    finally:
        await worker.stop()

    during = [api_total(counts) for n, counts in samples if n == clients]
    print(f"API connections: {after_one} after one client; {max(during)} max with {clients} clients; after {after_all}")
    expected = [e["event"] for e in one_client]
    assert expected[0] == "start" and expected[-1] == "complete"
    assert all([e["event"] for e in r] == expected for r in results)
    assert len(during) >= 3, "the clients were not connected all at once long enough to sample"
    # One hub reader, the batcher's own connection, at most API_POOL_SIZE shared ones (the API never
    # opens the task queue's): the same bound for one client and for hundreds (a reader per client
    # would hold 300 more).
    bound = 1 + API_POOL_SIZE + 1
    assert all(counts.get(ConnectionName.STREAM_HUB, 0) == 1 for _, counts in samples)
    assert after_one <= bound
    assert max(during) <= bound, samples
    assert api_total(after_all) <= bound


async def test_an_expired_log_is_answered_with_the_stored_terminal(
    client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    keys = Keys(settings.redis_prefix)
    wf = await chain_workflow(client, steps=2)
    ok = (await submit(client, wf["id"]))["execution_id"]
    failing = await chain_workflow(client, steps=2, fail_at=2)
    bad = (await submit(client, failing["id"]))["execution_id"]
    full = await read_events(client, ok)
    assert full[-1]["event"] == "complete"
    assert (await read_events(client, bad))[-1]["event"] == "error"

    await redis.delete(keys.events(ok), keys.events(bad))  # as if GRAPHRUN_EVENT_TTL_S had passed

    (again,) = await read_events(client, ok)
    assert again["event"] == "complete" and again["data"]["output"] == {"n": 2}
    assert again["data"]["execution_id"] == ok and again["id"]
    # Resuming from an event the client had: the rebuilt terminal comes after it.
    (resumed,) = await read_events(client, ok, last_event_id=full[1]["id"])
    assert resumed["event"] == "complete" and StreamId.parse(resumed["id"]) > StreamId.parse(full[1]["id"])
    (error,) = await read_events(client, bad)
    assert error["event"] == "error"
    assert error["data"]["error"] == {"type": "RuntimeError", "message": "fail_at"}


async def test_trimmed_events_are_announced_without_an_id(
    settings: Settings,
    api_factory: ApiFactory,
    worker_factory: WorkerFactory,
    client_factory: Callable[..., httpx.AsyncClient],
) -> None:
    small = settings.model_copy(update={"event_maxlen": 100})
    client = client_factory(await api_factory(small))
    await worker_factory(small)
    wf = await chain_workflow(client, steps=2, emit=500)
    execution_id = (await submit(client, wf["id"]))["execution_id"]
    await wait_status(client, execution_id, "succeeded", timeout=60)
    late = await read_events(client, execution_id)

    truncated, first, *rest = late
    assert truncated["event"] == "truncated" and "id" not in truncated  # Last-Event-ID stays put
    assert truncated["data"]["missed"] == StreamId.parse(first["id"]).seq > 0
    assert [StreamId.parse(e["id"]).seq for e in [first, *rest]] == list(range(truncated["data"]["missed"], 1006))
    assert rest[-1]["event"] == "complete"
