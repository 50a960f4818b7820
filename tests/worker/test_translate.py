"""The stream translator, fed the chunks of small real LangGraph graphs (not hand-written shapes)."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from graphrun.events.model import EventKind
from graphrun.worker.translate import Emit, StreamTranslator

Chunk = tuple[tuple[str, ...], str, Any]


class Count(TypedDict):
    n: int


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


async def chunks_of(graph: Any, graph_input: Any) -> list[Chunk]:
    """What the runner's astream yields for ``graph``, up to its end or its failure."""
    out: list[Chunk] = []
    try:
        async for namespace, mode, chunk in graph.compile().astream(
            graph_input, stream_mode=list(StreamTranslator.modes), subgraphs=True
        ):
            out.append((namespace, mode, chunk))
    except RuntimeError:
        pass
    return out


def translate(chunks: list[Chunk], translator: StreamTranslator | None = None) -> list[Emit]:
    translator = translator or StreamTranslator()
    return [event for chunk in chunks for event in translator.feed(*chunk).events]


def step(name: str, emit: int = 0, fail: bool = False) -> Any:
    async def node(state: Count) -> Count:
        write = get_stream_writer()
        for i in range(emit):
            write({"from": name, "i": i})
        if fail:
            raise RuntimeError(f"{name} failed")
        return {"n": state["n"] + 1}

    return node


def line(*nodes: tuple[str, Any]) -> StateGraph[Count]:
    graph: StateGraph[Count] = StateGraph(Count)
    previous = START
    for name, node in nodes:
        graph.add_node(name, node)
        graph.add_edge(previous, name)
        previous = name
    graph.add_edge(previous, END)
    return graph


def shape(events: list[Emit]) -> list[tuple[str, Any]]:
    return [(e.kind.value, e.data.get("node")) for e in events]


async def test_a_line_of_nodes_gives_start_custom_and_end_per_node() -> None:
    chunks = await chunks_of(line(("a", step("a", emit=2)), ("b", step("b"))), {"n": 0})
    translator = StreamTranslator()
    events = translate(chunks, translator)
    assert shape(events) == [
        ("node_start", "a"),
        ("custom", "a"),
        ("custom", "a"),
        ("node_end", "a"),
        ("node_start", "b"),
        ("node_end", "b"),
    ]
    assert [e.data["data"] for e in events if e.kind is EventKind.CUSTOM] == [
        {"from": "a", "i": 0},
        {"from": "a", "i": 1},
    ]
    ends = [e for e in events if e.kind is EventKind.NODE_END]
    assert [e.data["output"] for e in ends] == [{"n": 1}, {"n": 2}]
    # A node's start and end carry its LangGraph task id (the log keeps it), other events none.
    assert all(e.task for e in events if e.kind in (EventKind.NODE_START, EventKind.NODE_END))
    assert all(not e.task for e in events if e.kind is EventKind.CUSTOM)
    assert all("namespace" not in e.data for e in events)
    assert translator.final == {"n": 2}


async def test_it_says_which_task_began_and_which_ended_after_its_events() -> None:
    chunks = await chunks_of(line(("a", step("a"))), {"n": 0})
    outs = [StreamTranslator().feed(*chunk) for chunk in chunks]
    started = [o for o in outs if o.started]
    ended = [o for o in outs if o.ended]
    assert len(started) == len(ended) == 1
    task = started[0].started
    assert ended[0].ended == task
    assert started[0].events[0].task == task  # node_start, with the same chunk
    assert ended[0].events[0].kind is EventKind.NODE_END  # node_end, before the gate hears of it


async def test_events_inside_a_subgraph_carry_its_namespace() -> None:
    inner = line(("inner", step("inner", emit=1))).compile()
    chunks = await chunks_of(line(("outer", step("outer")), ("sub", inner)), {"n": 0})
    translator = StreamTranslator()
    events = translate(chunks, translator)
    assert shape(events) == [
        ("node_start", "outer"),
        ("node_end", "outer"),
        ("node_start", "sub"),
        ("node_start", "inner"),
        ("custom", "inner"),
        ("node_end", "inner"),
        ("node_end", "sub"),
    ]
    namespaces = {e.data["node"]: e.data.get("namespace") for e in events}
    assert namespaces["outer"] is None
    assert namespaces["sub"] is None
    (name,) = namespaces["inner"]
    assert name.startswith("sub:")
    assert translator.final == {"n": 2}


async def test_custom_events_of_parallel_branches_name_no_node() -> None:
    graph: StateGraph[Count] = StateGraph(Count)

    def branch(name: str) -> Any:
        async def node(state: Count) -> dict[str, Any]:
            get_stream_writer()({"from": name})
            return {}

        return node

    for name in ("left", "right"):
        graph.add_node(name, branch(name))
        graph.add_edge(START, name)
        graph.add_edge(name, END)
    events = translate(await chunks_of(graph, {"n": 0}))
    customs = [e for e in events if e.kind is EventKind.CUSTOM]
    assert sorted(e.data["data"]["from"] for e in customs) == ["left", "right"]
    assert all(e.data["node"] is None for e in customs)


async def test_a_failed_node_has_no_end() -> None:
    chunks = await chunks_of(line(("a", step("a")), ("b", step("b", emit=1, fail=True))), {"n": 0})
    assert shape(translate(chunks)) == [
        ("node_start", "a"),
        ("node_end", "a"),
        ("node_start", "b"),
        ("custom", "b"),
    ]


async def test_model_output_becomes_messages_and_returned_human_messages_do_not() -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage(content="hello world")]))

    async def ask(state: Chat) -> Chat:
        return {"messages": [HumanMessage(content="a question", id="h1")]}

    async def talk(state: Chat) -> Chat:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph: StateGraph[Chat] = StateGraph(Chat)
    graph.add_node("ask", ask)
    graph.add_node("talk", talk)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", "talk")
    graph.add_edge("talk", END)
    events = translate(await chunks_of(graph, {"messages": []}))
    messages = [e for e in events if e.kind is EventKind.MESSAGE]
    assert messages, events
    assert {e.data["node"] for e in messages} == {"talk"}
    assert "".join(e.data["content"] for e in messages) == "hello world"


@pytest.mark.parametrize("known", ["started", "done"])
async def test_a_resumed_run_does_not_publish_again_what_the_log_holds(known: str) -> None:
    chunks = await chunks_of(line(("a", step("a", emit=1)), ("b", step("b", emit=1))), {"n": 0})
    first = translate(chunks)
    task_a = next(e.task for e in first if e.kind is EventKind.NODE_START and e.data["node"] == "a")
    events = translate(chunks, StreamTranslator(**{known: {task_a}}))
    if known == "started":  # its start is in the log: everything but node_start again
        assert shape(events) == shape(first)[1:]
    else:  # its end is in the log: only its start, which the log may lack (a crash in between)
        assert shape(events) == [("node_start", "a"), ("node_start", "b"), ("custom", "b"), ("node_end", "b")]
