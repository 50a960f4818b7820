"""Small helpers shared by tests that talk to a running API."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx


async def read_events(
    client: httpx.AsyncClient, execution_id: str, last_event_id: str | None = None, timeout: float = 30
) -> list[dict[str, Any]]:
    """Read the SSE stream to its end: [{"id", "event", "data"}] (comments skipped)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with client.stream("GET", f"/executions/{execution_id}/events", headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line == "":
                if current:
                    events.append(current)
                    current = {}
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                current["data"] = json.loads(value)
            else:
                current[field] = value
    return events


async def chain_workflow(client: httpx.AsyncClient, **config: Any) -> dict[str, Any]:
    response = await client.post("/workflows", json={"name": "c", "graph": "chain", "config": config})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def submit(client: httpx.AsyncClient, workflow_id: int, **body: Any) -> dict[str, Any]:
    body.setdefault("input", {"n": 0})
    response = await client.post(f"/workflows/{workflow_id}/executions", json=body)
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


class LiveEvents:
    """Follows one execution's SSE stream in the background, noting when each event arrived
    (``time.monotonic()``), so a test can measure latencies as a client sees them."""

    def __init__(self, client: httpx.AsyncClient, execution_id: str) -> None:
        self.client = client
        self.execution_id = execution_id
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        current: dict[str, Any] = {}
        path = f"/executions/{self.execution_id}/events"
        async with self.client.stream("GET", path, timeout=60) as response:
            assert response.status_code == 200, await response.aread()
            async for line in response.aiter_lines():
                if line == "":
                    if current:
                        current["at"] = time.monotonic()
                        self.events.append(current)
                        current = {}
                        self._changed.set()
                    continue
                if line.startswith(":"):
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                current[field] = json.loads(value) if field == "data" else value
        self._changed.set()

    @property
    def kinds(self) -> list[str]:
        return [e["event"] for e in self.events]

    async def wait_for(self, kind: str, timeout: float = 30) -> dict[str, Any]:
        """The first event of this kind, waiting for it if need be."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if event["event"] == kind:
                        return event
                if self._task.done():
                    self._task.result()
                    raise AssertionError(f"stream ended without {kind}: {self.kinds}")
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def wait_status(client: httpx.AsyncClient, execution_id: str, *statuses: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        ex: dict[str, Any] = (await client.get(f"/executions/{execution_id}")).json()
        if ex["status"] in statuses:
            return ex
        assert time.monotonic() < deadline, ex
        await asyncio.sleep(0.02)
