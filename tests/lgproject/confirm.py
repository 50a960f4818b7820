"""A graph that asks before it acts: `ask` stops at `interrupt()`, a resume answers it."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class State(TypedDict, total=False):
    request: str
    log: Annotated[list[str], operator.add]


def ask(state: State) -> dict[str, Any]:
    answer = interrupt({"question": f"may I {state['request']}?"})
    return {"log": [f"{state['request']}: {answer}"]}


builder = StateGraph(State)
builder.add_node("ask", ask)
builder.add_edge(START, "ask")
builder.add_edge("ask", END)
graph = builder.compile()
