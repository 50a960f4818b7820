"""A Python client for graphrun's HTTP API (httpx): submit, follow events, cancel.

    async with GraphrunClient("http://127.0.0.1:8000") as gr:
        sub = await gr.submit(workflow_id, {"n": 0})
        async for event in gr.events(sub["execution_id"]):
            print(event.event, event.json())

``events`` reconnects after a dropped connection and resumes after the last event it yielded, so the
caller sees every event once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import aconnect_sse

TERMINAL = frozenset({"complete", "error", "cancelled", "timeout", "interrupt"})
RETRYABLE = frozenset({502, 503, 504})


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail")
    except ValueError:
        return response.text


class ClientError(Exception):
    """An error answer from the server; ``status`` is the HTTP status, ``detail`` its detail."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"HTTP {status}: {detail if isinstance(detail, str) else json.dumps(detail)}")


@dataclass(frozen=True, slots=True)
class StreamEvent:
    event: str
    id: str | None
    data: str

    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.data)
        return value

    @property
    def terminal(self) -> bool:
        return self.event in TERMINAL


class GraphrunClient:
    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    async def __aenter__(self) -> GraphrunClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        response = await self._http.request(method, path, **kw)
        if response.status_code >= 400:
            raise ClientError(response.status_code, _detail(response))
        return response.json() if response.content else None

    async def graphs(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("GET", "/graphs")
        return result

    async def create_workflow(self, name: str, graph: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "POST", "/workflows", json={"name": name, "graph": graph, "config": config or {}}
        )
        return result

    async def get_workflow(self, workflow_id: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", f"/workflows/{workflow_id}")
        return result

    async def find_workflow(self, name: str) -> dict[str, Any] | None:
        """The newest workflow with this name, or None."""
        found: dict[str, Any] | None = None
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = await self._call("GET", "/workflows", params=params)
            for item in page["items"]:
                if item["name"] == name and (found is None or item["id"] > found["id"]):
                    found = item
            cursor = page["next_cursor"]
            if not cursor:
                return found

    async def submit(
        self, workflow_id: int, input: dict[str, Any], *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"input": input}
        if timeout_s is not None:
            body["timeout_s"] = timeout_s
        result: dict[str, Any] = await self._call("POST", f"/workflows/{workflow_id}/executions", json=body)
        return result

    async def get_execution(self, execution_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", f"/executions/{execution_id}")
        return result

    async def cancel(self, execution_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", f"/executions/{execution_id}/cancel")
        return result

    async def resume(self, execution_id: str, resume: Any) -> dict[str, Any]:
        """Continue an interrupted execution with ``resume``: the new execution (as a submit's)."""
        result: dict[str, Any] = await self._call("POST", f"/executions/{execution_id}/resume", json={"resume": resume})
        return result

    async def events(
        self,
        execution_id: str,
        *,
        last_event_id: str | None = None,
        reconnect_delay: float = 0.5,
        max_reconnects: int | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Every event after ``last_event_id`` up to and including the terminal one."""
        failures = 0
        while True:
            headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
            try:
                async with aconnect_sse(
                    self._http,
                    "GET",
                    f"/executions/{execution_id}/events",
                    headers=headers,
                    timeout=httpx.Timeout(30.0, read=60.0),
                ) as source:
                    status = source.response.status_code
                    if status >= 400:
                        await source.response.aread()
                        if status not in RETRYABLE:
                            raise ClientError(status, _detail(source.response))
                        raise httpx.TransportError(f"HTTP {status}")  # a backing service is away: retry
                    async for sse in source.aiter_sse():
                        failures = 0
                        if not sse.data:
                            # A frame without data is no event (the SSE spec dispatches nothing
                            # for it): the blank line that ends a `: ping` comment. httpx-sse
                            # hands it over anyway, named `message` and carrying the last id it
                            # saw, which would repeat the event before the ping. Every graphrun
                            # event has data.
                            continue
                        event = StreamEvent(sse.event, sse.id or None, sse.data)
                        if event.id:
                            last_event_id = event.id
                        yield event
                        if event.terminal:
                            return
            except (httpx.TransportError, httpx.RemoteProtocolError):
                pass
            failures += 1
            if max_reconnects is not None and failures > max_reconnects:
                raise ClientError(0, f"event stream of {execution_id} kept failing")
            await asyncio.sleep(min(reconnect_delay * failures, 5.0))
