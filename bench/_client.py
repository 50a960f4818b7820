"""The load generator's client (bench/_loadgen.py): one keep-alive HTTP/1.1 connection over raw
asyncio streams with its SSE parsing (no httpx: its per-request cost would make the client the
bottleneck on a 2-core machine), and how each system is driven, the same pattern for all: submit,
then follow the events to the end.

Imports nothing heavy (not graphrun, not langgraph), so that starting the load generator costs little.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

TERMINAL = frozenset({b"complete", b"error", b"cancelled", b"timeout"})
SUBMIT_BODY = b'{"input": {"n": 0}}'

perf = time.perf_counter


class RunFailed(Exception):
    pass


class Http:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.keep = True

    async def request(
        self, method: str, path: str, body: bytes | None = None, accept: str | None = None
    ) -> tuple[int, dict[str, str]]:
        """Send one request and read the answer's status and headers; the body is read next."""
        for attempt in (0, 1):
            fresh = self.writer is None or self.writer.is_closing() or not self.keep
            if fresh:
                self.close()
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)
                self.keep = True
            assert self.reader is not None and self.writer is not None
            lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
            if accept:
                lines.append(f"Accept: {accept}")
            if body is not None:
                lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
            self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
            status_line = await self.reader.readline()
            if not status_line:
                # The server closed an idle keep-alive connection before reading this request: it
                # never saw it, so sending it again on a new connection cannot run anything twice.
                self.close()
                if fresh or attempt:
                    raise ConnectionError(f"{method} {path}: connection closed without an answer")
                continue
            status = int(status_line.split(None, 2)[1])
            headers: dict[str, str] = {}
            while True:
                line = await self.reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("connection", "").lower() == "close":
                self.keep = False
            return status, headers
        raise AssertionError("unreachable")

    async def body(self, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return b"".join([c async for c in self.chunks()])
        assert self.reader is not None
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        self.keep = False
        return await self.reader.read()

    async def chunks(self) -> AsyncIterator[bytes]:
        reader = self.reader
        assert reader is not None
        while True:
            line = await reader.readline()
            if not line:
                self.keep = False
                raise ConnectionError("connection closed inside a chunked body")
            size = int(line.split(b";", 1)[0], 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]

    async def sse(self, headers: dict[str, str]) -> AsyncIterator[bytes]:
        """The event names of an SSE body, each as its event is complete (comments skipped)."""
        if headers.get("transfer-encoding", "").lower() != "chunked":
            raise RunFailed(f"SSE answer is not chunked: {headers}")
        buf = b""
        event: bytes | None = None
        has_data = False
        async for chunk in self.chunks():
            buf += chunk
            if b"\n" not in chunk:
                continue
            lines = buf.split(b"\n")
            buf = lines.pop()
            for raw_line in lines:
                line = raw_line[:-1] if raw_line.endswith(b"\r") else raw_line
                if not line:
                    if event is not None or has_data:
                        yield event or b"message"
                    event, has_data = None, False
                elif line.startswith(b"event:"):
                    event = line[6:].strip()
                elif line.startswith(b"data:"):
                    has_data = True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass(slots=True)
class Run:
    t0: float
    first: float  # first event of any kind
    first_node: float  # first node output (graphrun node_end, langgraph dev `updates`)
    term: float  # terminal event (graphrun) / end of the stream (langgraph dev)
    events: int
    custom: int
    first_custom: float
    last_custom: float
    truncated: int


class Target:
    """How one system is driven; the same client pattern for all."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.kind: str = spec["kind"]
        self.host: str = spec.get("host", "127.0.0.1")
        self.port: int = spec["port"]
        self.names: dict[str, Any] = spec["targets"]  # role -> workflow id (graphrun) / graph name (peer)
        self.steps: dict[str, int] = spec["steps"]  # role -> node outputs a complete run has

    def http(self) -> Http:
        return Http(self.host, self.port)

    async def run(self, http: Http, role: str = "chain") -> Run:
        if self.kind == "graphrun":
            return await self._graphrun(http, role)
        return await self._peer(http, role)

    async def submit(self, http: Http, role: str) -> str:
        status, headers = await http.request("POST", f"/workflows/{self.names[role]}/executions", SUBMIT_BODY)
        body = await http.body(headers)
        if status != 202:
            raise RunFailed(f"submit: HTTP {status} {body[:200]!r}")
        execution_id: str = json.loads(body)["execution_id"]
        return execution_id

    async def _graphrun(self, http: Http, role: str) -> Run:
        t0 = perf()
        execution_id = await self.submit(http, role)
        status, headers = await http.request("GET", f"/executions/{execution_id}/events", accept="text/event-stream")
        if status != 200:
            raise RunFailed(f"events: HTTP {status} {(await http.body(headers))[:200]!r}")
        return await self._follow(http, headers, t0, graphrun=True, role=role)

    async def _peer(self, http: Http, role: str) -> Run:
        graph, modes = self.names[role]
        body = json.dumps({"assistant_id": graph, "input": {"n": 0}, "stream_mode": modes}).encode()
        t0 = perf()
        status, headers = await http.request("POST", "/runs/stream", body, accept="text/event-stream")
        if status != 200:
            raise RunFailed(f"runs/stream: HTTP {status} {(await http.body(headers))[:200]!r}")
        return await self._follow(http, headers, t0, graphrun=False, role=role)

    async def _follow(self, http: Http, headers: dict[str, str], t0: float, *, graphrun: bool, role: str) -> Run:
        first = first_node = term = first_custom = last_custom = 0.0
        events = nodes = custom = truncated = 0
        outcome = b""
        node_event = b"node_end" if graphrun else b"updates"
        async for event in http.sse(headers):
            t = perf()
            events += 1
            if not first:
                first = t
            if event == node_event:
                nodes += 1
                if not first_node:
                    first_node = t
            elif event == b"custom":
                custom += 1
                if not first_custom:
                    first_custom = t
                last_custom = t
            elif event == b"truncated":
                truncated += 1
            elif event == b"error":
                outcome = b"error"
            if graphrun and event in TERMINAL:
                term, outcome = t, event
        if not graphrun:
            term = perf()
            outcome = outcome or b"complete"
        if outcome != b"complete" or nodes != self.steps[role]:
            raise RunFailed(
                f"stream ended with {outcome.decode() or 'no terminal event'} after {nodes} of "
                f"{self.steps[role]} node outputs ({events} events in all)"
            )
        return Run(t0, first, first_node, term, events, custom, first_custom, last_custom, truncated)
