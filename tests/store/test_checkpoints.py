"""The checkpointers graphrun runs executions with (Redis, and SQLite or PostgreSQL with
GRAPHRUN_CHECKPOINTS=database), one suite for all: an interrupted run resumes after its last
completed step."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.graph import END, START, StateGraph
from redis.asyncio import Redis

from graphrun.checkpoint import open_checkpointer
from graphrun.checkpoint.gate import RunGate
from graphrun.errors import FencedError
from graphrun.events.log import EventLog
from graphrun.events.model import EventKind
from graphrun.redis.batch import CommandBatcher
from graphrun.redis.keys import Keys
from graphrun.settings import Settings
from graphrun.store import open_store
from tests.conftest import InLoopWorker, ServerHandle
from tests.helpers import chain_workflow, read_events, submit, wait_until


class S(TypedDict):
    n: int


def counting_chain(calls: list[str], gate: asyncio.Event) -> Any:
    def node(name: str) -> Any:
        async def run(state: S) -> S:
            calls.append(name)
            if name == "step_3" and not gate.is_set():
                await asyncio.sleep(3600)  # "the worker dies" here: the test cancels the run
            return {"n": state["n"] + 1}

        return run

    g = StateGraph(S)
    prev = START
    for i in range(1, 5):
        g.add_node(f"step_{i}", node(f"step_{i}"))
        g.add_edge(prev, f"step_{i}")
        prev = f"step_{i}"
    g.add_edge(prev, END)
    return g.compile()


@pytest.fixture(params=["redis", "sqlite", "postgresql"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> Iterator[Settings]:
    sqlite = f"sqlite:///{tmp_path / 'g.db'}"
    if request.param == "redis":
        yield settings.model_copy(update={"database_url": sqlite, "checkpoints": "redis"})
        return
    if request.param == "sqlite":
        yield settings.model_copy(update={"database_url": sqlite, "checkpoints": "database"})
        return
    url, schema = request.getfixturevalue("pg_schema")
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    pg = f"{plain}?options=-csearch_path%3D{schema}"
    yield settings.model_copy(update={"database_url": pg, "checkpoints": "database"})


@pytest.fixture
def saver(
    backend_settings: Settings, redis: Redis, batcher: CommandBatcher
) -> Callable[[], AbstractAsyncContextManager[Any]]:
    """Opens the backend's checkpointer; each call is a fresh one, as in a new process."""
    return lambda: open_checkpointer(backend_settings, redis, batcher=batcher)


async def test_resume_after_the_last_completed_step(saver: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
    calls: list[str] = []
    gate = asyncio.Event()
    graph = counting_chain(calls, gate)
    config: dict[str, Any] = {"configurable": {"thread_id": "execution-1"}}
    async with saver() as cp:
        durable = graph.copy(update={"checkpointer": cp})
        run = asyncio.create_task(durable.ainvoke({"n": 0}, config, durability="sync"))
        while "step_3" not in calls:
            await asyncio.sleep(0.01)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    assert calls == ["step_1", "step_2", "step_3"]
    gate.set()
    async with saver() as cp:  # a new process, as after a crash
        durable = graph.copy(update={"checkpointer": cp})
        assert await cp.aget_tuple(config) is not None
        result = await durable.ainvoke(None, config, durability="sync")
        await cp.adelete_thread("execution-1")
        assert await cp.aget_tuple(config) is None
    assert result == {"n": 4}
    assert calls == ["step_1", "step_2", "step_3", "step_3", "step_4"]  # 1 and 2 not run again


async def test_store_and_checkpoints_open_on_the_configured_backend(
    backend_settings: Settings, saver: Callable[[], AbstractAsyncContextManager[Any]]
) -> None:
    store = await open_store(backend_settings.sqlalchemy_url)
    try:
        wf = await store.create_workflow("w", "chain", {})
        assert (await store.get_workflow(wf.id)).version == 1
    finally:
        await store.close()
    async with saver() as cp:
        assert await cp.aget_tuple({"configurable": {"thread_id": "nothing"}}) is None


async def test_an_execution_end_to_end_on_each_backend(
    backend_settings: Settings,
    redis: Redis,
    api_factory: Callable[[Settings], Awaitable[ServerHandle]],
    worker_factory: Callable[[Settings], Awaitable[InLoopWorker]],
    client_factory: Callable[..., httpx.AsyncClient],
) -> None:
    """API and worker on the backend's store and checkpointer, with the session's Redis."""
    s = backend_settings
    c = client_factory(await api_factory(s))
    await worker_factory(s)
    wf = await chain_workflow(c, steps=3, emit=1)
    events = await read_events(c, (await submit(c, wf["id"]))["execution_id"])
    assert events[-1]["event"] == "complete" and events[-1]["data"]["output"] == {"n": 3}
    if s.checkpoints == "redis":  # deleted once the execution ended, not left to their TTL
        pattern = f"{s.redis_prefix}ckpt:*"

        async def deleted() -> bool:
            return not [k async for k in redis.scan_iter(match=pattern)]

        await wait_until(deleted, 5, "the checkpoints to be deleted")


async def test_history_newest_first_with_before_limit_and_filter(
    saver: Callable[[], AbstractAsyncContextManager[Any]],
) -> None:
    calls: list[str] = []
    gate = asyncio.Event()
    gate.set()
    config: dict[str, Any] = {"configurable": {"thread_id": "history"}}
    async with saver() as cp:
        await counting_chain(calls, gate).copy(update={"checkpointer": cp}).ainvoke({"n": 0}, config, durability="sync")
        history = [t async for t in cp.alist(config)]
        # input, then one checkpoint per step: the newest is the end of step_4, each child's
        # parent is the next one in the list.
        assert [t.metadata["step"] for t in history] == [4, 3, 2, 1, 0, -1]
        assert history[0].checkpoint["channel_values"]["n"] == 4
        for child, parent in itertools.pairwise(history):
            assert child.parent_config is not None
            assert child.parent_config["configurable"] == parent.config["configurable"]
        assert history[-1].parent_config is None
        latest = await cp.aget_tuple(config)
        assert latest is not None and latest.config == history[0].config
        older = [t async for t in cp.alist(config, before=history[1].config, limit=2)]
        assert [t.metadata["step"] for t in older] == [2, 1]
        assert [t.metadata["step"] async for t in cp.alist(config, filter={"source": "input"})] == [-1]
        pinned = await cp.aget_tuple(history[2].config)
        assert pinned is not None and pinned.checkpoint["channel_values"]["n"] == 2
        await cp.adelete_thread("history")
        assert [t async for t in cp.alist(config)] == []


async def test_pending_writes_are_kept_in_order_and_written_once(
    saver: Callable[[], AbstractAsyncContextManager[Any]],
) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    config: dict[str, Any] = {"configurable": {"thread_id": "writes", "checkpoint_ns": ""}}
    async with saver() as cp:
        saved = await cp.aput(config, empty_checkpoint(), {"source": "loop", "step": 0}, {})
        await cp.aput_writes(saved, [("a", 1), ("b", {"x": [1, 2]})], task_id="t2", task_path="~0")
        await cp.aput_writes(saved, [("a", 99)], task_id="t2", task_path="~0")  # replayed: ignored
        await cp.aput_writes(saved, [("c", "first")], task_id="t1", task_path="")
        await cp.aput_writes(saved, [("__error__", "boom")], task_id="t3", task_path="~1")
        await cp.aput_writes(saved, [("__error__", "again")], task_id="t3", task_path="~1")  # replaced
        loaded = await cp.aget_tuple(saved)
        assert loaded is not None
        assert loaded.pending_writes == [
            ("t1", "c", "first"),
            ("t2", "a", 1),
            ("t2", "b", {"x": [1, 2]}),
            ("t3", "__error__", "again"),
        ]
        await cp.adelete_thread("writes")
        assert await cp.aget_tuple(saved) is None


async def test_a_runs_writes_follow_its_events_and_stop_with_its_lease(
    saver: Callable[[], AbstractAsyncContextManager[Any]],
    backend_settings: Settings,
    redis: Redis,
    batcher: CommandBatcher,
) -> None:
    """Under a run's gate (what the worker attaches): a task's writes reach the checkpointer only
    once the runner has seen that task's result, after the events before them; once the lease has
    moved to another attempt, nothing more is written. Every backend, the database ones included."""
    keys = Keys(backend_settings.redis_prefix)
    lease = keys.lease("ex-gated")
    await redis.set(lease, "1")
    writer = EventLog(redis, keys, maxlen=1000, ttl_s=60, batcher=batcher).writer(
        "ex-gated", live_ttl_s=60, fence=(lease, 1)
    )
    gate = RunGate(writer, (lease, 1), fresh=True)
    base: Any = {"configurable": {"thread_id": "ex-gated", "checkpoint_ns": ""}}
    async with saver() as cp, saver() as reader:  # the reader: another process, no gate
        cp.gates.attach("ex-gated", gate)
        first = await cp.aput(base, empty_checkpoint(), {}, {})
        gate.task_started("t1")
        writes = asyncio.create_task(cp.aput_writes(first, [("n", 1)], "t1"))
        await asyncio.sleep(0.2)
        await gate.settle()
        assert (await reader.aget_tuple(first)).pending_writes == []  # its result is not streamed yet
        writer.emit(EventKind.NODE_END, task="t1", node="a")
        gate.result_seen("t1")
        await writes
        await gate.settle()
        assert (await reader.aget_tuple(first)).pending_writes == [("t1", "n", 1)]
        assert await redis.xlen(keys.events("ex-gated")) == 1  # its event went first

        await redis.set(lease, "2")  # another attempt took over
        with contextlib.suppress(FencedError):  # the database savers refuse at once
            await cp.aput(first, empty_checkpoint(), {}, {})
        await gate.settle()
        assert gate.refused
        latest = await reader.aget_tuple(base)
        assert (
            latest is not None
            and latest.config["configurable"]["checkpoint_id"] == first["configurable"]["checkpoint_id"]
        )
        await cp.adelete_thread("ex-gated")
