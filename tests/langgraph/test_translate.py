"""The LangGraph-protocol translator, fed the chunks of small real LangGraph graphs, checked against
what LangGraph's own server sends (recorded from ``langgraph dev`` 0.16.7 by capture.py into
captures/, and the shapes quoted below)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command

from graphrun.langgraph.translate import SUPPORTED_MODES, LangGraphTranslator, normalise_modes
from tests.langgraph.refgraphs import S, a, ask, b, line

CAPTURES = Path(__file__).resolve().parent / "captures"

Event = tuple[str, Any]


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def inner(s: S) -> dict[str, Any]:
    get_stream_writer()({"inner": s["n"]})
    return {"n": s["n"] + 10, "log": ["inner"]}


def parent() -> Any:
    child = line(inner).compile()
    graph: StateGraph[S] = StateGraph(S)
    graph.add_node(a)
    graph.add_node("child", child)
    graph.add_edge(START, "a")
    graph.add_edge("a", "child")
    graph.add_edge("child", END)
    return graph.compile()


def chat(reply: str = "hello there friend") -> Any:
    model = GenericFakeChatModel(messages=iter([AIMessage(content=reply)] * 10))

    async def node(state: Chat) -> Chat:
        return {"messages": [await model.ainvoke(state["messages"])]}

    def whole(state: Chat) -> Chat:
        return {"messages": [AIMessage(content="whole answer", id="w1")]}

    graph: StateGraph[Chat] = StateGraph(Chat)
    graph.add_node("chat", node)
    graph.add_node(whole)
    graph.add_edge(START, "chat")
    graph.add_edge("chat", "whole")
    graph.add_edge("whole", END)
    return graph.compile()


async def events_of(
    graph: Any, graph_input: Any, modes: list[str], *, subgraphs: bool = False, config: Any = None
) -> tuple[list[Event], LangGraphTranslator]:
    """The events of one run, streamed the way the worker streams it (data parsed back from JSON:
    the text itself is checked to be one line)."""
    translator = LangGraphTranslator(modes, subgraphs=subgraphs)
    out: list[Event] = []
    async for item in graph.astream(graph_input, config, stream_mode=list(translator.modes), subgraphs=subgraphs):
        namespace, mode, chunk = item if subgraphs else ((), *item)
        for name, text in translator.feed(namespace, mode, chunk).events:
            assert "\n" not in text
            out.append((name, json.loads(text)))
    return out, translator


def reference(name: str) -> list[Event]:
    """A captured stream, without its ``metadata`` event."""
    blocks = (CAPTURES / name).read_text().strip().split("\n\n")
    out = []
    for block in blocks:
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        if fields["event"] != "metadata":
            out.append((fields["event"], json.loads(fields["data"])))
    return out


def without_ids(events: list[Event]) -> list[Event]:
    """Interrupt and task ids depend on checkpoint ids, which differ run to run."""
    text = json.dumps(events)
    for key in ("id",):
        text = __import__("re").sub(rf'"{key}": "[0-9a-f-]+"', f'"{key}": "*"', text)
    return json.loads(text)  # type: ignore[no-any-return]


async def test_values_and_updates_match_the_server() -> None:
    events, translator = await events_of(line(a, b).compile(), {"n": 0}, ["values", "updates"])
    expected = [(name, data) for name, data in reference("stream_modes.txt") if name in ("values", "updates")]
    assert events == expected
    assert translator.final == {"n": 2, "log": ["a", "b"]}


async def test_tasks_and_debug_and_checkpoints_have_the_servers_names_and_shapes() -> None:
    graph = line(a, b).compile(checkpointer=InMemorySaver())
    # The worker's config carries the run's metadata (options.run_config), as the server's does.
    config = {"configurable": {"thread_id": "t"}, "metadata": {"graph_id": "simple"}}
    events, _ = await events_of(graph, {"n": 0}, ["checkpoints", "debug", "tasks"], config=config)
    ref = reference("stream_modes.txt")
    assert [n for n, _ in events] == [n for n, _ in ref if n in ("checkpoints", "debug", "tasks")]
    for (name, data), (_, expected) in zip(
        events, [e for e in ref if e[0] != "values" and e[0] != "updates"], strict=True
    ):
        assert data.keys() == expected.keys(), name
        if name == "debug":
            assert data["type"] == expected["type"]
            assert data["payload"].keys() == expected["payload"].keys()
        if name == "checkpoints":
            assert (data["values"], data["next"], data["metadata"]["step"]) == (
                expected["values"],
                expected["next"],
                expected["metadata"]["step"],
            )


async def test_interrupt_then_resume_match_the_server() -> None:
    graph = line(a, ask).compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    events, translator = await events_of(graph, {"n": 0}, ["values", "updates"], config=config)
    assert without_ids(events) == without_ids(reference("interrupt_stream.txt"))
    assert translator.final["__interrupt__"][0]["value"] == {"question": "ok?", "n": 1}
    resumed, translator = await events_of(graph, Command(resume="yes"), ["values", "updates"], config=config)
    assert resumed == reference("resume_stream.txt")
    assert translator.final == {"n": 1, "log": ["a", "ans:yes"]}


async def test_subgraph_events_are_named_mode_bar_namespace() -> None:
    events, translator = await events_of(parent(), {"n": 0}, ["values", "updates", "custom", "tasks"], subgraphs=True)
    names = [name.split(":")[0] for name, _ in events]
    # As langgraph dev sends it (stream_subgraphs=true, same graph).
    assert names == [
        "values", "tasks", "updates", "tasks", "values", "tasks",
        "values|child", "tasks|child", "custom|child", "updates|child", "tasks|child", "values|child",
        "updates", "tasks", "values",
    ]  # fmt: skip
    child_task = next(data["id"] for name, data in events if name == "tasks" and data["name"] == "child")
    assert ("custom|child:" + child_task, {"inner": 1}) in events
    assert translator.final == {"n": 11, "log": ["a", "a", "inner"]}


async def test_without_stream_subgraphs_only_the_root_graph_streams() -> None:
    events, _ = await events_of(parent(), {"n": 0}, ["values", "custom"])
    assert [name for name, _ in events] == ["values", "values", "values"]


async def test_messages_tuple_is_event_messages_with_chunk_and_metadata() -> None:
    events, _ = await events_of(chat(), {"messages": [HumanMessage("hi")]}, ["messages-tuple"])
    tokens = [data for name, data in events if name == "messages"]
    assert "".join(chunk["content"] for chunk, _ in tokens[:-1]) == "hello there friend"
    chunk, metadata = tokens[0]
    assert list(chunk) == [
        "content", "additional_kwargs", "response_metadata", "type", "name", "id",
        "tool_calls", "invalid_tool_calls", "usage_metadata", "tool_call_chunks", "chunk_position",
    ]  # fmt: skip
    assert chunk["type"] == "AIMessageChunk"
    assert metadata["langgraph_node"] == "chat"
    # A node's whole message (not streamed) comes once, as the message itself.
    assert tokens[-1][0]["type"] == "ai" and tokens[-1][0]["content"] == "whole answer"


async def test_messages_accumulate_into_partial_then_complete() -> None:
    events, _ = await events_of(chat(), {"messages": [HumanMessage("hi")]}, ["messages"])
    names = [name for name, _ in events]
    assert names == ["messages/metadata", *["messages/partial"] * 5, "messages/metadata", "messages/complete"]
    partials = [data[0]["content"] for name, data in events if name == "messages/partial"]
    assert partials == ["hello", "hello ", "hello there", "hello there ", "hello there friend"]
    last = events[5][1][0]
    assert last["type"] == "ai" and "tool_call_chunks" not in last
    (message_id,) = events[0][1]
    assert message_id == last["id"] and events[0][1][message_id]["metadata"]["langgraph_node"] == "chat"
    assert events[-1][1][0]["id"] == "w1"


async def test_both_message_modes_send_the_tuple_form_only() -> None:
    events, _ = await events_of(chat(), {"messages": [HumanMessage("hi")]}, ["messages", "messages-tuple"])
    assert {name for name, _ in events} == {"messages"}


def test_stream_modes_are_normalised_and_unknown_ones_named() -> None:
    assert normalise_modes(None) == ["values"]
    assert normalise_modes("updates") == ["updates"]
    assert normalise_modes(["values", "messages-tuple", "values"]) == ["values", "messages-tuple"]
    with pytest.raises(ValueError, match="supported: " + ", ".join(SUPPORTED_MODES)):
        normalise_modes(["values", "bogus"])


def test_graphrun_always_streams_tasks_and_values() -> None:
    assert LangGraphTranslator(["messages-tuple"]).modes == ("tasks", "values", "messages")
    started = LangGraphTranslator(["values"]).feed((), "tasks", {"id": "t1", "name": "a", "input": {}})
    assert (started.events, started.started) == ((), "t1")


async def test_events_mode_streams_astream_events_beside_the_other_modes() -> None:
    """As the worker does with ``events``: astream_events, the root run's chunks through feed()."""
    translator = LangGraphTranslator(["events", "values"])
    run_id = "7f1d3f8e-3c4b-4a7e-9d2c-6b8e0f4a1c27"
    out: list[Event] = []
    config: Any = {"run_id": run_id}
    async for event in chat().astream_events(
        {"messages": [HumanMessage("hi")]}, config, version="v2", stream_mode=list(translator.modes)
    ):
        if event["event"] == "on_chain_stream" and event["run_id"] == run_id:
            mode, chunk = event["data"]["chunk"]
            out += [(n, json.loads(t)) for n, t in translator.feed((), mode, chunk).events]
        elif (item := translator.event(event)) is not None:
            out.append((item[0], json.loads(item[1])))
    kinds = [data["event"] for name, data in out if name == "events"]
    assert kinds[0] == "on_chain_start" and out[0][1]["run_id"] == run_id
    assert "on_chat_model_stream" in kinds and kinds[-1] == "on_chain_end"
    tokens = [d["data"]["chunk"]["content"] for n, d in out if n == "events" and d["event"] == "on_chat_model_stream"]
    assert "".join(tokens) == "hello there friend"
    assert [data["messages"][-1]["content"] for name, data in out if name == "values"][-1] == "whole answer"


def first(s: S) -> dict[str, Any]:
    return {"n": s["n"] + 1, "log": ["first"]}


def second(s: S) -> dict[str, Any]:
    get_stream_writer()({"second": s["n"]})
    return {"n": s["n"] + 1, "log": ["second"]}


class Lagging(InMemorySaver):
    """Loses what a database behind a killed worker's stream would not have had yet: the checkpoint
    after ``second`` and, unless ``keeps_writes``, ``second``'s writes."""

    def __init__(self, *, keeps_writes: bool) -> None:
        super().__init__()
        self.keeps_writes = keeps_writes

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if metadata.get("step", -1) >= 2:
            return {"configurable": {**config["configurable"], "checkpoint_id": checkpoint["id"]}}
        return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        if self.keeps_writes or ("log", ["second"]) not in writes:
            super().put_writes(config, writes, task_id, task_path)


async def attempt(graph: Any, graph_input: Any, translator: LangGraphTranslator) -> list[tuple[str, Any, str | None]]:
    """(event, data, task it names) of one attempt, streamed as the worker streams a run."""
    config: Any = {"configurable": {"thread_id": "t"}}
    out: list[tuple[str, Any, str | None]] = []
    async for mode, chunk in graph.astream(graph_input, config, stream_mode=list(translator.modes)):
        translated = translator.feed((), mode, chunk)
        out += [(name, json.loads(text), translated.task) for name, text in translated.events]
    return out


@pytest.mark.parametrize("keeps_writes", [False, True])
async def test_a_later_attempt_publishes_nothing_more_of_a_task_whose_result_the_log_holds(keeps_writes: bool) -> None:
    graph = line(first, second).compile(checkpointer=Lagging(keeps_writes=keeps_writes))
    modes = ["updates", "custom", "tasks", "debug", "values"]
    published = await attempt(graph, {"n": 0}, LangGraphTranslator(modes))
    named = [(name, data) for name, data, task in published if task]
    assert [name for name, _ in named] == ["updates", "tasks", "debug"] * 2  # each node's result, and only that
    done = {task for _, _, task in published if task}

    again = await attempt(graph, None, LangGraphTranslator(modes, done=done))
    assert [data for name, data, _ in again if name == "custom"] == []
    assert [name for name, data, _ in again if name in ("tasks", "debug") and data.get("type") != "checkpoint"] == []
    updates = [data for name, data, _ in again if name == "updates"]
    if keeps_writes:  # LangGraph replays the saved writes itself, marked as such: sent as it sends them
        assert updates == [{"second": {"n": 2, "log": ["second"]}, "__metadata__": {"cached": True}}]
    else:  # run again: nothing of it is new to the client
        assert updates == []
    assert [data for name, data, _ in again if name == "values"][-1] == {"n": 2, "log": ["first", "second"]}
