"""The graphs bench/concurrency.py runs in a worker (registered through a graphrun.toml naming
``bench._held_graphs:…``; the worker finds them on PYTHONPATH).

- ``held``: a conversation waiting on its model. Node ``think`` awaits ``asyncio.sleep`` until the
  input's ``until`` (an absolute ``time.time()``), as a run awaits an LLM's answer, and reports how
  late it woke (``late_ms``); node ``answer`` returns. The input's ``history`` (a string) stands for
  the conversation's messages: it is in the state, so in every checkpoint.
- ``busy``: ``steps`` nodes that each compute for ``cpu_ms`` of their thread's CPU time: in a thread
  of the worker's pool (``sync``, a synchronous node, as LangGraph runs them) or on the event loop.
- ``probe``: ``sleeps`` awaits of ``sleep_ms`` each, reporting how late each woke (``late_ms``): how
  long an execution that only waits is held up by the rest of the process.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph


class HeldState(TypedDict, total=False):
    n: int
    until: float
    history: str
    late_ms: float


def build_held(config: dict[str, Any]) -> StateGraph:  # type: ignore[type-arg]
    async def think(state: HeldState) -> HeldState:
        await asyncio.sleep(max(0.0, state["until"] - time.time()))
        return {"late_ms": (time.time() - state["until"]) * 1000}

    async def answer(state: HeldState) -> HeldState:
        return {"n": state.get("n", 0) + 1}

    graph = StateGraph(HeldState)
    graph.add_node("think", think)
    graph.add_node("answer", answer)
    graph.add_edge(START, "think")
    graph.add_edge("think", "answer")
    graph.add_edge("answer", END)
    return graph


class CountState(TypedDict, total=False):
    n: int
    late_ms: list[float]


def spin(cpu_ms: float) -> None:
    """Compute for ``cpu_ms`` of this thread's CPU time (waiting for the GIL does not count)."""
    end = time.thread_time() + cpu_ms / 1000
    x = 0
    while time.thread_time() < end:
        for i in range(200):
            x += i * i


def build_busy(config: dict[str, Any]) -> StateGraph:  # type: ignore[type-arg]
    steps, cpu_ms, sync = int(config.get("steps", 1)), float(config.get("cpu_ms", 20)), bool(config.get("sync", True))
    graph = StateGraph(CountState)
    previous = START
    for i in range(1, steps + 1):
        if sync:

            def node(state: CountState) -> CountState:
                spin(cpu_ms)
                return {"n": state.get("n", 0) + 1}

        else:

            async def node(state: CountState) -> CountState:  # type: ignore[misc]
                spin(cpu_ms)
                return {"n": state.get("n", 0) + 1}

        graph.add_node(f"busy_{i}", node)
        graph.add_edge(previous, f"busy_{i}")
        previous = f"busy_{i}"
    graph.add_edge(previous, END)
    return graph


def build_probe(config: dict[str, Any]) -> StateGraph:  # type: ignore[type-arg]
    sleeps, sleep_s = int(config.get("sleeps", 20)), float(config.get("sleep_ms", 20)) / 1000

    async def wait(state: CountState) -> CountState:
        late = []
        for _ in range(sleeps):
            t = time.perf_counter()
            await asyncio.sleep(sleep_s)
            late.append((time.perf_counter() - t - sleep_s) * 1000)
        return {"n": state.get("n", 0) + 1, "late_ms": late}

    graph = StateGraph(CountState)
    graph.add_node("wait", wait)
    graph.add_edge(START, "wait")
    graph.add_edge("wait", END)
    return graph


REGISTRY_TOML = """
[graphs]
held = "bench._held_graphs:build_held"
busy = "bench._held_graphs:build_busy"
probe = "bench._held_graphs:build_probe"
"""
