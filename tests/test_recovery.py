"""Crash safety with real processes: SIGKILLed and SIGSTOPped workers, a restarted Redis."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from graphrun.client import GraphrunClient
from graphrun.events.ids import ZERO
from graphrun.events.log import EventLog
from graphrun.redis.batch import CommandBatcher
from graphrun.redis.connections import shared_client
from graphrun.redis.embedded import EmbeddedRedis
from graphrun.redis.keys import Keys
from graphrun.settings import Settings
from tests.conftest import ServerHandle
from tests.helpers import process_env, read_events, scaled, wait_row, wait_until

ApiFactory = Callable[[Settings], Awaitable[ServerHandle]]
ClientFactory = Callable[..., httpx.AsyncClient]

ROOT = Path(__file__).resolve().parents[1]

# Fast leases so that take-overs happen within the test's time; the defaults are in Settings. No
# start grace: these tests kill and pause workers mid-node, and read a `running` row as "a node
# runs" (tests/test_start_grace.py and test_cancel.py cover the grace).
FAST = {
    "GRAPHRUN_LEASE_S": "2",
    "GRAPHRUN_SWEEP_INTERVAL_S": "0.5",
    "GRAPHRUN_REQUEUE_AFTER_S": "3",
    "GRAPHRUN_START_GRACE_MS": "0",
}


def worker_env(s: Settings, **extra: str) -> dict[str, str]:
    return process_env(s, **{**FAST, **extra})


class Workers:
    """Worker processes that a test can kill, pause and restart."""

    def __init__(self, settings: Settings, tmp: Path, n: int, **extra: str) -> None:
        self.env = worker_env(settings, **extra)
        self.tmp = tmp
        self.logs = [open(tmp / f"worker{i}.log", "ab") for i in range(n)]  # noqa: SIM115
        self.procs = [self._start(i) for i in range(n)]

    def _start(self, i: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "graphrun", "worker", "--processes", "1"],
            env=self.env,
            stdout=self.logs[i],
            stderr=self.logs[i],
            cwd=self.tmp,
        )

    def kill_and_restart(self, i: int) -> None:
        self.procs[i].kill()
        self.procs[i].wait(10)
        self.procs[i] = self._start(i)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in self.logs:
            log.close()


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"lease_s": 2.0, "sweep_interval_s": 0.5, "requeue_after_s": 3.0})


@pytest.fixture
async def client(api_factory: ApiFactory, client_factory: ClientFactory, fast_settings: Settings) -> httpx.AsyncClient:
    return client_factory(await api_factory(fast_settings))


async def stream_log(s: Settings, redis: Redis, execution_id: str) -> list[tuple[str, dict[str, Any]]]:
    import json

    batcher = CommandBatcher(redis)
    try:
        log = EventLog(redis, Keys(s.redis_prefix), maxlen=s.event_maxlen, ttl_s=s.event_ttl_s, batcher=batcher)
        return [(e.kind, json.loads(e.data)) for e in await log.read(execution_id, ZERO, 100_000)]
    finally:
        await batcher.close()


async def _has(s: Settings, redis: Redis, execution_id: str, kind: str) -> bool:
    return any(k == kind for k, _ in await stream_log(s, redis, execution_id))


async def wait_node_ends(s: Settings, redis: Redis, execution_id: str, count: int) -> None:
    """Wait until the execution's log holds ``count`` node_end events: it is mid-run."""

    async def ended() -> bool:
        return [k for k, _ in await stream_log(s, redis, execution_id)].count("node_end") >= count

    await wait_until(ended, 60, f"{count} node_end of {execution_id}")


async def wait_all_finished(client: httpx.AsyncClient, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + scaled(timeout)
    while True:
        rows = [(await client.get(f"/executions/{i}")).json() for i in ids]
        if all(r["status"] not in ("queued", "running") for r in rows):
            return rows
        if asyncio.get_running_loop().time() > deadline:
            stuck = [(r["id"], r["status"], r["attempt"]) for r in rows if r["status"] in ("queued", "running")]
            raise AssertionError(f"still unfinished after {timeout}s: {stuck}")
        await asyncio.sleep(0.25)


@pytest.mark.parametrize("checkpoints", ["redis", "database"])
async def test_chaos_sigkill_loses_nothing(
    fast_settings: Settings, client: httpx.AsyncClient, redis: Redis, tmp_path: Path, checkpoints: str
) -> None:
    # Up to five kills may hit the same execution, so this test allows more attempts than the
    # default three (exhausting attempts is tested on its own).
    # Five executions at a time per worker: the 40 runs then span the kills (about 6 s of work
    # without them).
    # With checkpoints in the database (SQLite beside the store), as in Redis: no node_end is lost.
    workers = Workers(
        fast_settings,
        tmp_path,
        2,
        GRAPHRUN_MAX_ATTEMPTS="10",
        GRAPHRUN_WORKER_CONCURRENCY="5",
        GRAPHRUN_CHECKPOINTS=checkpoints,
    )
    try:
        wf = (
            await client.post(
                "/workflows", json={"name": "chaos", "graph": "chain", "config": {"steps": 8, "delay_s": 0.2}}
            )
        ).json()
        ids = [
            (await client.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}})).json()["execution_id"]
            for _ in range(40)
        ]
        rng = random.Random(int(os.environ.get("GRAPHRUN_CHAOS_SEED", "1234")))
        for _ in range(5):
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            for _wait in range(600):  # kill while something runs, not into an idle worker
                page = (await client.get("/executions", params={"status": "running", "limit": 1})).json()
                if page["items"]:
                    break
                await asyncio.sleep(0.05)
            workers.kill_and_restart(rng.randrange(2))
        rows = await wait_all_finished(client, ids, timeout=150)
        assert {r["status"] for r in rows} == {"succeeded"}, [(r["id"], r["status"], r["error"]) for r in rows]
        assert all(r["output"] == {"n": 8} for r in rows)
        assert max(r["attempt"] for r in rows) > 1, "no execution was taken over: the kills missed"
        for execution_id in ids:
            events = await stream_log(fast_settings, redis, execution_id)
            ends = Counter(d["node"] for k, d in events if k == "node_end")
            assert ends == {f"step_{i}": 1 for i in range(1, 9)}, (execution_id, ends)
            assert [k for k, _ in events].count("complete") == 1 and events[-1][0] == "complete"
    finally:
        workers.stop()


async def test_paused_worker_is_fenced_out(
    fast_settings: Settings, client: httpx.AsyncClient, redis: Redis, tmp_path: Path
) -> None:
    workers = Workers(fast_settings, tmp_path, 1)
    try:
        wf = (
            await client.post(
                "/workflows", json={"name": "p", "graph": "chain", "config": {"steps": 6, "delay_s": 0.5}}
            )
        ).json()
        sub = (await client.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}})).json()
        await wait_node_ends(fast_settings, redis, sub["execution_id"], 1)  # mid-run
        paused = workers.procs[0]
        os.kill(paused.pid, signal.SIGSTOP)
        workers.procs.append(workers._start(0))  # a second worker takes over once the lease expires
        await wait_row(client, sub["execution_id"], attempt=2)
        os.kill(paused.pid, signal.SIGCONT)  # it wakes up still "running" attempt 1
        rows = await wait_all_finished(client, [sub["execution_id"]], timeout=60)
        assert rows[0]["status"] == "succeeded" and rows[0]["output"] == {"n": 6} and rows[0]["attempt"] == 2
        # The woken worker has tried its late writes once it has found its lease gone: the process
        # log is all a test sees of another process.
        log_text = (tmp_path / "worker0.log").read_text
        await wait_until(lambda: "lease" in log_text() and "lost" in log_text(), 30, log_text)
        events = await stream_log(fast_settings, redis, sub["execution_id"])
        kinds = [k for k, _ in events]
        assert kinds.count("start") == 1 and kinds.count("complete") == 1 and kinds[-1] == "complete"
        assert [d["attempt"] for k, d in events if k == "resumed"] == [2]
        ends = Counter(d["node"] for k, d in events if k == "node_end")
        assert ends == {f"step_{i}": 1 for i in range(1, 7)}
    finally:
        workers.stop()


async def test_executions_fail_after_max_attempts(
    fast_settings: Settings, client: httpx.AsyncClient, redis: Redis, tmp_path: Path
) -> None:
    workers = Workers(fast_settings, tmp_path, 1, GRAPHRUN_MAX_ATTEMPTS="2")
    try:
        wf = (
            await client.post("/workflows", json={"name": "k", "graph": "chain", "config": {"steps": 3, "delay_s": 30}})
        ).json()
        sub = (await client.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}})).json()
        pattern = f"{fast_settings.redis_prefix}ckpt:{sub['execution_id']}*"

        async def checkpointed() -> list[Any]:
            return [k async for k in redis.scan_iter(match=pattern)]

        for attempt in (1, 2):
            await wait_row(client, sub["execution_id"], status="running", attempt=attempt)
            await wait_until(checkpointed, 10, "a checkpoint")
            workers.kill_and_restart(0)
        rows = await wait_all_finished(client, [sub["execution_id"]], timeout=30)
        assert rows[0]["status"] == "failed"
        assert rows[0]["error"]["type"] == "WorkerLost" and "2 attempts" in rows[0]["error"]["message"]
        events = await read_events(client, sub["execution_id"])
        assert events[-1]["event"] == "error" and events[-1]["data"]["error"]["type"] == "WorkerLost"
        # Nobody will resume it: its checkpoints are deleted, not left to their TTL.
        assert [k async for k in redis.scan_iter(match=pattern)] == []
    finally:
        workers.stop()


async def test_lost_queue_message_is_queued_again(
    fast_settings: Settings, client: httpx.AsyncClient, redis: Redis, tmp_path: Path
) -> None:
    wf = (await client.post("/workflows", json={"name": "q", "graph": "chain", "config": {"steps": 2}})).json()
    sub = (await client.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}})).json()
    await redis.delete(Keys(fast_settings.redis_prefix).task_queue)  # as if Redis lost it
    workers = Workers(fast_settings, tmp_path, 1)
    try:
        rows = await wait_all_finished(client, [sub["execution_id"]], timeout=30)
        assert rows[0]["status"] == "succeeded" and rows[0]["attempt"] == 1
    finally:
        workers.stop()


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True)
    server.start()
    yield server
    server.stop()


async def test_redis_restart_loses_nothing(
    fast_settings: Settings, restartable_redis: EmbeddedRedis, tmp_path: Path, api_factory: ApiFactory
) -> None:
    s = fast_settings.model_copy(update={"redis_url": restartable_redis.url})
    handle = await api_factory(s)
    workers = Workers(s, tmp_path, 2)
    try:
        async with GraphrunClient(handle.url) as gr:
            wf = await gr.create_workflow("r", "chain", {"steps": 10, "delay_s": 0.3, "emit": 3})
            subs = [await gr.submit(wf["id"], {"n": 0}) for _ in range(5)]

            async def follow(execution_id: str) -> list[Any]:
                return [e async for e in gr.events(execution_id, reconnect_delay=0.2)]

            readers = [asyncio.create_task(follow(x["execution_id"])) for x in subs]
            redis = shared_client(restartable_redis.url)
            try:  # mid-run: the first node of each has ended
                for x in subs:
                    await wait_node_ends(s, redis, x["execution_id"], 1)
            finally:
                await redis.aclose()
            restartable_redis.stop()  # SIGTERM: the append-only file is flushed
            await asyncio.sleep(1.0)
            restartable_redis.start()
            seen = await asyncio.wait_for(asyncio.gather(*readers), 120)
            redis = shared_client(restartable_redis.url)
            try:
                for x, events in zip(subs, seen, strict=True):
                    # A `truncated` notice has no id of its own: httpx-sse repeats the last event's
                    # (the SSE last-event-id), so only events count here.
                    ids = [e.id for e in events if e.id and e.event != "truncated"]
                    twice = [i for i, n in Counter(ids).items() if n > 1]
                    assert not twice, ("an event was seen twice", twice, [(e.id, e.event) for e in events])
                    full = await stream_log(s, redis, x["execution_id"])
                    assert [e.event for e in events if e.event != "truncated"] == [k for k, _ in full]
                    assert events[-1].event == "complete" and events[-1].json()["output"] == {"n": 10}
            finally:
                await redis.aclose()
    finally:
        workers.stop()


async def test_redis_outage_answers_503_and_submit_stays_durable(
    fast_settings: Settings,
    restartable_redis: EmbeddedRedis,
    tmp_path: Path,
    api_factory: ApiFactory,
    client_factory: ClientFactory,
) -> None:
    s = fast_settings.model_copy(update={"redis_url": restartable_redis.url})
    c = client_factory(await api_factory(s))
    wf = (await c.post("/workflows", json={"name": "o", "graph": "chain", "config": {"steps": 2}})).json()
    restartable_redis.stop()
    ready = await c.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"] and ready.json()["redis"] != "ok"
    sub = await c.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}})
    assert sub.status_code == 202  # stored: accepted, queued once Redis is back
    events = await c.get(f"/executions/{sub.json()['execution_id']}/events")
    assert events.status_code == 503 and "Retry-After" in events.headers
    restartable_redis.start()
    workers = Workers(s, tmp_path, 1)
    try:
        rows = await wait_all_finished(c, [sub.json()["execution_id"]], timeout=60)
        assert rows[0]["status"] == "succeeded" and rows[0]["output"] == {"n": 2}
    finally:
        workers.stop()


async def test_graceful_shutdown_hands_over(
    fast_settings: Settings, client: httpx.AsyncClient, redis: Redis, tmp_path: Path
) -> None:
    # The quick run needs its grace to end one 0.2 s node, the long run outlasts it by far.
    grace_s = 2.0
    workers = Workers(fast_settings, tmp_path, 1, GRAPHRUN_SHUTDOWN_GRACE_S=str(grace_s))
    try:
        wf = (
            await client.post(
                "/workflows", json={"name": "g", "graph": "chain", "config": {"steps": 6, "delay_s": 1.0}}
            )
        ).json()
        quick = (
            await client.post(
                "/workflows", json={"name": "q", "graph": "chain", "config": {"steps": 1, "delay_s": 0.2}}
            )
        ).json()
        long_run = (await client.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}})).json()
        short_run = (await client.post(f"/workflows/{quick['id']}/executions", json={"input": {"n": 0}})).json()
        for run in (long_run, short_run):  # both in their first node
            await wait_until(
                lambda run=run: _has(fast_settings, redis, run["execution_id"], "node_start"), 60, "node_start"
            )
        first = workers.procs[0]
        started = asyncio.get_running_loop().time()
        first.terminate()  # SIGTERM
        assert await asyncio.to_thread(first.wait, 30) == 0
        # Within its grace, not the default 30 s (nor until the long run would have ended).
        assert asyncio.get_running_loop().time() - started < grace_s + scaled(3)
        workers.procs.append(workers._start(0))
        rows = await wait_all_finished(client, [long_run["execution_id"], short_run["execution_id"]], timeout=60)
        long_row, short_row = rows
        assert short_row["status"] == "succeeded" and short_row["attempt"] == 1  # finished within the grace
        assert long_row["status"] == "succeeded" and long_row["attempt"] == 2 and long_row["output"] == {"n": 6}
        events = await stream_log(fast_settings, redis, long_run["execution_id"])
        assert Counter(d["node"] for k, d in events if k == "node_end") == {f"step_{i}": 1 for i in range(1, 7)}
        assert "handed over" in (tmp_path / "worker0.log").read_text()
    finally:
        workers.stop()


async def test_recovery_time_with_default_leases(
    settings: Settings, redis: Redis, tmp_path: Path, api_factory: ApiFactory, client_factory: ClientFactory
) -> None:
    """SIGKILL the worker mid-run: with the default lease and sweep settings, the `resumed` event
    of the take-over comes within 10 s (the 5 s lease, and 5 s for the sweep, the restart and the
    claim, which are what a busy machine slows down)."""
    c = client_factory(await api_factory(settings))
    workers = Workers(settings, tmp_path, 1, GRAPHRUN_LEASE_S="5", GRAPHRUN_SWEEP_INTERVAL_S="1")
    try:
        wf = (
            await c.post("/workflows", json={"name": "t", "graph": "chain", "config": {"steps": 3, "delay_s": 1.0}})
        ).json()
        sub = (await c.post(f"/workflows/{wf['id']}/executions", json={"input": {"n": 0}})).json()
        await wait_until(lambda: _has(settings, redis, sub["execution_id"], "node_start"), 60, "node_start")
        killed_at = asyncio.get_running_loop().time()
        workers.kill_and_restart(0)
        await wait_until(lambda: _has(settings, redis, sub["execution_id"], "resumed"), 30, "resumed")
        recovery = asyncio.get_running_loop().time() - killed_at
        print(f"recovery time after SIGKILL with default leases: {recovery:.2f} s")
        assert recovery < 5 + scaled(5)
        rows = await wait_all_finished(c, [sub["execution_id"]], timeout=30)
        assert rows[0]["status"] == "succeeded"
    finally:
        workers.stop()
