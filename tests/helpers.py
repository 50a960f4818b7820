"""Small helpers shared by tests that talk to a running API."""

from __future__ import annotations

import json
from typing import Any

import httpx


def parse_frame(frame: str) -> dict[str, Any] | None:
    """One SSE frame (without its blank line) as {"id", "event", "data"}; None for comments only."""
    event: dict[str, Any] = {}
    for line in frame.split("\n"):
        if not line or line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        event[field] = json.loads(value) if field == "data" else value
    return event or None


async def read_events(
    client: httpx.AsyncClient, execution_id: str, last_event_id: str | None = None, timeout: float = 30
) -> list[dict[str, Any]]:
    """Read the SSE stream to its end: [{"id", "event", "data"}] (comments skipped)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    events: list[dict[str, Any]] = []
    lines: list[str] = []
    async with client.stream("GET", f"/executions/{execution_id}/events", headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line == "":
                if (event := parse_frame("\n".join(lines))) is not None:
                    events.append(event)
                lines = []
            else:
                lines.append(line)
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

