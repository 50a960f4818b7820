"""LangGraph's server API as its official Python client `langgraph_sdk` uses it, over HTTP, against
`graphrun serve` from a langgraph.json folder, a graphrun fleet (Gunicorn API + 2 workers) and
LangGraph's own `langgraph dev` (marked `reference`). The tests assert only what the reference
also does, so its run proves them right; where graphrun is held to more than the reference does
(issue #15's errors), the test says so and runs on graphrun only."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import StreamPart

from tests.helpers import DroppingProxy, scaled
from tests.langgraph.sdk import collect, first_part, graphrun_only, names, status_of, tokens, user
from tests.langgraph.targets import ALL_TARGETS, Target, dump, start

# One xdist worker runs the whole module, so that each server starts once.
pytestmark = pytest.mark.xdist_group("langgraph-sdk-conformance")


@pytest.fixture(scope="module", params=ALL_TARGETS)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    redis_url = request.getfixturevalue("redis_server") if request.param == "fleet" else ""
    with start(request.param, tmp_path_factory.mktemp(request.param), redis_url) as t:
        yield t


@pytest.fixture
async def client(target: Target) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=target.url, api_key=None)
    try:
        yield c
    finally:
        await c.aclose()


# --- conversation, state, threads -------------------------------------------------------------------


async def test_multi_turn_chat_accumulates_and_streams_tokens(client: LangGraphClient) -> None:
    thread = await client.threads.create(metadata={"suite": uuid.uuid4().hex})
    tid = thread["thread_id"]

    created: list[Any] = []
    first = await collect(
        client.runs.stream(
            tid, "convo", input=user("hello"), stream_mode=["values", "messages-tuple"], on_run_created=created.append
        )
    )
    assert first[0].event == "metadata" and set(first[0].data) >= {"run_id", "attempt"}, first[0]
    # The SDK reads the run's ids from the response's Content-Location.
    assert created == [{"run_id": first[0].data["run_id"], "thread_id": tid}], created
    assert set(names(first)) == {"metadata", "values", "messages"}, names(first)
    assert len(tokens(first)) > 1, "the answer arrives in several chunks"
    assert "".join(tokens(first)) == "turn 1: hello"
    chunk, meta = next(p.data for p in first if p.event == "messages")
    assert chunk["type"] == "AIMessageChunk" and meta["langgraph_node"] == "respond", (chunk, meta)
    values = [p.data for p in first if p.event == "values"]
    assert [m["type"] for m in values[-1]["messages"]] == ["human", "ai"]
    assert values[-1]["messages"][-1]["content"] == "turn 1: hello"

    # The second turn, its message in content blocks as browsers send it: the model sees the first.
    second_input = {"messages": [{"role": "user", "content": [{"type": "text", "text": "again"}]}]}
    second = await collect(
        client.runs.stream(tid, "convo", input=second_input, stream_mode=["messages-tuple", "values"])
    )
    assert "".join(tokens(second)) == "turn 2: hello | again"
    final = [p.data for p in second if p.event == "values"][-1]
    assert [m["type"] for m in final["messages"]] == ["human", "ai", "human", "ai"]

    state = await client.threads.get_state(tid)
    assert state["values"] == final and state["next"] == []
    got = await client.threads.get(tid)
    assert got["status"] == "idle" and got["values"] == final
    (default,) = await client.assistants.search(graph_id="convo")
    assert got["metadata"]["graph_id"] == "convo", got["metadata"]
    assert got["metadata"]["assistant_id"] == default["assistant_id"], (got["metadata"], default)


async def test_state_and_history(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    result = await client.runs.wait(tid, "steps", input={"delay": 0})
    items = [f"item-{i}" for i in range(1, 6)]
    assert isinstance(result, dict) and result["items"] == items, result

    state = await client.threads.get_state(tid)
    assert state["values"]["items"] == items and state["next"] == [] and state["tasks"] == []
    assert state["checkpoint"]["thread_id"] == tid and state["checkpoint"]["checkpoint_id"]
    assert state["metadata"]["step"] == 5, dump(state["metadata"])

    # The input checkpoint (step -1), the one before the first node (0), then one per node.
    everything = await client.threads.get_history(tid, limit=100)
    assert [s["metadata"]["step"] for s in everything] == list(range(5, -2, -1)), dump(everything)
    assert everything[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert [s["values"].get("items", []) for s in everything[:3]] == [items, items[:4], items[:3]]
    assert everything[1]["next"] == ["step_5"]

    latest = await client.threads.get_history(tid, limit=3)
    assert [s["checkpoint"]["checkpoint_id"] for s in latest] == [
        s["checkpoint"]["checkpoint_id"] for s in everything[:3]
    ]
    # `before` is a checkpoint config, as the reference's schema has it (its SDK's hint says a checkpoint).
    before_config: Any = {"configurable": everything[2]["checkpoint"]}
    before = await client.threads.get_history(tid, limit=100, before=before_config)
    assert [s["checkpoint"]["checkpoint_id"] for s in before] == [
        s["checkpoint"]["checkpoint_id"] for s in everything[3:]
    ]
    inputs = await client.threads.get_history(tid, limit=100, metadata={"source": "input"})
    assert [s["metadata"]["step"] for s in inputs] == [-1], dump(inputs)

    past = await client.threads.get_state(tid, checkpoint_id=everything[3]["checkpoint"]["checkpoint_id"])
    assert past["values"] == everything[3]["values"] and past["next"] == ["step_3"], dump(past)


async def test_thread_search_by_metadata(client: LangGraphClient) -> None:
    tag = uuid.uuid4().hex
    a = (await client.threads.create(metadata={"suite": tag, "owner": "a"}))["thread_id"]
    b = (await client.threads.create(metadata={"suite": tag, "owner": "b"}))["thread_id"]
    await client.runs.wait(a, "convo", input=user("hi"))

    assert {t["thread_id"] for t in await client.threads.search(metadata={"suite": tag})} == {a, b}
    (only_b,) = await client.threads.search(metadata={"suite": tag, "owner": "b"})
    assert only_b["thread_id"] == b and only_b["metadata"] == {"suite": tag, "owner": "b"}
    # A run stamps graph_id and assistant_id into its thread's metadata: how chat UIs list threads.
    (ran,) = await client.threads.search(metadata={"suite": tag, "graph_id": "convo"})
    assert ran["thread_id"] == a and ran["values"]["messages"][-1]["content"] == "turn 1: hi"
    assert set(ran["metadata"]) == {"suite", "owner", "graph_id", "assistant_id"}, ran["metadata"]
    assert await client.threads.search(metadata={"suite": tag, "owner": "c"}) == []
    assert await client.threads.count(metadata={"suite": tag}) == 2


# --- runs ---------------------------------------------------------------------------------------------


async def test_background_run_and_join(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "steps", input={"delay": 0.05})
    assert run["thread_id"] == tid and run["status"] in {"pending", "running"}, run
    joined = await asyncio.wait_for(client.runs.join(tid, run["run_id"]), scaled(30))
    assert joined["items"] == [f"item-{i}" for i in range(1, 6)], joined
    done = await client.runs.get(tid, run["run_id"])
    assert done["status"] == "success" and done["run_id"] == run["run_id"], done
    assert (await client.threads.get_state(tid))["values"]["items"] == joined["items"]


async def test_join_stream_resumes_mid_run_as_a_full_replay(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    delay = scaled(0.3)
    run = await client.runs.create(
        tid, "steps", input={"delay": delay}, stream_mode=["updates", "custom"], stream_resumable=True
    )
    rid = run["run_id"]

    # Hang up right after step_3 says it started: the next event is at least `delay` later, so it
    # cannot share the last seen event's id (the reference's ids are millisecond timestamps).
    seen = await first_part(
        client.runs.join_stream(tid, rid, last_event_id="-1"),
        lambda p: p.event == "custom" and p.data == {"started": "step_3"},
    )
    assert (await client.runs.get(tid, rid))["status"] == "running", "hung up mid-run"
    last_id = seen[-1].id
    assert last_id, "every event carries an id"
    resumed = await collect(client.runs.join_stream(tid, rid, last_event_id=last_id))
    assert (await client.runs.get(tid, rid))["status"] == "success"
    replay = await collect(client.runs.join_stream(tid, rid, last_event_id="-1"))

    def body(parts: list[StreamPart]) -> list[tuple[str, Any, str | None]]:
        # metadata opens each connection; the run's own events are what must not be lost or repeated.
        return [(p.event, p.data, p.id) for p in parts if p.event != "metadata"]

    assert replay[0].event == "metadata" and replay[0].data["run_id"] == rid
    at = [p.id for p in replay].index(last_id)
    assert body(resumed) == body(replay[at + 1 :]), (names(resumed), names(replay))
    assert body(seen) == body(replay[: at + 1])
    assert ("updates", {"step_5": {"items": ["item-5"]}}) in [(e, d) for e, d, _ in body(resumed)]
    updates = [p.data for p in replay if p.event == "updates"]
    assert updates == [{f"step_{i}": {"items": [f"item-{i}"]}} for i in range(1, 6)]


async def test_wait_and_stateless_runs(client: LangGraphClient) -> None:
    answer = await client.runs.wait(None, "convo", input=user("stateless"))
    assert isinstance(answer, dict)
    assert [m["content"] for m in answer["messages"]] == ["stateless", "turn 1: stateless"]
    parts = await collect(client.runs.stream(None, "steps", input={"delay": 0}, stream_mode="updates"))
    assert [p.data for p in parts if p.event == "updates"] == [
        {f"step_{i}": {"items": [f"item-{i}"]}} for i in range(1, 6)
    ]
    tid = (await client.threads.create())["thread_id"]
    waited = await client.runs.wait(tid, "convo", input=user("kept"))
    assert isinstance(waited, dict) and waited["messages"][-1]["content"] == "turn 1: kept"
    assert (await client.threads.get_state(tid))["values"] == waited


async def test_list_get_and_delete_runs(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    ids = []
    for _ in range(2):
        run = await client.runs.create(tid, "steps", input={"delay": 0})
        await asyncio.wait_for(client.runs.join(tid, run["run_id"]), scaled(30))
        ids.append(run["run_id"])
    listed = await client.runs.list(tid)
    assert [r["run_id"] for r in listed] == ids[::-1], "newest first"
    assert {r["status"] for r in listed} == {"success"} and {r["thread_id"] for r in listed} == {tid}
    assert (await client.runs.get(tid, ids[0]))["assistant_id"] == listed[0]["assistant_id"]

    await client.runs.delete(tid, ids[0])
    assert [r["run_id"] for r in await client.runs.list(tid)] == [ids[1]]
    assert await status_of(client.runs.get(tid, ids[0])) == 404
    assert (await client.threads.get_state(tid))["values"]["items"] == [f"item-{i}" for i in range(1, 6)] * 2


async def test_cancel_mid_node_with_wait_ends_interrupted(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "steps", input={"delay": 600}, stream_mode=["custom"], stream_resumable=True)
    rid = run["run_id"]
    await first_part(client.runs.join_stream(tid, rid, last_event_id="-1"), lambda p: p.event == "custom")
    began = time.monotonic()
    await asyncio.wait_for(client.runs.cancel(tid, rid, wait=True), scaled(20))
    assert time.monotonic() - began < scaled(10), "cancel does not wait out the node"
    assert (await client.runs.get(tid, rid))["status"] == "interrupted"
    assert (await client.threads.get(tid))["status"] != "busy"


async def test_stream_reconnects_by_itself_after_a_drop(client: LangGraphClient, target: Target) -> None:
    """Cut mid-run, the SDK reconnects on its own (the response's Location, with Last-Event-ID): the
    parts it yields are the run's events, none lost or repeated."""
    tid = (await client.threads.create())["thread_id"]
    proxy = DroppingProxy(int(target.url.rsplit(":", 1)[1]))
    await proxy.start()
    through = get_client(url=proxy.url, api_key=None)
    try:
        stream = through.runs.stream(
            tid,
            "steps",
            input={"delay": scaled(0.3)},
            stream_mode=["updates", "custom"],
            stream_resumable=True,
            on_disconnect="continue",
        )
        parts: list[StreamPart] = []
        async with asyncio.timeout(scaled(60)):
            async for part in stream:
                parts.append(part)
                if part.event == "custom" and part.data == {"started": "step_2"}:
                    assert proxy.drop_all() >= 1
    finally:
        await through.aclose()
        await proxy.stop()
    assert proxy.accepted >= 2, "the SDK reconnected"
    rid = parts[0].data["run_id"]
    assert (await client.runs.get(tid, rid))["status"] == "success"
    replay = await collect(client.runs.join_stream(tid, rid, last_event_id="-1"))
    assert [(p.event, p.data) for p in parts if p.event not in ("metadata", "end")] == [
        (p.event, p.data) for p in replay if p.event != "metadata"
    ]


async def test_interrupt_then_resume(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    parts = await collect(
        client.runs.stream(tid, "confirm", input={"request": "deploy"}, stream_mode=["values", "updates"])
    )
    rid = parts[0].data["run_id"]
    (update,) = [p.data for p in parts if p.event == "updates"]
    (pending,) = update["__interrupt__"]
    assert pending["value"] == {"question": "may I deploy?"} and pending["id"], dump(update)
    last = [p.data for p in parts if p.event == "values"][-1]
    assert [i["id"] for i in last["__interrupt__"]] == [pending["id"]], dump(last)
    # A run that stops at interrupt() succeeds; its thread waits, holding the question.
    assert (await client.runs.get(tid, rid))["status"] == "success"
    thread = await client.threads.get(tid)
    assert thread["status"] == "interrupted", thread
    (asked,) = thread["interrupts"].values()
    assert [(i["id"], i["value"]) for i in asked] == [(pending["id"], pending["value"])], dump(thread["interrupts"])
    state = await client.threads.get_state(tid)
    assert state["next"] == ["ask"] and state["tasks"][0]["interrupts"][0]["id"] == pending["id"], dump(state)

    resumed = await client.runs.wait(tid, "confirm", command={"resume": "yes"})
    assert isinstance(resumed, dict) and resumed["log"] == ["deploy: yes"], resumed
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_subgraph_events_are_named_by_namespace(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    parts = await collect(
        client.runs.stream(tid, "nested", input={"items": []}, stream_mode="updates", stream_subgraphs=True)
    )
    inner = [(p.event, p.data) for p in parts if p.event.startswith("updates|")]
    assert [d for _, d in inner] == [{"a": {"items": ["a"]}}, {"b": {"items": ["b"]}}], names(parts)
    assert all(e.startswith("updates|inner:") and len(e.split("|")) == 2 for e, _ in inner), names(parts)
    outer = [p.data for p in parts if p.event == "updates"]
    assert outer == [{"inner": {"items": ["a", "b"]}}, {"outer": {"items": ["outer"]}}], dump(outer)
    assert (await client.threads.get_state(tid))["values"]["items"] == ["a", "b", "outer"]


# --- stream modes -----------------------------------------------------------------------------------


def _check_values(parts: list[StreamPart], answer: str) -> None:
    values = [p.data for p in parts]
    assert all(set(v) == {"messages"} for v in values), dump(values)
    assert values[-1]["messages"][-1]["content"] == answer and values[-1]["messages"][-1]["type"] == "ai"


def _check_updates(parts: list[StreamPart], answer: str) -> None:
    (update,) = [p.data for p in parts]
    assert list(update) == ["respond"] and update["respond"]["messages"][0]["content"] == answer, dump(update)


def _check_tuples(parts: list[StreamPart], answer: str) -> None:
    assert all(isinstance(p.data, list) and len(p.data) == 2 for p in parts), dump([p.data for p in parts])
    assert "".join(tokens(parts)) == answer
    assert {p.data[1]["langgraph_node"] for p in parts} == {"respond"}


def _check_messages(parts: list[StreamPart], answer: str) -> None:
    assert parts[0].event == "messages/metadata", names(parts)
    (message_id,) = parts[0].data
    assert parts[0].data[message_id]["metadata"]["langgraph_node"] == "respond", dump(parts[0].data)
    partial = [p.data for p in parts if p.event == "messages/partial"]
    assert len(partial) > 1 and all(len(d) == 1 and d[0]["id"] == message_id for d in partial), dump(partial)
    assert partial[-1][0]["content"] == answer and partial[-1][0]["type"] == "ai"


def _check_custom(parts: list[StreamPart], answer: str) -> None:
    assert [p.data for p in parts] == [{"turn": 1}]


def _check_debug(parts: list[StreamPart], answer: str) -> None:
    assert all(set(p.data) >= {"type", "step", "timestamp", "payload"} for p in parts), dump(parts[0].data)
    assert {p.data["type"] for p in parts} == {"checkpoint", "task", "task_result"}
    (result,) = [p.data["payload"] for p in parts if p.data["type"] == "task_result"]
    assert result["name"] == "respond" and result["error"] is None


def _check_tasks(parts: list[StreamPart], answer: str) -> None:
    started, finished = (p.data for p in parts)
    assert started["name"] == finished["name"] == "respond" and started["id"] == finished["id"]
    assert set(started) >= {"id", "name", "input", "triggers"}, dump(started)
    assert set(finished) >= {"id", "name", "result", "error", "interrupts"}, dump(finished)
    assert finished["result"]["messages"][0]["content"] == answer


def _check_checkpoints(parts: list[StreamPart], answer: str) -> None:
    assert all(set(p.data) >= {"config", "parent_config", "values", "metadata", "next", "tasks"} for p in parts)
    assert [p.data["metadata"]["step"] for p in parts] == [-1, 0, 1]
    assert parts[-1].data["next"] == [] and parts[-1].data["values"]["messages"][-1]["content"] == answer


def _check_events(parts: list[StreamPart], answer: str) -> None:
    kinds = [p.data["event"] for p in parts]
    assert kinds[0] == "on_chain_start" and kinds[-1] == "on_chain_end", kinds
    assert {"on_chat_model_start", "on_chat_model_stream", "on_chat_model_end"} <= set(kinds), kinds
    streamed = [p.data["data"]["chunk"]["content"] for p in parts if p.data["event"] == "on_chat_model_stream"]
    assert "".join(streamed) == answer


MODES = {
    # mode: (event names it yields, the check of its payloads)
    "values": ({"values"}, _check_values),
    "updates": ({"updates"}, _check_updates),
    "messages-tuple": ({"messages"}, _check_tuples),
    "messages": ({"messages/metadata", "messages/partial"}, _check_messages),
    "custom": ({"custom"}, _check_custom),
    "debug": ({"debug"}, _check_debug),
    "tasks": ({"tasks"}, _check_tasks),
    "checkpoints": ({"checkpoints"}, _check_checkpoints),
    "events": ({"events"}, _check_events),
}


@pytest.mark.parametrize("mode", list(MODES))
async def test_stream_mode(client: LangGraphClient, mode: str) -> None:
    tid = (await client.threads.create())["thread_id"]
    # Resumable, as browser clients ask: the reference numbers its events only then.
    stream = client.runs.stream(tid, "convo", input=user(f"mode {mode}"), stream_mode=mode, stream_resumable=True)
    parts = await collect(stream)
    assert parts[0].event == "metadata", names(parts)
    body = parts[1:]
    expected, check = MODES[mode]
    assert set(names(body)) == expected, names(body)
    assert all(p.id for p in parts), "every event carries an id"
    check(body, f"turn 1: mode {mode}")


async def test_end_closes_every_stream(client: LangGraphClient, target: Target) -> None:
    graphrun_only(target, "closes its streams with no `end` event")
    tid = (await client.threads.create())["thread_id"]
    parts: list[StreamPart] = []
    async with asyncio.timeout(scaled(30)):
        async for part in client.runs.stream(tid, "steps", input={"delay": 0}, stream_mode="updates"):
            parts.append(part)
    assert parts[-1].event == "end" and names(parts).count("end") == 1, names(parts)
    rid = parts[0].data["run_id"]
    async with asyncio.timeout(scaled(30)):
        joined = [p async for p in client.runs.join_stream(tid, rid, last_event_id="-1")]
    assert joined[-1].event == "end", names(joined)


# --- errors -------------------------------------------------------------------------------------------


async def test_unknown_ids_are_404(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    nobody = str(uuid.uuid4())
    assert await status_of(client.threads.get(nobody)) == 404
    assert await status_of(client.runs.get(tid, nobody)) == 404
    assert await status_of(client.assistants.get(nobody)) == 404
    assert await status_of(client.runs.create(tid, nobody, input={})) == 404
    assert await client.runs.list(tid) == []


async def test_unknown_stream_mode_is_422_and_stores_nothing(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    bogus = client.runs.create(tid, "steps", input={}, stream_mode=["values", "bogus"])  # type: ignore[list-item]
    assert await status_of(bogus) == 422
    assert await client.runs.list(tid) == []
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_unknown_graph_name_is_404_naming_the_graphs(client: LangGraphClient, target: Target) -> None:
    graphrun_only(target, "answers 422 to an unknown graph name")
    tid = (await client.threads.create())["thread_id"]
    with pytest.raises(httpx.HTTPStatusError) as raised:
        await client.runs.create(tid, "nosuch", input={})
    assert raised.value.response.status_code == 404
    assert "convo" in raised.value.response.text and "steps" in raised.value.response.text
    assert await client.runs.list(tid) == []


async def test_input_with_command_is_422(client: LangGraphClient, target: Target) -> None:
    graphrun_only(target, "accepts the run and fails it")
    tid = (await client.threads.create())["thread_id"]
    both = client.runs.create(tid, "steps", input={"delay": 0}, command={"resume": "yes"})
    assert await status_of(both) == 422
    assert await client.runs.list(tid) == []


async def test_malformed_last_event_id_is_400(client: LangGraphClient, target: Target) -> None:
    graphrun_only(target, "answers 200 with an empty stream")
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "steps", input={"delay": 0}, stream_resumable=True)
    await asyncio.wait_for(client.runs.join(tid, run["run_id"]), scaled(30))
    assert await status_of(collect(client.runs.join_stream(tid, run["run_id"], last_event_id="garbage"))) == 400


async def test_ok(target: Target) -> None:
    async with httpx.AsyncClient(base_url=target.url, timeout=10) as http:
        response = await http.get("/ok")
    assert response.status_code == 200 and response.json()["ok"] is True
