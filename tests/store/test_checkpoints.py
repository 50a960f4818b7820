"""The checkpointers graphrun runs executions with, on SQLite and on PostgreSQL: an interrupted
run resumes after its last completed step."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from graphrun.checkpoint import open_checkpointer
from graphrun.settings import Settings
from graphrun.store import open_store


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


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'g.db'}", _env_file=None)  # type: ignore[call-arg]
        return
    url, schema = request.getfixturevalue("pg_schema")
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    yield Settings(data_dir=tmp_path, database_url=f"{plain}?options=-csearch_path%3D{schema}", _env_file=None)  # type: ignore[call-arg]


async def test_resume_after_the_last_completed_step(backend_settings: Settings) -> None:
    calls: list[str] = []
    gate = asyncio.Event()
    graph = counting_chain(calls, gate)
    config: dict[str, Any] = {"configurable": {"thread_id": "execution-1"}}
    async with open_checkpointer(backend_settings) as saver:
        durable = graph.copy(update={"checkpointer": saver})
        run = asyncio.create_task(durable.ainvoke({"n": 0}, config, durability="sync"))
        while "step_3" not in calls:
            await asyncio.sleep(0.01)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    assert calls == ["step_1", "step_2", "step_3"]
    gate.set()
    async with open_checkpointer(backend_settings) as saver:  # a new process, as after a crash
        durable = graph.copy(update={"checkpointer": saver})
        assert await saver.aget_tuple(config) is not None
        result = await durable.ainvoke(None, config, durability="sync")
        await saver.adelete_thread("execution-1")
        assert await saver.aget_tuple(config) is None
    assert result == {"n": 4}
    assert calls == ["step_1", "step_2", "step_3", "step_3", "step_4"]  # 1 and 2 not run again


async def test_store_and_checkpoints_share_the_configured_database(backend_settings: Settings) -> None:
    store = await open_store(backend_settings.sqlalchemy_url)
    try:
        wf = await store.create_workflow("w", "chain", {})
        assert (await store.get_workflow(wf.id)).version == 1
    finally:
        await store.close()
    async with open_checkpointer(backend_settings) as saver:
        assert await saver.aget_tuple({"configurable": {"thread_id": "nothing"}}) is None


async def test_an_execution_end_to_end_on_each_backend(backend_settings: Settings, settings: Settings) -> None:
    """API and worker on the backend's store and checkpointer, with the session's Redis."""
    import httpx

    from graphrun.worker.process import run_worker
    from tests.conftest import start_api
    from tests.helpers import chain_workflow, read_events, submit

    s = settings.model_copy(update={"database_url": backend_settings.database_url})
    handle, api_task = await start_api(s)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(s, stop))
    try:
        async with httpx.AsyncClient(base_url=handle.url, timeout=30) as c:
            wf = await chain_workflow(c, steps=3, emit=1)
            events = await read_events(c, (await submit(c, wf["id"]))["execution_id"])
            assert events[-1]["event"] == "complete" and events[-1]["data"]["output"] == {"n": 3}
    finally:
        stop.set()
        await worker
        handle.server.should_exit = True
        await api_task
