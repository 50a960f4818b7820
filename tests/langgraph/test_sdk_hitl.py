"""Human in the loop and double-texting through `langgraph_sdk` (issue #16), on a graphrun fleet
(`graphrun api` under Gunicorn, 2 processes, + 2 `graphrun worker`, fast leases) and, where the
behaviour is LangGraph's own, on the reference `langgraph dev` (marked `reference`), which proves
the assertion. Graphs: tests/lgproject/hitl.py (`fanout`: two interrupts at once; `marks`: three
steps that write which run wrote them) and confirm.py (one question)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.helpers import scaled, wait_until
from tests.langgraph.sdk import collect, first_part, graphrun_only, status_of
from tests.langgraph.targets import (
    FAST_RECOVERY,
    Target,
    dump,
    fleet,
    reference,
    stop_all,
    wait_workers_listening,
)

# One xdist worker runs the whole module, so that each server starts once.
pytestmark = pytest.mark.xdist_group("langgraph-sdk-hitl")


@pytest.fixture(scope="module", params=["fleet", pytest.param("reference", marks=pytest.mark.reference)])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "fleet":
        with fleet(tmp, request.getfixturevalue("redis_server"), **FAST_RECOVERY) as t:
            yield t
    else:
        with reference(tmp) as t:
            yield t


@pytest.fixture
async def client(target: Target) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=target.url, api_key=None, timeout=scaled(60))
    try:
        yield c
    finally:
        await c.aclose()


def fleet_only(target: Target, why: str) -> None:
    if target.kind != "fleet":
        pytest.skip(f"a graphrun fleet's property: {why}")


def marks_of(*runs: tuple[str, int]) -> list[str]:
    return [f"{mark}:{i}" for mark, steps in runs for i in range(1, steps + 1)]


async def started(client: LangGraphClient, tid: str, rid: str, mark: str) -> None:
    """Until the run's step ``mark`` (``"<mark>:<step>"``) has started."""
    await first_part(
        client.runs.join_stream(tid, rid, last_event_id="-1", stream_mode="custom"),
        lambda p: p.event == "custom" and p.data == {"started": mark},
        seconds=60,
    )


async def slow_run(client: LangGraphClient, tid: str, mark: str, delay: float = 2.0, **kw: Any) -> str:
    run = await client.runs.create(
        tid, "marks", input={"mark": mark, "delay": scaled(delay)}, stream_mode=["values", "custom"], **kw
    )
    return str(run["run_id"])


# --- interrupts ---------------------------------------------------------------------------------------


async def test_several_interrupts_resumed_by_id(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    parts = await collect(
        client.runs.stream(tid, "fanout", input={"topic": "launch"}, stream_mode=["values", "updates"])
    )
    rid = parts[0].data["run_id"]
    asked = [i for p in parts if p.event == "updates" and "__interrupt__" in p.data for i in p.data["__interrupt__"]]
    by_branch = {i["value"]["ask"]: i["id"] for i in asked}
    assert set(by_branch) == {"a", "b"} and len(asked) == 2, dump(parts)
    # Each task's interrupt comes as a values event of its own (as the reference streams them).
    in_values = [i["id"] for p in parts if p.event == "values" for i in p.data.get("__interrupt__", [])]
    assert sorted(in_values) == sorted(by_branch.values()), dump(parts)
    assert (await client.runs.get(tid, rid))["status"] == "success"

    thread = await client.threads.get(tid)
    assert thread["status"] == "interrupted", dump(thread)
    listed = [i["id"] for task in thread["interrupts"].values() for i in task]
    assert sorted(listed) == sorted(by_branch.values()), dump(thread["interrupts"])
    state = await client.threads.get_state(tid)
    assert sorted(state["next"]) == ["a", "b"], dump(state)
    in_tasks = {t["name"]: [i["id"] for i in t["interrupts"]] for t in state["tasks"]}
    assert in_tasks == {name: [iid] for name, iid in by_branch.items()}, dump(state["tasks"])
    assert sorted(i["id"] for i in state["interrupts"]) == sorted(by_branch.values()), dump(state)

    resumed = await client.runs.wait(tid, "fanout", command={"resume": {by_branch["a"]: "yes", by_branch["b"]: "no"}})
    assert isinstance(resumed, dict) and sorted(resumed["answers"]) == ["a:yes", "b:no"], resumed
    thread = await client.threads.get(tid)
    assert thread["status"] == "idle" and thread["interrupts"] == {}, dump(thread)
    runs = await client.runs.list(tid)
    assert [r["status"] for r in runs] == ["success", "success"], dump(runs)


async def test_resume_of_one_of_two_leaves_the_other_pending(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "fanout", input={"topic": "x"})
    state = await client.threads.get_state(tid)
    ids = {t["name"]: t["interrupts"][0]["id"] for t in state["tasks"]}
    await client.runs.wait(tid, "fanout", command={"resume": {ids["a"]: "yes"}})
    thread = await client.threads.get(tid)
    assert thread["status"] == "interrupted", dump(thread)
    assert [i["id"] for task in thread["interrupts"].values() for i in task] == [ids["b"]], dump(thread)
    done = await client.runs.wait(tid, "fanout", command={"resume": {ids["b"]: "later"}})
    assert isinstance(done, dict) and sorted(done["answers"]) == ["a:yes", "b:later"], done


async def test_resume_that_matches_no_pending_interrupt_is_4xx(client: LangGraphClient, target: Target) -> None:
    graphrun_only(target, "accepts it (the run starts, and resumes nothing)")
    idle = (await client.threads.create())["thread_id"]
    await client.runs.wait(idle, "marks", input={"mark": "a"})
    assert await status_of(client.runs.create(idle, "marks", command={"resume": "yes"})) == 409
    asking = (await client.threads.create())["thread_id"]
    await client.runs.wait(asking, "fanout", input={})
    unknown = str(uuid.uuid4()).replace("-", "")
    assert await status_of(client.runs.create(asking, "fanout", command={"resume": {unknown: "yes"}})) == 409
    # Nothing stored: only the two first runs exist.
    assert len(await client.runs.list(idle)) == 1 and len(await client.runs.list(asking)) == 1
    assert (await client.threads.get(asking))["status"] == "interrupted"


@pytest.mark.parametrize("where", ["before", "after"])
async def test_interrupt_before_and_after_on_the_run(client: LangGraphClient, where: str) -> None:
    tid = (await client.threads.create())["thread_id"]
    kw: Any = {f"interrupt_{where}": ["step_2"]}
    result = await client.runs.wait(tid, "marks", input={"mark": "a"}, **kw)
    done = ["a:1"] if where == "before" else ["a:1", "a:2"]
    assert isinstance(result, dict) and result["marks"] == done, result
    state = await client.threads.get_state(tid)
    assert state["next"] == (["step_2"] if where == "before" else ["step_3"]), dump(state)
    thread = await client.threads.get(tid)
    assert thread["status"] == "interrupted", dump(thread)
    final = await client.runs.wait(tid, "marks", input=None)
    assert isinstance(final, dict) and final["marks"] == marks_of(("a", 3)), final
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_update_state_as_node_then_resume(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "marks", input={"mark": "a"}, interrupt_before=["step_2"])
    await client.threads.update_state(tid, {"marks": ["edited"], "mark": "b"}, as_node="step_1")
    state = await client.threads.get_state(tid)
    assert state["values"]["marks"] == ["a:1", "edited"] and state["next"] == ["step_2"], dump(state)
    final = await client.runs.wait(tid, "marks", input=None)
    assert isinstance(final, dict) and final["marks"] == ["a:1", "edited", "b:2", "b:3"], final


async def test_command_resume_with_update(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "confirm", input={"request": "deploy"})
    result = await client.runs.wait(tid, "confirm", command={"resume": "yes", "update": {"log": ["noted"]}})
    assert isinstance(result, dict) and result["log"] == ["noted", "deploy: yes"], result
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_command_goto_with_update(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "marks", input={"mark": "a"})
    result = await client.runs.wait(tid, "marks", command={"goto": "step_3", "update": {"mark": "g"}})
    assert isinstance(result, dict) and result["marks"] == [*marks_of(("a", 3)), "g:3"], result


# --- multitask strategies -----------------------------------------------------------------------------


async def test_reject_is_409_and_stores_nothing(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    first = await slow_run(client, tid, "a")
    status = await status_of(client.runs.create(tid, "marks", input={"mark": "b"}, multitask_strategy="reject"))
    assert status == 409
    assert [r["run_id"] for r in await client.runs.list(tid)] == [first]
    await client.runs.cancel(tid, first, wait=True)


async def test_enqueue_runs_in_order(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    first = await slow_run(client, tid, "a", delay=0.5)
    second = await slow_run(client, tid, "b", delay=0, multitask_strategy="enqueue")
    assert (await client.runs.get(tid, second))["status"] == "pending"
    result = await client.runs.join(tid, second)
    assert isinstance(result, dict) and result["marks"] == marks_of(("a", 3), ("b", 3)), result
    assert [(await client.runs.get(tid, r))["status"] for r in (first, second)] == ["success", "success"]


async def test_interrupt_keeps_the_progress_then_starts_the_new_run(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    first = await slow_run(client, tid, "a")
    await started(client, tid, first, "a:2")

    async def checkpointed() -> bool:
        # Checkpoints are written in the background (LangGraph's "async" durability): step 2 can
        # start before step 1's checkpoint has landed, and on a loaded machine the interrupt would
        # then find nothing to keep.
        return "a:1" in (await client.threads.get_state(tid))["values"].get("marks", [])

    await wait_until(checkpointed, 30, "a:1 in the thread's state")
    # delay 0: the thread's state would otherwise hand b the slow run's delay, three times.
    result = await client.runs.wait(tid, "marks", input={"mark": "b", "delay": 0}, multitask_strategy="interrupt")
    assert isinstance(result, dict) and result["marks"] == ["a:1", *marks_of(("b", 3))], result
    assert (await client.runs.get(tid, first))["status"] == "interrupted"
    assert len(await client.runs.list(tid)) == 2


async def test_rollback_deletes_the_run_and_starts_from_before_it(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "marks", input={"mark": "z"})
    first = await slow_run(client, tid, "a")
    await started(client, tid, first, "a:2")
    result = await client.runs.wait(tid, "marks", input={"mark": "b"}, multitask_strategy="rollback")
    assert isinstance(result, dict) and result["marks"] == marks_of(("z", 3), ("b", 3)), result
    assert await status_of(client.runs.get(tid, first)) == 404
    assert all(r["run_id"] != first for r in await client.runs.list(tid))
    # Its checkpoints went with it: the history is the z run's, then the b run's.
    history = await client.threads.get_history(tid, limit=100)
    assert first not in {h["metadata"].get("run_id") for h in history}, dump(history)
    assert history[0]["values"]["marks"] == marks_of(("z", 3), ("b", 3)) and history[0]["next"] == []


# --- many at once ---------------------------------------------------------------------------------------


async def test_twenty_enqueued_runs_at_once_run_one_at_a_time(client: LangGraphClient, target: Target) -> None:
    tid = (await client.threads.create())["thread_id"]
    # Separate connections: with Gunicorn's 2 processes, creates land on both.
    clients = [get_client(url=target.url, api_key=None, timeout=scaled(60)) for _ in range(4)]
    try:
        made = await asyncio.gather(
            *(
                clients[n % 4].runs.create(
                    tid, "marks", input={"mark": f"r{n}", "delay": 0.02}, multitask_strategy="enqueue"
                )
                for n in range(20)
            )
        )
    finally:
        for c in clients:
            await c.aclose()
    for run in made:
        await asyncio.wait_for(client.runs.join(tid, run["run_id"]), scaled(120))
    runs = await client.runs.list(tid, limit=100)
    assert len(runs) == 20 and {r["status"] for r in runs} == {"success"}, dump(runs)
    in_order = [r["kwargs"]["input"]["mark"] for r in sorted(runs, key=lambda r: r["created_at"])]
    state = await client.threads.get_state(tid)
    assert state["values"]["marks"] == marks_of(*((m, 3) for m in in_order)), dump(state["values"])


async def test_ten_rejects_at_once_on_an_idle_thread_one_accepted(client: LangGraphClient, target: Target) -> None:
    tid = (await client.threads.create())["thread_id"]
    clients = [get_client(url=target.url, api_key=None, timeout=scaled(60)) for _ in range(10)]
    try:
        statuses = await asyncio.gather(
            *(
                # The accepted run must outlast the other nine requests: once it has ended the thread
                # is idle again, and accepting a later reject would be right.
                status_of(
                    c.runs.create(tid, "marks", input={"mark": "r", "delay": scaled(1)}, multitask_strategy="reject")
                )
                for c in clients
            )
        )
    finally:
        for c in clients:
            await c.aclose()
    assert sorted(statuses) == [200] + [409] * 9, statuses
    (run,) = await client.runs.list(tid)
    await client.runs.cancel(tid, run["run_id"], wait=True)  # its 3 slow steps prove nothing more


# --- crashes and restarts -------------------------------------------------------------------------------


async def test_worker_sigkilled_with_queued_runs_loses_nothing(client: LangGraphClient, target: Target) -> None:
    fleet_only(target, "worker processes to kill")
    tid = (await client.threads.create())["thread_id"]
    rids = [await slow_run(client, tid, f"k{n}", delay=0.3) for n in range(5)]
    await started(client, tid, rids[0], "k0:2")
    # Which worker holds the run is not visible from outside: both die, mid-node, with 4 runs queued.
    for worker in target.workers:
        worker.kill()
    for worker in target.workers:
        worker.start()
    assert target.redis_url and target.prefix
    await asyncio.to_thread(
        wait_workers_listening, target.redis_url, target.prefix, len(target.workers), target.workers
    )
    for rid in rids:
        await asyncio.wait_for(client.runs.join(tid, rid), scaled(120))
    assert [(await client.runs.get(tid, r))["status"] for r in rids] == ["success"] * 5
    state = await client.threads.get_state(tid)
    assert state["values"]["marks"] == marks_of(*((f"k{n}", 3) for n in range(5))), dump(state["values"])


async def test_interrupted_thread_resumed_after_a_full_restart(client: LangGraphClient, target: Target) -> None:
    fleet_only(target, "a restart of every process on the same Redis and database")
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "confirm", input={"request": "deploy"})
    assert (await client.threads.get(tid))["status"] == "interrupted"
    stop_all([*target.workers, *target.procs])
    for proc in [*target.procs, *target.workers]:
        proc.start()

    async def answers() -> bool:
        try:
            return (await asyncio.to_thread(httpx.get, f"{target.url}/readyz", timeout=2)).status_code == 200
        except httpx.TransportError:
            return False

    async with asyncio.timeout(scaled(60)):
        while not await answers():
            await asyncio.sleep(0.2)
    assert target.redis_url and target.prefix
    await asyncio.to_thread(
        wait_workers_listening, target.redis_url, target.prefix, len(target.workers), target.workers
    )
    fresh = get_client(url=target.url, api_key=None, timeout=scaled(60))
    try:
        thread = await fresh.threads.get(tid)
        assert thread["status"] == "interrupted" and thread["interrupts"], dump(thread)
        resumed = await fresh.runs.wait(tid, "confirm", command={"resume": "yes"})
        assert isinstance(resumed, dict) and resumed["log"] == ["deploy: yes"], resumed
    finally:
        await fresh.aclose()


# --- the cancel-and-start gap (docs/guarantees.md) ----------------------------------------------------


@pytest.mark.parametrize("strategy", ["interrupt", "rollback"])
async def test_cancel_and_start_gap(client: LangGraphClient, target: Target, strategy: str) -> None:
    """From the second run's create to its first event, while the first is mid-node (the figure in
    docs/guarantees.md)."""
    fleet_only(target, "the measured figure is the fleet's")
    gaps = []
    for _ in range(5):
        tid = (await client.threads.create())["thread_id"]
        first = await slow_run(client, tid, "a", delay=5)
        await started(client, tid, first, "a:1")
        t0 = time.perf_counter()
        await first_part(
            client.runs.stream(
                tid,
                "marks",
                input={"mark": "b", "delay": 0},
                stream_mode="custom",
                multitask_strategy=strategy,  # type: ignore[arg-type]
            ),
            lambda p: p.event == "custom",
            seconds=60,
        )
        gaps.append(time.perf_counter() - t0)
    print(f"\n{target.kind} {strategy}: cancel-and-start gap median {statistics.median(gaps) * 1000:.0f} ms {gaps}")
    assert statistics.median(gaps) < scaled(5)
