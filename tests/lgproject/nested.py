"""A graph whose first node is a subgraph of two steps (`inner`), then a node of its own (`outer`):
what `stream_subgraphs` names `<mode>|inner:<task id>`."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def add(item: str) -> Any:
    def node(state: State) -> dict[str, Any]:
        return {"items": [item]}

    return node


inner = StateGraph(State)
inner.add_node("a", add("a"))
inner.add_node("b", add("b"))
inner.add_edge(START, "a")
inner.add_edge("a", "b")
inner.add_edge("b", END)

builder = StateGraph(State)
builder.add_node("inner", inner.compile())
builder.add_node("outer", add("outer"))
builder.add_edge(START, "inner")
builder.add_edge("inner", "outer")
builder.add_edge("outer", END)
graph = builder.compile()
