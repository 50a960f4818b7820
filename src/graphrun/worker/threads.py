"""The threads that run synchronous nodes, tools and factories off a worker's event loop.

LangGraph runs a synchronous node with ``run_in_executor(None, …)``, i.e. in the loop's default
executor, whose stock size (``min(32, cpus + 4)``) would let six blocking nodes on a two-core machine
queue every other synchronous node of the process behind them. The worker gives its loop a pool
sized for its concurrency instead: one thread per execution it may run, as many again for nodes
whose execution was already cancelled or timed out (a thread cannot be stopped, it is left to
return), and some for factories and name lookups. Threads are only started when needed.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

SPARE_THREADS = 16


def pool_size(concurrency: int) -> int:
    return 2 * concurrency + SPARE_THREADS


def use_node_threads(loop: asyncio.AbstractEventLoop, concurrency: int) -> ThreadPoolExecutor:
    pool = ThreadPoolExecutor(max_workers=pool_size(concurrency), thread_name_prefix="graphrun-sync")
    loop.set_default_executor(pool)
    return pool


def release_node_threads(loop: asyncio.AbstractEventLoop, pool: ThreadPoolExecutor) -> None:
    """Stop handing work to ``pool`` without waiting for nodes still running in it (their results
    are discarded); the loop gets a fresh default executor, since it may outlive the worker (tests,
    an application embedding one)."""
    loop.set_default_executor(ThreadPoolExecutor())
    pool.shutdown(wait=False, cancel_futures=True)
