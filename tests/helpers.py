"""Small helpers shared by tests that talk to a running API (and a few for the stores)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

TIME_FACTOR = float(os.environ.get("GRAPHRUN_TEST_TIME_FACTOR", "3"))
"""How much slower than a quiet machine this one may be (``GRAPHRUN_TEST_TIME_FACTOR``, default 3).

Every wall-clock bound a test asserts, and every deadline of a wait, is written for a quiet machine
and multiplied by this factor through :func:`scaled`. Tests wait on events or state wherever they
can; a bound remains only where the bound is what is tested ("a cancel lands within 1 s"), and
there it must still tell right from wrong when scaled: a bound that 3 would blur is replaced by a
check of order or overlap instead. 3 lets a 2-core machine running ``pytest -n 2`` beside other
work pass; set it to 1 to hold the code to the quiet-machine figures."""


def scaled(seconds: float) -> float:
    """``seconds`` on a quiet machine, allowed for this one (see TIME_FACTOR)."""
    return seconds * TIME_FACTOR


async def wait_until(
    predicate: Callable[[], Any | Awaitable[Any]], timeout: float = 10, what: object = "condition"
) -> Any:
    """Poll ``predicate`` (plain or async) until it returns something truthy, and return that; fail
    after ``scaled(timeout)`` seconds naming ``what`` (called, if callable, for the message)."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {scaled(timeout):.1f} s waiting for {described}")
        await asyncio.sleep(0.02)


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


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 whose open connections can all be cut at once, mid-stream."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.accepted = 0
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._pairs.append((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.transport.abort()

    def drop_all(self) -> int:
        """Abort every open connection in both directions; returns how many were open."""
        pairs, self._pairs = self._pairs, []
        for client_side, upstream in pairs:
            client_side.transport.abort()
            upstream.transport.abort()
        return len(pairs)

    async def stop(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


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
        """The first event of this kind, waiting for it if need be (up to ``scaled(timeout)``)."""
        async with asyncio.timeout(scaled(timeout)):
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


async def wait_status(
    client: httpx.AsyncClient, execution_id: str, *statuses: str, timeout: float = 20
) -> dict[str, Any]:
    """Poll the execution until its status is one of ``statuses``; its row then."""
    row: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal row
        row = (await client.get(f"/executions/{execution_id}")).json()
        return row["status"] in statuses

    await wait_until(reached, timeout, lambda: (statuses, row))
    return row


async def wait_row(client: httpx.AsyncClient, execution_id: str, timeout: float = 60, **want: Any) -> dict[str, Any]:
    """Poll the execution until every field in ``want`` has that value; its row then."""
    row: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal row
        row = (await client.get(f"/executions/{execution_id}")).json()
        return all(row.get(k) == v for k, v in want.items())

    await wait_until(reached, timeout, lambda: (want, row))
    return row


async def wait_subscribed(redis_url: str, channel: str, count: int, timeout: float = 30) -> None:
    """Wait until ``count`` connections listen on ``channel``: every worker process subscribes to the
    cancel channel once it is ready, so this is how a test knows that worker processes it started
    are up (starting one takes seconds on a busy machine)."""
    from redis.asyncio import Redis

    probe = Redis.from_url(redis_url)
    try:

        async def subscribed() -> bool:
            return dict(await probe.pubsub_numsub(channel))[channel.encode()] >= count

        await wait_until(subscribed, timeout, f"{count} subscriber(s) on {channel}")
    finally:
        await probe.aclose()


def process_env(s: Any, **extra: str) -> dict[str, str]:
    """The environment for a graphrun subprocess (worker, api) on the same Redis and database as
    the test's settings; nothing inherited from a GRAPHRUN_* variable of the caller."""
    import os
    from pathlib import Path

    # The CLI chooses the metrics directory of the processes it starts; an inherited one is not ours.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHRUN_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        GRAPHRUN_REDIS_URL=s.redis_url or "",
        GRAPHRUN_DATABASE_URL=s.sqlalchemy_url.replace("sqlite+aiosqlite:", "sqlite:", 1),
        GRAPHRUN_REDIS_PREFIX=s.redis_prefix,
        GRAPHRUN_DATA_DIR=str(s.data_dir),
        GRAPHRUN_LOG_LEVEL="INFO",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    if s.config is not None:
        env["GRAPHRUN_CONFIG"] = str(s.config)
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def sqlite_write_lock(path: Path) -> AsyncIterator[list[int]]:
    """Another connection holds SQLite's write lock on ``path`` while the block runs, as another
    process's writer would. Yields a one-item list: how many 10 ms ticks the event loop made
    meanwhile (few means something blocked the loop)."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    ticks = [0]

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.01)
            ticks[0] += 1

    ticker = asyncio.create_task(tick())
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield ticks
    finally:
        ticker.cancel()
        holder.execute("COMMIT")
        holder.close()
