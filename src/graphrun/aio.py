"""Small asyncio helpers shared by the processes' composition roots."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` until it has ended. redis-py can swallow a cancel that lands while it is
    connecting or subscribing, and a single cancel would then leave the caller waiting forever."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
    with suppress(asyncio.CancelledError, Exception):
        task.result()
