"""Runs through the LangGraph API end to end: the real app, in-loop workers, and the official
``langgraph_sdk`` client. Focused on the run routes and their streams; the broader SDK conformance
suite (tests/langgraph/test_sdk_*.py) runs against graphrun processes and ``langgraph dev``."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from graphrun.settings import Settings
from tests.conftest import InLoopWorker, ServerHandle
from tests.helpers import scaled, wait_until

GRAPHS = "tests.langgraph.rungraphs"


@pytest.fixture
def lg_settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    project = tmp_path / "project"
    project.mkdir()
    (project / "langgraph.json").write_text(
        json.dumps({"graphs": {name: f"{GRAPHS}:{name}" for name in ("chat", "steps", "approval")}})
    )
    # Runs a test leaves going are handed over at teardown after 1 s, not the default 30 s.
    return settings_factory(config=project / "langgraph.json", shutdown_grace_s=1.0)


@pytest.fixture
async def lg(
    lg_settings: Settings,
    api_factory: Callable[[Settings], Awaitable[ServerHandle]],
    worker_factory: Callable[[Settings], Awaitable[InLoopWorker]],
) -> AsyncIterator[Any]:
    api = await api_factory(lg_settings)
    await worker_factory(lg_settings)
    client = get_client(url=api.url, api_key=None)
    client.url = api.url  # type: ignore[attr-defined]
    yield client
    await client.aclose()


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def collect(parts: Any) -> list[tuple[str, Any]]:
    """A stream's events, the closing ``end`` (which the SDK passes on) checked and left out."""
    events = [(part.event, part.data) async for part in parts]
    assert events[-1] == ("end", None)
    return events[:-1]


async def raw_stream(url: str, path: str, *, headers: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(id, event, data) of every event of a GET stream, read with plain httpx."""
    out: list[tuple[str, str, str]] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http, http.stream("GET", path, headers=headers) as r:
        assert r.status_code == 200, await r.aread()
        fields: dict[str, str] = {}
        async for line in r.aiter_lines():
            if not line:
                if "event" in fields:
                    out.append((fields.get("id", ""), fields["event"], fields.get("data", "")))
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return out


async def test_each_stream_mode(lg: Any) -> None:
    modes = ["values", "updates", "messages-tuple", "custom", "debug", "tasks", "checkpoints", "events"]
    events = await collect(lg.runs.stream(None, "chat", input=user("hi"), stream_mode=modes))
    names = [name for name, _ in events]
    assert names[0] == "metadata" and names[-1] != "error"
    assert set(names) >= {"metadata", "values", "updates", "messages", "custom", "debug", "tasks", "events"}
    kinds = [data["event"] for name, data in events if name == "events"]
    assert kinds[0] == "on_chain_start" and "on_chat_model_stream" in kinds
    tokens = "".join(chunk["content"] for name, (chunk, _) in ((n, d) for n, d in events if n == "messages") if chunk)
    assert tokens.startswith("turn 1: hi")
    partials = await collect(lg.runs.stream(None, "chat", input=user("hi"), stream_mode="messages"))
    last = [data for name, data in partials if name == "messages/partial"][-1]
    assert last[0]["type"] == "ai" and last[0]["content"] == tokens


async def test_multi_turn_on_a_thread_accumulates(lg: Any) -> None:
    thread_id = str(uuid.uuid4())
    first = await collect(
        lg.runs.stream(
            thread_id, "chat", input=user("one"), stream_mode=["values", "messages-tuple"], if_not_exists="create"
        )
    )
    second = await collect(lg.runs.stream(thread_id, "chat", input=user("two"), stream_mode="values"))
    values = [data for name, data in second if name == "values"][-1]
    texts = [m["content"] for m in values["messages"]]
    assert texts == ["one", "turn 1: one", "two", "turn 2: one | two"]
    assert [data for name, data in first if name == "values"][-1]["messages"][-1]["content"] == "turn 1: one"
    runs = await lg.runs.list(thread_id)
    assert [r["status"] for r in runs] == ["success", "success"]
    assert runs[0]["created_at"] >= runs[1]["created_at"]


async def test_background_run_join_and_wait(lg: Any) -> None:
    thread_id = str(uuid.uuid4())
    run = await lg.runs.create(thread_id, "steps", input={"delay": 0.01}, if_not_exists="create")
    assert run["status"] in ("pending", "running") and run["thread_id"] == thread_id
    joined = await lg.runs.join(thread_id, run["run_id"])
    assert joined["items"] == [f"item-{i}" for i in range(1, 6)]
    assert (await lg.runs.get(thread_id, run["run_id"]))["status"] == "success"
    waited = await lg.runs.wait(thread_id, "steps", input={})
    assert waited["items"] == [f"item-{i}" for i in range(1, 6)] * 2  # the thread's state goes on
    stateless = await lg.runs.wait(None, "steps", input={})
    assert stateless["items"] == [f"item-{i}" for i in range(1, 6)]


async def test_join_stream_resumed_with_last_event_id_equals_a_full_replay(lg: Any) -> None:
    thread_id = str(uuid.uuid4())
    run = await lg.runs.create(
        thread_id, "steps", input={"delay": 0.05}, stream_mode=["values", "updates", "custom"], if_not_exists="create"
    )
    path = f"/threads/{thread_id}/runs/{run['run_id']}/stream"
    live = await raw_stream(lg.url, path)  # joined while it runs
    full = await raw_stream(lg.url, path, headers={"Last-Event-ID": "-1"})  # replayed once it ended
    assert live == full
    assert full[0][1] == "metadata" and full[-1][1] == "end"
    assert all(event_id for event_id, _, _ in full)
    for k in (1, len(full) // 2, len(full) - 2):
        resumed = await raw_stream(lg.url, path, headers={"Last-Event-ID": full[k][0]})
        assert resumed == full[k + 1 :]
    parts = await collect(lg.runs.join_stream(thread_id, run["run_id"], last_event_id=full[3][0]))
    assert parts == [(e, json.loads(d)) for _, e, d in full[4:-1]]


async def test_interrupt_then_resume_with_a_command(lg: Any) -> None:
    thread_id = str(uuid.uuid4())
    events = await collect(
        lg.runs.stream(thread_id, "approval", input={"n": 0}, stream_mode=["values", "updates"], if_not_exists="create")
    )
    assert events[-1][0] == "values" and events[-1][1]["__interrupt__"][0]["value"] == {"question": "ok?", "n": 1}
    (run,) = await lg.runs.list(thread_id)
    assert run["status"] == "success"  # stopped at an interrupt: a success, as in LangGraph's server
    thread = await lg.threads.get(thread_id)
    assert thread["status"] == "interrupted" and thread["values"] == {"n": 1, "log": ["a"]}
    assert thread["metadata"]["graph_id"] == "approval" and thread["metadata"]["assistant_id"] == run["assistant_id"]
    ((task_id, pending),) = thread["interrupts"].items()
    assert pending == [{"id": events[-1][1]["__interrupt__"][0]["id"], "value": {"question": "ok?", "n": 1}}]
    assert task_id != pending[0]["id"]  # keyed by the task, as LangGraph's server does
    resumed = await collect(lg.runs.stream(thread_id, "approval", command={"resume": "yes"}, stream_mode="values"))
    assert resumed[-1] == ("values", {"n": 1, "log": ["a", "ans:yes"]})
    thread = await lg.threads.get(thread_id)
    assert (thread["status"], thread["interrupts"]) == ("idle", {})


async def test_cancel_mid_node_with_wait_ends_interrupted(lg: Any) -> None:
    thread_id = str(uuid.uuid4())
    run = await lg.runs.create(thread_id, "steps", input={"delay": 30}, stream_mode="custom", if_not_exists="create")
    await _started(lg, thread_id, run["run_id"])
    cancelled = await lg.runs.cancel(thread_id, run["run_id"], wait=True)
    assert cancelled["status"] == "interrupted"
    assert (await lg.runs.get(thread_id, run["run_id"]))["status"] == "interrupted"


async def _first_events(url: str, path: str, n: int) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    async with httpx.AsyncClient(base_url=url, timeout=5) as http, http.stream("GET", path) as r:
        fields: dict[str, str] = {}
        async for line in r.aiter_lines():
            if not line:
                out.append((fields.get("id", ""), fields.get("event", ""), fields.get("data", "")))
                fields = {}
                if len(out) >= n:
                    break
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return out


async def test_reject_while_busy_is_409_and_stores_nothing(lg: Any) -> None:
    thread_id = str(uuid.uuid4())
    run = await lg.runs.create(thread_id, "steps", input={"delay": 30}, if_not_exists="create")
    with pytest.raises(httpx.HTTPStatusError) as err:
        await lg.runs.create(thread_id, "steps", input={}, multitask_strategy="reject")
    assert err.value.response.status_code == 409
    assert [r["run_id"] for r in await lg.runs.list(thread_id)] == [run["run_id"]]
    await lg.runs.cancel(thread_id, run["run_id"], wait=True)


async def test_enqueued_runs_on_a_thread_run_in_order(lg: Any) -> None:
    thread_id = str(uuid.uuid4())
    first = await lg.runs.create(thread_id, "steps", input={"delay": 0.05}, if_not_exists="create")
    second = await lg.runs.create(thread_id, "steps", input={})
    assert (await lg.runs.join(thread_id, second["run_id"]))["items"] == [f"item-{i}" for i in range(1, 6)] * 2
    assert (await lg.runs.get(thread_id, first["run_id"]))["status"] == "success"


async def test_list_get_delete(lg: Any) -> None:
    thread_id = str(uuid.uuid4())
    run = await lg.runs.create(thread_id, "steps", input={}, if_not_exists="create", metadata={"who": "test"})
    await lg.runs.join(thread_id, run["run_id"])
    got = await lg.runs.get(thread_id, run["run_id"])
    assert got["metadata"]["who"] == "test" and got["assistant_id"] and got["multitask_strategy"] == "enqueue"
    assert [r["run_id"] for r in await lg.runs.list(thread_id, status="success")] == [run["run_id"]]
    assert await lg.runs.list(thread_id, status="error") == []
    await lg.runs.delete(thread_id, run["run_id"])
    with pytest.raises(httpx.HTTPStatusError) as err:
        await lg.runs.get(thread_id, run["run_id"])
    assert err.value.response.status_code == 404


async def test_client_mistakes(lg: Any) -> None:
    http = httpx.AsyncClient(base_url=lg.url)
    async with http:
        r = await http.post("/runs", json={"assistant_id": "nope", "input": {}})
        assert r.status_code == 404 and "chat" in r.json()["detail"]
        r = await http.post("/runs/stream", json={"assistant_id": "chat", "stream_mode": ["bogus"]})
        assert r.status_code == 422 and "messages-tuple" in json.dumps(r.json())
        r = await http.post(
            f"/threads/{uuid.uuid4()}/runs",
            json={"assistant_id": "chat", "input": {}, "command": {"resume": 1}, "if_not_exists": "create"},
        )
        assert r.status_code == 422
        r = await http.post(f"/threads/{uuid.uuid4()}/runs", json={"assistant_id": "chat", "input": {}})
        assert r.status_code == 404
        thread_id = str(uuid.uuid4())
        r = await http.post(f"/threads/{thread_id}/runs", json={"assistant_id": "steps", "if_not_exists": "create"})
        assert r.status_code == 200
        assert r.headers["content-location"] == f"/threads/{thread_id}/runs/{r.json()['run_id']}"
        created = r.json()["run_id"]
        r = await http.get(f"/threads/{thread_id}/runs/{created}/stream", headers={"Last-Event-ID": "x"})
        assert r.status_code == 400
        r = await http.post("/runs", json={"assistant_id": "steps", "input": {}, "unknown_field": 1})
        assert r.status_code == 200
        # Leave nothing running for the teardown: both runs end at once (no delay).
        for run_id in (created, r.json()["run_id"]):

            async def ended(run_id: str = run_id) -> bool:
                got = await http.get(f"/executions/{run_id}")
                return got.json()["status"] not in ("queued", "running")

            await wait_until(ended, 10, "the run to end")


async def test_stream_headers(lg: Any) -> None:
    async with httpx.AsyncClient(base_url=lg.url, timeout=60) as http:
        thread_id = str(uuid.uuid4())
        body = {"assistant_id": "steps", "input": {}, "if_not_exists": "create"}
        async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as r:
            text = (await r.aread()).decode()
        run_path = r.headers["content-location"]
        assert run_path.startswith(f"/threads/{thread_id}/runs/")
        assert r.headers["location"] == run_path + "/stream"
        assert r.headers["content-type"].startswith("text/event-stream")
        blocks = [b for b in text.split("\n\n") if b.strip() and not b.startswith(":")]
        assert blocks[0].splitlines()[1] == "event: metadata" and blocks[-1].splitlines()[1] == "event: end"
        assert all(b.startswith("id: ") for b in blocks)


async def test_on_disconnect_cancel_stops_the_run(lg: Any) -> None:
    thread_id = str(uuid.uuid4())
    body = {
        "assistant_id": "steps",
        "input": {"delay": 30},
        "stream_mode": "custom",
        "on_disconnect": "cancel",
        "if_not_exists": "create",
    }
    async with httpx.AsyncClient(base_url=lg.url, timeout=60) as http:
        async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as r:
            async for line in r.aiter_lines():
                if line == "event: custom":
                    break
        run_id = r.headers["content-location"].rsplit("/", 1)[1]

    async def interrupted() -> bool:
        return (await lg.runs.get(thread_id, run_id))["status"] == "interrupted"

    await wait_until(interrupted, scaled(20), "the run to be cancelled")


async def _started(lg: Any, thread_id: str, run_id: str) -> None:
    path = f"/threads/{thread_id}/runs/{run_id}/stream"

    async def started() -> bool:
        return any(e == "custom" for _, e, _ in await _first_events(lg.url, path, 2))

    await wait_until(started, scaled(20), "the first node to start")


async def test_rollback_undoes_the_run_and_deletes_it(lg: Any) -> None:
    thread_id = str(uuid.uuid4())
    items = [f"item-{i}" for i in range(1, 6)]
    await lg.runs.wait(thread_id, "steps", input={}, if_not_exists="create")
    slow = await lg.runs.create(thread_id, "steps", input={"delay": 30}, stream_mode="custom")
    await _started(lg, thread_id, slow["run_id"])
    await lg.runs.cancel(thread_id, slow["run_id"], wait=True, action="rollback")
    with pytest.raises(httpx.HTTPStatusError) as err:
        await lg.runs.get(thread_id, slow["run_id"])
    assert err.value.response.status_code == 404
    assert (await lg.threads.get_state(thread_id))["values"]["items"] == items
    # The same through multitask_strategy: the new run starts from the state before the one it undid.
    slow = await lg.runs.create(thread_id, "steps", input={"delay": 30}, stream_mode="custom")
    await _started(lg, thread_id, slow["run_id"])
    after = await lg.runs.wait(thread_id, "steps", input={}, multitask_strategy="rollback")
    assert after["items"] == items * 2
    assert [r["status"] for r in await lg.runs.list(thread_id)] == ["success", "success"]


async def test_a_failing_run_streams_error_then_end_and_wait_answers_the_error(lg: Any) -> None:
    body = {"assistant_id": "steps", "input": {"delay": "soon"}, "stream_mode": "updates"}
    async with httpx.AsyncClient(base_url=lg.url, timeout=60) as http:
        async with http.stream("POST", "/runs/stream", json=body) as r:
            text = (await r.aread()).decode()
        blocks = [dict(line.split(": ", 1) for line in b.splitlines()) for b in text.split("\n\n") if b.strip()]
        named = [(b["event"], b["data"]) for b in blocks if "event" in b]
        assert named[-1] == ("end", "null")
        assert named[-2][0] == "error" and json.loads(named[-2][1])["error"] == "TypeError"
        assert blocks[-1]["id"] == blocks[-2]["id"]  # both stand for the log's terminal entry
        waited = (await http.post("/runs/wait", json=body)).json()
        assert waited["__error__"]["error"] == "TypeError"


async def test_heartbeats_while_a_node_runs(lg: Any) -> None:
    thread_id = str(uuid.uuid4())
    run = await lg.runs.create(thread_id, "steps", input={"delay": 30}, if_not_exists="create")
    path = f"/threads/{thread_id}/runs/{run['run_id']}/stream"

    async def heartbeat() -> None:
        async with httpx.AsyncClient(base_url=lg.url, timeout=60) as http, http.stream("GET", path) as r:
            async for line in r.aiter_lines():
                if line == ": heartbeat":
                    return

    await asyncio.wait_for(heartbeat(), scaled(8))
    await lg.runs.cancel(thread_id, run["run_id"], wait=True)


async def test_a_run_starts_from_the_checkpoint_it_names(lg: Any) -> None:
    thread_id = str(uuid.uuid4())
    await lg.runs.wait(thread_id, "chat", input=user("one"), if_not_exists="create")
    after_one = (await lg.threads.get_state(thread_id))["checkpoint"]
    await lg.runs.wait(thread_id, "chat", input=user("two"))
    # A fork from the state after the first turn, as agent-chat-ui sends it (edit and resend).
    forked = await lg.runs.wait(thread_id, "chat", input=user("other"), checkpoint=after_one)
    assert [m["content"] for m in forked["messages"]] == ["one", "turn 1: one", "other", "turn 2: one | other"]
    # The same given as checkpoint_id.
    again = await lg.runs.wait(thread_id, "chat", input=user("again"), checkpoint_id=after_one["checkpoint_id"])
    assert [m["content"] for m in again["messages"]][-1] == "turn 2: one | again"
