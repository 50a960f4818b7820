"""The small graphs whose streams ``langgraph dev`` was recorded on (tests/langgraph/captures/):
test_translate.py feeds the same graphs to graphrun's translator and compares. capture.py serves
this module with ``langgraph dev`` as graphs ``simple`` (a → b) and ``ask`` (a → ask, which stops at
``interrupt()``), so both sides run one definition."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class S(TypedDict):
    n: int
    log: Annotated[list[str], operator.add]


def a(s: S) -> dict[str, Any]:
    return {"n": s["n"] + 1, "log": ["a"]}


def b(s: S) -> dict[str, Any]:
    return {"n": s["n"] + 1, "log": ["b"]}


def ask(s: S) -> dict[str, Any]:
    answer = interrupt({"question": "ok?", "n": s["n"]})
    return {"log": [f"ans:{answer}"]}


def line(*nodes: Any) -> Any:
    graph: StateGraph[S] = StateGraph(S)
    previous = START
    for node in nodes:
        graph.add_node(node)
        graph.add_edge(previous, node.__name__)
        previous = node.__name__
    graph.add_edge(previous, END)
    return graph


simple = line(a, b).compile()
asking = line(a, ask).compile()
