"""Graphs that only tests register (through a graphrun.toml naming ``tests.graphs:…``); importable by
worker subprocesses too."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    n: int


def build_sync_sleeper(config: dict[str, Any]) -> StateGraph:
    """One synchronous node that sleeps, then writes a custom event, a marker file and its update:
    the marker tells a test when the node really returned."""

    def sleeper(state: State) -> State:
        time.sleep(config["sleep_s"])
        get_stream_writer()({"late": True})
        Path(config["marker"]).write_text("returned")
        return {"n": state["n"] + 1}

    graph = StateGraph(State)
    graph.add_node("sleeper", sleeper)
    graph.add_edge(START, "sleeper")
    graph.add_edge("sleeper", END)
    return graph


def build_stubborn(config: dict[str, Any]) -> StateGraph:
    """One async node that will not stop when cancelled: its clean-up takes ``sleep_s`` more, then
    it writes a custom event, the marker file and its update anyway."""

    async def stubborn(state: State) -> State:
        try:
            await asyncio.sleep(config["sleep_s"])
        except asyncio.CancelledError:
            await asyncio.sleep(config["sleep_s"])
        get_stream_writer()({"late": True})
        Path(config["marker"]).write_text("returned")
        return {"n": state["n"] + 1}

    graph = StateGraph(State)
    graph.add_node("stubborn", stubborn)
    graph.add_edge(START, "stubborn")
    graph.add_edge("stubborn", END)
    return graph


def build_loop_blocker(config: dict[str, Any]) -> StateGraph:
    """One *async* node that calls time.sleep: the mistake that stalls a worker's event loop."""

    async def blocker(state: State) -> State:
        time.sleep(config["block_s"])  # blocks the event loop, on purpose
        return {"n": state["n"] + 1}

    graph = StateGraph(State)
    graph.add_node("blocker", blocker)
    graph.add_edge(START, "blocker")
    graph.add_edge("blocker", END)
    return graph


def build_slow_to_build(config: dict[str, Any]) -> StateGraph:
    """A synchronous factory that takes ``build_s`` (it runs in a thread); one quick node."""
    time.sleep(config["build_s"])

    async def quick(state: State) -> State:
        return {"n": state["n"] + 1}

    graph = StateGraph(State)
    graph.add_node("quick", quick)
    graph.add_edge(START, "quick")
    graph.add_edge("quick", END)
    return graph


REGISTRY_TOML = """[graphs]
slow_to_build = "tests.graphs:build_slow_to_build"
sync_sleeper = "tests.graphs:build_sync_sleeper"
stubborn = "tests.graphs:build_stubborn"
loop_blocker = "tests.graphs:build_loop_blocker"
"""


def logged(config: dict[str, Any]) -> StateGraph:  # type: ignore[type-arg]
    """A chain whose factory takes `build_s` seconds and appends "<pid> <steps>" to the file `log`."""
    from graphrun.examples.chain import build

    time.sleep(float(config.get("build_s", 0)))
    with open(config["log"], "a") as fh:
        fh.write(f"{os.getpid()} {config.get('steps', 1)}\n")
    return build({k: v for k, v in config.items() if k in ("steps", "delay_s")})


def builds(path: str) -> list[tuple[int, int]]:
    """(pid, steps) of every build logged so far."""
    try:
        with open(path) as fh:
            return [(int(a), int(b)) for a, b in (line.split() for line in fh if line.strip())]
    except FileNotFoundError:
        return []
