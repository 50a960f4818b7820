"""Reading `langgraph_sdk` streams and answers the same way against every server of the suite."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from langgraph_sdk.schema import StreamPart

from tests.helpers import scaled
from tests.langgraph.targets import Target


def graphrun_only(target: Target, reference_answer: str) -> None:
    """Issue #15 holds graphrun to more than the reference does here."""
    if target.kind == "reference":
        pytest.skip(f"graphrun's contract only: the reference {reference_answer}")


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def collect(stream: AsyncIterator[StreamPart], seconds: float = 30) -> list[StreamPart]:
    """Every part of a stream to its end, within ``scaled(seconds)``, without a closing `end`:
    graphrun closes every stream with one (issue #15), the reference sends none, the SDK passes it on."""
    parts: list[StreamPart] = []
    async with asyncio.timeout(scaled(seconds)):
        async for part in stream:
            parts.append(part)
    ends = [i for i, p in enumerate(parts) if p.event == "end"]
    assert ends in ([], [len(parts) - 1]), f"`end` comes once, last: {names(parts)}"
    return parts[: ends[0]] if ends else parts


def names(parts: list[StreamPart]) -> list[str]:
    return [p.event for p in parts]


def tokens(parts: list[StreamPart]) -> list[str]:
    """The AI message chunks' texts of a `messages-tuple` stream."""
    return [p.data[0]["content"] for p in parts if p.event == "messages" and p.data[0]["type"] == "AIMessageChunk"]


async def first_part(stream: AsyncIterator[StreamPart], wanted: Any, seconds: float = 30) -> list[StreamPart]:
    """Read ``stream`` up to and including the first part for which ``wanted(part)``, then hang up."""
    seen: list[StreamPart] = []
    async with asyncio.timeout(scaled(seconds)), contextlib.aclosing(stream) as parts:  # type: ignore[type-var]
        async for part in parts:
            seen.append(part)
            if wanted(part):
                return seen
    raise AssertionError(f"the stream ended without the part wanted: {names(seen)}")


async def steps_run_at_step_3(client: Any) -> tuple[str, str]:
    """A new thread with a run of ``steps`` (updates and custom, resumable), once its stream says step_3
    has started: mid-node, two items written. Returns (thread id, run id)."""
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(
        tid, "steps", input={"delay": scaled(0.5)}, stream_mode=["updates", "custom"], stream_resumable=True
    )
    await first_part(
        client.runs.join_stream(tid, run["run_id"], last_event_id="-1"),
        lambda p: p.event == "custom" and p.data == {"started": "step_3"},
    )
    return tid, run["run_id"]


async def status_of(call: Any) -> int:
    try:
        await call
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code
    return 200
