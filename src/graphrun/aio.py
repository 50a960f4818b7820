"""Small asyncio helpers shared by the processes' composition roots."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from contextlib import suppress
from typing import Any

log = logging.getLogger(__name__)

STUBBORN_S = 5.0
"""A task still running this long after its first cancel is reported, with where it waits."""


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` until it has ended. redis-py can swallow a cancel that lands while it is
    connecting or subscribing, and a single cancel would then leave the caller waiting forever."""
    reported_at = time.monotonic() + STUBBORN_S
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
        if not task.done() and time.monotonic() > reported_at:
            reported_at = float("inf")
            where = io.StringIO()
            task.print_stack(file=where)
            log.warning("task %s ignores cancellation; it waits at:\n%s", task.get_name(), where.getvalue())
    with suppress(asyncio.CancelledError, Exception):
        task.result()
