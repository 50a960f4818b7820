"""Assistants, threads and thread state through the real app on a real socket: plain HTTP, and the
official ``langgraph_sdk`` client. No worker: state is written with update_state."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from graphrun.settings import Settings
from graphrun.store import default_assistant_id
from tests.conftest import ServerHandle

PROJECT = Path(__file__).resolve().parents[1] / "lgproject" / "langgraph.json"
STEPS = default_assistant_id("steps")


@pytest.fixture
async def lg_api(
    api_factory: Callable[[Settings], Awaitable[ServerHandle]], settings_factory: Callable[..., Settings]
) -> ServerHandle:
    return await api_factory(settings_factory(config=PROJECT))


@pytest.fixture
def http(client_factory: Callable[..., httpx.AsyncClient], lg_api: ServerHandle) -> httpx.AsyncClient:
    return client_factory(lg_api)


async def test_system(http: httpx.AsyncClient) -> None:
    assert (await http.get("/ok")).json() == {"ok": True}
    info = (await http.get("/info")).json()
    assert info["flags"]["assistants"] is True and "version" in info


async def test_default_assistants_and_names(http: httpx.AsyncClient) -> None:
    found = (await http.post("/assistants/search", json={"graph_id": "steps"})).json()
    assert [a["assistant_id"] for a in found] == [STEPS]
    assert set(found[0]) == {
        "assistant_id",
        "graph_id",
        "config",
        "context",
        "metadata",
        "name",
        "created_at",
        "updated_at",
        "version",
        "description",
    }
    assert (found[0]["name"], found[0]["metadata"], found[0]["version"]) == ("steps", {"created_by": "system"}, 1)
    by_name = (await http.get("/assistants/steps")).json()
    assert by_name == (await http.get(f"/assistants/{STEPS}")).json() == found[0]
    total = (await http.post("/assistants/count", json={})).json()
    assert total >= 4  # one default per registered graph: the project's four and graphrun's own
    missing = await http.get("/assistants/nope")
    assert missing.status_code == 404 and "steps" in missing.json()["detail"]
    assert (await http.get(f"/assistants/{uuid.uuid4()}")).status_code == 404
    unknown_graph = await http.post("/assistants", json={"graph_id": "nope"})
    assert unknown_graph.status_code == 404 and "convo" in unknown_graph.json()["detail"]
    assert (await http.post("/assistants/count", json={})).json() == total  # stored nothing


async def test_assistant_versions_http(http: httpx.AsyncClient) -> None:
    made = (await http.post("/assistants", json={"graph_id": "steps", "name": "mine", "metadata": {"a": 1}})).json()
    aid = made["assistant_id"]
    again = await http.post("/assistants", json={"graph_id": "steps", "assistant_id": aid})
    assert again.status_code == 409
    same = await http.post("/assistants", json={"graph_id": "steps", "assistant_id": aid, "if_exists": "do_nothing"})
    assert same.json() == made
    patched = (await http.patch(f"/assistants/{aid}", json={"metadata": {"b": 2}, "name": "mine2"})).json()
    assert (patched["version"], patched["metadata"], patched["name"]) == (2, {"a": 1, "b": 2}, "mine2")
    versions = (await http.post(f"/assistants/{aid}/versions", json={})).json()
    assert [(v["version"], v["name"]) for v in versions] == [(2, "mine2"), (1, "mine")]
    latest = (await http.post(f"/assistants/{aid}/latest", json={"version": 1})).json()
    assert (latest["version"], latest["name"], latest["metadata"]) == (1, "mine", {"a": 1})
    assert (await http.post(f"/assistants/{aid}/latest", json={"version": 9})).status_code == 404
    assert (await http.delete(f"/assistants/{aid}")).status_code == 204
    assert (await http.get(f"/assistants/{aid}")).status_code == 404


async def test_graph_and_schemas(http: httpx.AsyncClient) -> None:
    drawn = (await http.get("/assistants/steps/graph")).json()
    ids = [n["id"] for n in drawn["nodes"]]
    assert ids[0] == "__start__" and ids[-1] == "__end__" and "step_1" in ids
    assert {"source": "__start__", "target": "step_1"} in drawn["edges"]
    assert (await http.get("/assistants/nested/graph", params={"xray": "true"})).status_code == 200
    assert (await http.get("/assistants/steps/graph", params={"xray": "x"})).status_code == 400
    schemas = (await http.get("/assistants/steps/schemas")).json()
    assert schemas["graph_id"] == "steps"
    assert set(schemas["state_schema"]["properties"]) == {"items", "delay"}


async def test_threads_http(http: httpx.AsyncClient) -> None:
    made = (await http.post("/threads", json={"metadata": {"user": "u1"}})).json()
    tid = made["thread_id"]
    assert (made["status"], made["values"], made["interrupts"], made["error"]) == ("idle", None, {}, None)
    assert (await http.post("/threads", json={"thread_id": tid})).status_code == 409
    kept = await http.post("/threads", json={"thread_id": tid, "if_exists": "do_nothing"})
    assert kept.json()["thread_id"] == tid
    assert (await http.get("/threads/not-a-uuid")).status_code == 422
    assert (await http.get(f"/threads/{uuid.uuid4()}")).status_code == 404
    patched = (await http.patch(f"/threads/{tid}", json={"metadata": {"graph_id": "steps"}})).json()
    assert patched["metadata"] == {"user": "u1", "graph_id": "steps"}
    found = (await http.post("/threads/search", json={"metadata": {"user": "u1"}})).json()
    assert [t["thread_id"] for t in found] == [tid]
    assert (await http.post("/threads/count", json={"metadata": {"user": "u1"}})).json() == 1
    state = (await http.get(f"/threads/{tid}/state")).json()
    assert (state["values"], state["next"], state["checkpoint"]) == ({}, [], None)
    assert (await http.post(f"/threads/{tid}/history", json={})).json() == []
    assert (await http.delete(f"/threads/{tid}")).status_code == 204
    assert (await http.get(f"/threads/{tid}")).status_code == 404
    assert (await http.delete(f"/threads/{tid}")).status_code == 404


async def test_update_state_then_state_and_history_http(http: httpx.AsyncClient) -> None:
    tid = (await http.post("/threads", json={})).json()["thread_id"]
    no_graph = await http.post(f"/threads/{tid}/state", json={"values": {"items": ["x"]}})
    assert no_graph.status_code == 400
    await http.patch(f"/threads/{tid}", json={"metadata": {"graph_id": "steps"}})
    first = await http.post(f"/threads/{tid}/state", json={"values": {"items": ["a"]}, "as_node": "step_1"})
    assert first.status_code == 200, first.text
    cp1 = first.json()["checkpoint"]
    assert cp1["thread_id"] == tid and cp1["checkpoint_ns"] == ""
    bad = await http.post(f"/threads/{tid}/state", json={"values": {"items": ["z"]}, "as_node": "nope"})
    assert bad.status_code == 422
    await http.post(f"/threads/{tid}/state", json={"values": {"items": ["b"]}, "as_node": "step_2"})
    state = (await http.get(f"/threads/{tid}/state")).json()
    assert state["values"] == {"items": ["a", "b"]} and state["next"] == ["step_3"]
    assert state["tasks"][0]["name"] == "step_3" and state["parent_checkpoint_id"] == cp1["checkpoint_id"]
    thread = (await http.get(f"/threads/{tid}")).json()
    assert (thread["status"], thread["values"]) == ("interrupted", {"items": ["a", "b"]})
    at = (await http.get(f"/threads/{tid}/state/{cp1['checkpoint_id']}")).json()
    assert at["values"] == {"items": ["a"]} and at["checkpoint_id"] == cp1["checkpoint_id"]
    history = (await http.post(f"/threads/{tid}/history", json={"limit": 5})).json()
    assert [h["values"]["items"] for h in history] == [["a", "b"], ["a"]]
    older = (await http.post(f"/threads/{tid}/history", json={"before": history[0]["checkpoint"]})).json()
    assert [h["checkpoint_id"] for h in older] == [cp1["checkpoint_id"]]
    copy = (await http.post(f"/threads/{tid}/copy")).json()
    assert copy["thread_id"] != tid and copy["metadata"]["graph_id"] == "steps"
    copied = (await http.get(f"/threads/{copy['thread_id']}/state")).json()
    assert copied["values"] == {"items": ["a", "b"]} and copied["next"] == ["step_3"]
    await http.delete(f"/threads/{tid}")
    assert (await http.get(f"/threads/{copy['thread_id']}/state")).json()["values"] == {"items": ["a", "b"]}


async def test_through_the_sdk(lg_api: ServerHandle) -> None:
    client = get_client(url=lg_api.url)
    found = await client.assistants.search(graph_id="steps")
    assert [a["assistant_id"] for a in found] == [STEPS]
    assert (await client.assistants.get(STEPS))["graph_id"] == "steps"
    made = await client.assistants.create("steps", name="sdk", metadata={"k": 1}, config={"configurable": {"x": 1}})
    assert made["context"] == {"x": 1}
    v2 = await client.assistants.update(made["assistant_id"], metadata={"k2": 2})
    assert v2["version"] == 2 and v2["metadata"] == {"k": 1, "k2": 2}
    versions = await client.assistants.get_versions(made["assistant_id"])
    assert [v["version"] for v in versions] == [2, 1]
    back = await client.assistants.set_latest(made["assistant_id"], 1)
    assert back["version"] == 1 and back["metadata"] == {"k": 1}
    assert (await client.assistants.count(graph_id="steps")) == 2
    assert "nodes" in await client.assistants.get_graph("steps")
    assert (await client.assistants.get_schemas("steps"))["graph_id"] == "steps"

    thread = await client.threads.create(metadata={"who": "sdk"}, graph_id="steps")
    tid = thread["thread_id"]
    assert (await client.threads.get(tid))["metadata"] == {"who": "sdk", "graph_id": "steps"}
    assert [t["thread_id"] for t in await client.threads.search(metadata={"who": "sdk"})] == [tid]
    assert await client.threads.count(metadata={"who": "sdk"}) == 1
    empty = await client.threads.get_state(tid)
    assert (empty["values"], empty["next"]) == ({}, [])
    await client.threads.update(tid, metadata={"more": True})
    written = await client.threads.update_state(tid, {"items": ["s"]}, as_node="step_1")
    assert written["checkpoint"]["thread_id"] == tid
    state = await client.threads.get_state(tid)
    assert state["values"] == {"items": ["s"]} and state["next"] == ["step_2"]
    at = await client.threads.get_state(tid, checkpoint_id=written["checkpoint"]["checkpoint_id"])
    assert at["checkpoint_id"] == written["checkpoint"]["checkpoint_id"]
    history = await client.threads.get_history(tid, limit=3)
    assert [h["values"] for h in history] == [{"items": ["s"]}]
    copy = await client.threads.copy(tid)
    assert (await client.threads.get_state(copy["thread_id"]))["values"] == {"items": ["s"]}
    await client.threads.delete(tid)
    with pytest.raises(httpx.HTTPStatusError):
        await client.threads.get(tid)
    await client.http.client.aclose()
