"""Executions end to end in one process: API + a worker on the same real Redis and SQLite."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from graphrun.settings import Settings
from tests.conftest import InLoopWorker, ServerHandle
from tests.helpers import chain_workflow, read_events, submit, wait_status


@pytest.fixture
def client(client: httpx.AsyncClient, worker: InLoopWorker) -> httpx.AsyncClient:
    """The API client, with a worker running."""
    return client


async def test_chain_runs_and_streams(client: httpx.AsyncClient) -> None:
    wf = await chain_workflow(client, steps=4, emit=2)
    sub = await submit(client, wf["id"])
    events = await read_events(client, sub["execution_id"])
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "complete"
    assert events[0]["data"] | {"ts": 0} == {
        "execution_id": sub["execution_id"],
        "workflow_id": wf["id"],
        "workflow_version": 1,
        "attempt": 1,
        "ts": 0,
    }
    ends = [e["data"] for e in events if e["event"] == "node_end"]
    assert [(d["node"], d["output"]) for d in ends] == [(f"step_{i}", {"n": i}) for i in range(1, 5)]
    assert [e["data"]["node"] for e in events if e["event"] == "node_start"] == [f"step_{i}" for i in range(1, 5)]
    customs = [e["data"] for e in events if e["event"] == "custom"]
    assert [(c["node"], c["data"]) for c in customs] == [(f"step_{i}", {"i": k}) for i in range(1, 5) for k in range(2)]
    assert events[-1]["data"]["output"] == {"n": 4}
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    ex = await wait_status(client, sub["execution_id"], "succeeded")
    assert ex["output"] == {"n": 4} and ex["error"] is None and ex["attempt"] == 1
    assert ex["started_at"] and ex["finished_at"]
    # The stored result outlives the stream: replay is identical.
    assert await read_events(client, sub["execution_id"]) == events
    middle = events[len(events) // 2]["id"]
    assert await read_events(client, sub["execution_id"], last_event_id=middle) == events[len(events) // 2 + 1 :]


async def test_failing_node_fails_the_execution_not_the_worker(client: httpx.AsyncClient) -> None:
    wf = await chain_workflow(client, steps=3, fail_at=2)
    sub = await submit(client, wf["id"])
    events = await read_events(client, sub["execution_id"])
    assert [e["event"] for e in events][-1] == "error"
    assert events[-1]["data"]["error"] == {"type": "RuntimeError", "message": "fail_at"}
    assert "step_3" not in {e["data"].get("node") for e in events}
    ex = await wait_status(client, sub["execution_id"], "failed")
    assert ex["error"]["type"] == "RuntimeError"
    ok = await chain_workflow(client, steps=1)
    assert (await read_events(client, (await submit(client, ok["id"]))["execution_id"]))[-1]["event"] == "complete"


async def test_factory_error_names_the_workflow(client: httpx.AsyncClient, settings: Settings) -> None:
    wf = await chain_workflow(client, steps=2)
    # Valid JSON the API accepted, but the factory rejects when it builds (a kb_agent pointing at a
    # search workflow that does not exist).
    agent = (
        await client.post("/workflows", json={"name": "a", "graph": "kb_agent", "config": {"search_workflow": 987654}})
    ).json()
    sub = await submit(client, agent["id"], input={"question": "how do refunds work?"})
    events = await read_events(client, sub["execution_id"])
    assert [e["event"] for e in events] == ["start", "error"]
    error = events[-1]["data"]["error"]
    assert error["type"] == "FactoryError"
    assert f"workflow {agent['id']}" in error["message"] and "kb_agent" in error["message"]
    # The worker goes on.
    assert (await read_events(client, (await submit(client, wf["id"]))["execution_id"]))[-1]["event"] == "complete"


async def test_execution_keeps_the_version_pinned_at_submit(client: httpx.AsyncClient) -> None:
    wf = await chain_workflow(client, steps=2, delay_s=0.3)
    first = await submit(client, wf["id"])
    await client.put(f"/workflows/{wf['id']}", json={"config": {"steps": 3}})
    second = await submit(client, wf["id"])
    assert (first["workflow_version"], second["workflow_version"]) == (1, 2)
    assert (await read_events(client, first["execution_id"]))[-1]["data"]["output"] == {"n": 2}
    assert (await read_events(client, second["execution_id"]))[-1]["data"]["output"] == {"n": 3}


async def test_cancel_a_finished_execution_is_409(client: httpx.AsyncClient) -> None:
    wf = await chain_workflow(client, steps=1)
    sub = await submit(client, wf["id"])
    await read_events(client, sub["execution_id"])
    await wait_status(client, sub["execution_id"], "succeeded")
    r = await client.post(f"/executions/{sub['execution_id']}/cancel")
    assert r.status_code == 409 and r.json()["status"] == "succeeded" and "succeeded" in r.json()["detail"]


async def test_time_limit(client: httpx.AsyncClient) -> None:
    wf = await chain_workflow(client, steps=2, delay_s=5)
    sub = await submit(client, wf["id"], timeout_s=0.5)
    events = await read_events(client, sub["execution_id"])
    assert events[-1]["event"] == "timeout" and events[-1]["data"]["timeout_s"] == 0.5
    assert (await wait_status(client, sub["execution_id"], "timed_out"))["status"] == "timed_out"


async def test_kb_agent_with_its_search_as_a_stored_sub_workflow(client: httpx.AsyncClient) -> None:
    search = (await client.post("/workflows", json={"name": "kb", "graph": "kb_search", "config": {"top_k": 2}})).json()
    agent = (
        await client.post(
            "/workflows", json={"name": "agent", "graph": "kb_agent", "config": {"search_workflow": search["id"]}}
        )
    ).json()
    sub = await submit(client, agent["id"], input={"question": "How long are database backups kept?"})
    events = await read_events(client, sub["execution_id"])
    assert events[-1]["event"] == "complete", events[-1]
    output = events[-1]["data"]["output"]
    assert output["answer"] and output["passages"]
    assert any("backup" in p["doc"] for p in output["passages"])


async def test_registry_file_graph(
    tmp_path: Path,
    settings_factory: Callable[..., Settings],
    api_factory: Callable[[Settings], Awaitable[ServerHandle]],
    worker_factory: Callable[[Settings], Awaitable[InLoopWorker]],
    client_factory: Callable[..., httpx.AsyncClient],
) -> None:
    """A graph from graphrun.toml runs like a built-in one."""
    module = tmp_path / "my_graphs.py"
    module.write_text(
        "from typing import TypedDict\n"
        "from langgraph.graph import StateGraph, START, END\n"
        "class S(TypedDict):\n    text: str\n"
        "async def build(config):\n"
        "    '''Shouts.'''\n"
        "    g = StateGraph(S)\n"
        "    g.add_node('shout', lambda s: {'text': s['text'].upper() + config.get('suffix', '')})\n"
        "    g.add_edge(START, 'shout'); g.add_edge('shout', END)\n"
        "    return g.compile()\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        s = settings_factory('[graphs]\nshout = "my_graphs:build"\n')
        c = client_factory(await api_factory(s))
        worker = await worker_factory(s)
        assert {"name": "shout", "description": "Shouts."} in (await c.get("/graphs")).json()
        wf = (await c.post("/workflows", json={"name": "s", "graph": "shout", "config": {"suffix": "!"}})).json()
        sub = await submit(c, wf["id"], input={"text": "hi"})
        assert (await read_events(c, sub["execution_id"]))[-1]["data"]["output"] == {"text": "HI!"}
        await worker.stop()
    finally:
        sys.path.remove(str(tmp_path))


async def test_updating_a_sub_workflow_reaches_its_parent(client: httpx.AsyncClient) -> None:
    search = (await client.post("/workflows", json={"name": "kb", "graph": "kb_search", "config": {"top_k": 1}})).json()
    agent = (
        await client.post(
            "/workflows", json={"name": "agent", "graph": "kb_agent", "config": {"search_workflow": search["id"]}}
        )
    ).json()
    question = {"question": "How are customers billed and how do refunds work?"}
    first = await read_events(client, (await submit(client, agent["id"], input=question))["execution_id"])
    assert len(first[-1]["data"]["output"]["passages"]) == 1
    await client.put(f"/workflows/{search['id']}", json={"config": {"top_k": 4}})
    assert (await client.get(f"/workflows/{agent['id']}")).json()["version"] == 2  # the parent moved too
    second = await submit(client, agent["id"], input=question)
    assert second["workflow_version"] == 2
    events = await read_events(client, second["execution_id"])
    assert len(events[-1]["data"]["output"]["passages"]) == 4


async def test_cache_metrics_are_exported(client: httpx.AsyncClient) -> None:
    wf = await chain_workflow(client, steps=1)
    for _ in range(3):
        await read_events(client, (await submit(client, wf["id"]))["execution_id"])
    text = (await client.get("/metrics")).text
    for name in (
        "graphrun_graph_cache_hits_total",
        "graphrun_graph_cache_misses_total",
        'graphrun_graph_cache_builds_total{graph="chain",outcome="ok"}',
        "graphrun_graph_build_seconds_bucket",
        "graphrun_graph_cache_entries",
        "graphrun_graph_cache_bytes",
    ):
        assert name in text, name
