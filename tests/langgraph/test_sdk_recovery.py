"""A LangGraph run on a thread survives its worker's SIGKILL: on a graphrun fleet (Gunicorn API + 2
workers, fast leases), driven through `langgraph_sdk`, the run is taken over and the thread's state
ends exactly as if nothing had happened (each step's item once, in order; one checkpoint per step)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.helpers import scaled
from tests.langgraph.sdk import collect, steps_run_at_step_3
from tests.langgraph.targets import FAST_RECOVERY, Target, dump, fleet, wait_workers_listening

ITEMS = [f"item-{i}" for i in range(1, 6)]


@pytest.fixture(scope="module")
def target(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with fleet(tmp_path_factory.mktemp("fleet"), redis_server, **FAST_RECOVERY) as t:
        yield t


@pytest.fixture
async def client(target: Target) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=target.url, api_key=None)
    try:
        yield c
    finally:
        await c.aclose()


async def test_worker_sigkilled_mid_run_leaves_the_thread_exact(client: LangGraphClient, target: Target) -> None:
    tid, rid = await steps_run_at_step_3(client)
    # Mid-node of step_3, two items written. Which of the two workers holds the run is not visible
    # from outside, so both die; the run resumes on a restarted one.
    for worker in target.workers:
        worker.kill()
    assert (await client.runs.get(tid, rid))["status"] == "running"
    for worker in target.workers:
        worker.start()
    assert target.redis_url and target.prefix
    await asyncio.to_thread(
        wait_workers_listening, target.redis_url, target.prefix, len(target.workers), target.workers
    )

    joined = await asyncio.wait_for(client.runs.join(tid, rid), scaled(60))
    assert joined["items"] == ITEMS, dump(joined)
    assert (await client.runs.get(tid, rid))["status"] == "success"
    state = await client.threads.get_state(tid)
    assert state["values"]["items"] == ITEMS and state["next"] == [], dump(state)
    history = await client.threads.get_history(tid, limit=100)
    assert [s["metadata"]["step"] for s in history] == list(range(5, -2, -1)), dump(history)
    assert [s["values"].get("items", []) for s in history] == [ITEMS[:n] for n in range(5, -1, -1)] + [[]]
    assert (await client.threads.get(tid))["status"] == "idle"

    # The run's stream holds each step's update once, in order, across the take-over. LangGraph
    # itself, resuming from a checkpoint with a step's writes pending, streams those writes again
    # marked `__metadata__: {"cached": true}`: a client can tell them from new ones.
    replay = await collect(client.runs.join_stream(tid, rid, last_event_id="-1"))
    updates = [p.data for p in replay if p.event == "updates"]
    fresh = [u for u in updates if not u.get("__metadata__", {}).get("cached")]
    assert fresh == [{f"step_{i}": {"items": [f"item-{i}"]}} for i in range(1, 6)], dump(updates)

    # The thread goes on: a next run on it starts from the exact state.
    again = await client.runs.wait(tid, "steps", input={"delay": 0})
    assert isinstance(again, dict) and again["items"] == ITEMS * 2
