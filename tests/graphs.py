"""Graphs registered by tests through a graphrun.toml (importable by worker subprocesses too)."""

from __future__ import annotations

import os
import time
from typing import Any

from langgraph.graph import StateGraph


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
