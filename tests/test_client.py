"""graphrun.client against a real API and worker: submit, follow, cancel; and a follow that keeps
every event exactly once while its HTTP connections are cut under it."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from graphrun.client import ClientError, GraphrunClient
from graphrun.settings import Settings
from tests.conftest import InLoopWorker, ServerHandle
from tests.helpers import DroppingProxy, read_events


@pytest.fixture
async def proxy(api: ServerHandle) -> AsyncIterator[DroppingProxy]:
    p = DroppingProxy(api.port)
    await p.start()
    yield p
    await p.stop()


async def test_follow_survives_cut_connections_and_yields_every_event_once(
    client: httpx.AsyncClient, worker: InLoopWorker, proxy: DroppingProxy
) -> None:
    seed = int(os.environ.get("GRAPHRUN_TEST_SEED") or random.randrange(2**32))
    print(f"cut connections: GRAPHRUN_TEST_SEED={seed}")
    rng = random.Random(seed)
    steps, emit = 20, 20
    async with GraphrunClient(proxy.url) as gr:
        wf = await gr.create_workflow("chatty", "chain", {"steps": steps, "emit": emit, "delay_s": 0.1})
        sub = await gr.submit(wf["id"], {"n": 0})
        got = []
        cut_after = rng.randint(1, 20)
        cuts = 0
        async for event in gr.events(sub["execution_id"], reconnect_delay=0.01, max_reconnects=20):
            got.append(event)
            # Cut wherever the stream is: mid-frame, events in the client's buffers, idle. Events
            # already received still come after a cut; the next cut waits for a new connection.
            if len(got) >= cut_after and proxy.drop_all():
                cuts += 1
                cut_after = len(got) + rng.randint(1, 20)
    whole = await read_events(client, sub["execution_id"])

    assert len(whole) == 2 + steps * (emit + 2)
    assert [(e.id, e.event, e.json()) for e in got] == [(e["id"], e["event"], e["data"]) for e in whole], seed
    # A cut counts only when it found a connection open, so each one after the first was on a
    # connection the client opened again by itself.
    print(f"{cuts} cuts, {proxy.accepted} connections accepted")
    assert cuts >= 10, f"only {cuts} connections cut (seed {seed})"
    assert got[-1].terminal and got[-1].json()["output"] == {"n": steps}


async def test_submit_follow_cancel_and_errors(api: ServerHandle, worker: InLoopWorker) -> None:
    async with GraphrunClient(api.url) as gr:
        assert "chain" in [g["name"] for g in await gr.graphs()]
        wf = await gr.create_workflow("slow", "chain", {"steps": 3, "delay_s": 5})
        assert (await gr.find_workflow("slow"))["id"] == wf["id"]
        sub = await gr.submit(wf["id"], {"n": 0})
        events = gr.events(sub["execution_id"])
        first = await anext(events)
        assert first.event == "start"
        await gr.cancel(sub["execution_id"])
        rest = [e async for e in events]
        assert rest[-1].event == "cancelled" and rest[-1].terminal
        assert (await gr.get_execution(sub["execution_id"]))["status"] == "cancelled"
        with pytest.raises(ClientError) as err:
            await gr.cancel(sub["execution_id"] + "x")
        assert err.value.status == 404
        with pytest.raises(ClientError) as err:
            async for _ in gr.events(sub["execution_id"], last_event_id="yesterday"):
                pass
        assert err.value.status == 400


async def test_heartbeat_between_events_yields_nothing(
    api_factory: Callable[[Settings], Awaitable[ServerHandle]],
    worker_factory: Callable[[Settings], Awaitable[InLoopWorker]],
    settings: Settings,
) -> None:
    # A `: ping` comment ends with a blank line. httpx-sse dispatches that blank line as an event
    # (named `message`, no data) carrying the last id it saw, where the SSE spec dispatches
    # nothing: the client must not yield it, or the event before the ping is seen twice. Pings
    # every 20 ms and 0.3 s nodes put several between the events of one node.
    fast_pings = settings.model_copy(update={"heartbeat_s": 0.02})
    api = await api_factory(fast_pings)
    await worker_factory(fast_pings)
    async with GraphrunClient(api.url) as gr:
        wf = await gr.create_workflow("pinged", "chain", {"steps": 2, "delay_s": 0.3})
        sub = await gr.submit(wf["id"], {"n": 0})
        got = [e async for e in gr.events(sub["execution_id"])]
        async with httpx.AsyncClient(base_url=api.url) as http:
            whole = await read_events(http, sub["execution_id"])
    assert [(e.id, e.event) for e in got] == [(e["id"], e["event"]) for e in whole]
    assert got[-1].event == "complete"


async def test_frames_without_data_are_no_events() -> None:
    """The exact frames: an event, a ping, a truncated notice (no id), a ping, the terminal event."""
    body = (
        b"id: 1-0\nevent: start\ndata: {}\n\n"
        b": ping\n\n"
        b'event: truncated\ndata: {"missed": 3}\n\n'
        b": ping\n\n"
        b"id: 1-4\nevent: complete\ndata: {}\n\n"
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    async with GraphrunClient("http://graphrun.test") as gr:
        await gr._http.aclose()
        gr._http = httpx.AsyncClient(base_url="http://graphrun.test", transport=httpx.MockTransport(answer))
        got = [(e.event, e.id) async for e in gr.events("x")]
    assert [event for event, _ in got] == ["start", "truncated", "complete"]
    assert got[0][1] == "1-0" and got[-1][1] == "1-4"
