"""Keeping the garbage collector's full passes short in long-running processes.

A graphrun process holds a large, permanent heap once started: the modules, classes and pydantic
models of LangChain, LangGraph, FastAPI and their dependencies. Every full (generation 2) collection
walks all of it, and it runs on the event loop's thread: measured 50–300 ms per collection in a
worker and in the API on a 2-core machine, each one a stall of every execution and stream of the
process. Freezing what exists at start-up takes it out of every later collection; only what the
process allocates afterwards is walked. Only the commands call this, once, when a process is ready.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    gc.collect()  # what is garbage now is freed, not frozen
    gc.freeze()
