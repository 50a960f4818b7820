"""Small helpers shared by tests that talk to a running API."""

from __future__ import annotations

import json
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
