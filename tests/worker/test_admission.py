"""A worker process takes executions while its event loop keeps up: waiting runs fill it up to
GRAPHRUN_WORKER_CONCURRENCY, and while the loop lags (CPU-bound work) it takes no more than the
floor and leaves the rest on the queue (worker/admission.py, docs/decisions/0019)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from graphrun.errors import ConfigError
from graphrun.settings import Settings, load_settings
from graphrun.worker.admission import FLOOR, Admission
from tests.conftest import InLoopWorker
from tests.helpers import scaled, submit, wait_status, wait_until
from tests.worker.admission_graphs import REGISTRY_TOML, release

WorkerFactory = Callable[[Settings], Awaitable[InLoopWorker]]


@contextlib.asynccontextmanager
async def loop_hogged(block_s: float = 0.2, free_s: float = 0.02) -> AsyncIterator[None]:
    """This event loop blocked for ``block_s`` at a time, free for ``free_s`` between blocks: what
    CPU-bound nodes do to a worker's loop. Each 50 ms timer of the gate is set in a free moment and
    so fires at the end of the next block, late by at least ``block_s`` − 50 ms."""
    stop = asyncio.Event()

    async def hog() -> None:
        while not stop.is_set():
            time.sleep(block_s)  # blocks the loop, on purpose
            await asyncio.sleep(free_s)

    task = asyncio.get_running_loop().create_task(hog())
    try:
        yield
    finally:
        stop.set()
        await task


@contextlib.asynccontextmanager
async def watching(admission: Admission) -> AsyncIterator[Admission]:
    task = asyncio.get_running_loop().create_task(admission.watch())
    try:
        yield admission
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def take(admission: Admission, n: int) -> None:
    for _ in range(n):
        await asyncio.wait_for(admission.acquire(), scaled(10))


# --- the gate alone, on this test's loop ------------------------------------------------------


async def test_without_a_lag_limit_it_is_the_fixed_limit() -> None:
    async with watching(Admission(3, 0.0)) as admission, loop_hogged():
        await take(admission, 3)  # a lagging loop does not matter
        fourth = asyncio.ensure_future(admission.acquire())
        await asyncio.sleep(0.5)
        assert not fourth.done() and admission.held == 3
        admission.release()
        await asyncio.wait_for(fourth, scaled(5))
        assert admission.held == 3 and admission.deferred == 0


async def test_an_idle_loop_is_filled_up_to_the_limit() -> None:
    async with watching(Admission(40, 0.05)) as admission:
        await take(admission, 40)
        extra = asyncio.ensure_future(admission.acquire())
        await asyncio.sleep(0.3)
        assert not extra.done() and admission.held == 40
        admission.release()
        await asyncio.wait_for(extra, scaled(5))


async def test_while_the_loop_lags_only_the_floor_is_taken() -> None:
    deferred_before = REGISTRY.get_sample_value("graphrun_worker_admission_deferred_total") or 0.0
    async with watching(Admission(40, 0.05)) as admission:
        async with loop_hogged():
            await take(admission, FLOOR)  # the floor never waits for the loop
            await wait_until(admission.lagging, 5, "the gate to see the lag")
            more = asyncio.ensure_future(admission.acquire())
            await asyncio.sleep(1.5)  # about seven blocks of 200 ms, each one over the 50 ms limit
            assert not more.done() and admission.held == FLOOR
            assert admission.lagging() and admission.deferred == 1
        await asyncio.wait_for(more, scaled(5))  # the loop answers again
    assert admission.held == FLOOR + 1
    assert (REGISTRY.get_sample_value("graphrun_worker_admission_deferred_total") or 0.0) == deferred_before + 1


async def test_a_cancelled_acquire_holds_nothing() -> None:
    admission = Admission(1, 0.0)
    await admission.acquire()
    waiting = asyncio.ensure_future(admission.acquire())
    await asyncio.sleep(0.05)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    assert admission.held == 1
    admission.release()
    await asyncio.wait_for(admission.acquire(), 1)
    assert admission.held == 1


# --- the settings ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["5", "-1", "fifty", "20000"])
def test_a_bad_lag_limit_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env or graphrun.toml
    monkeypatch.setenv("GRAPHRUN_WORKER_ADMIT_LAG_MS", value)
    with pytest.raises(ConfigError, match="GRAPHRUN_WORKER_ADMIT_LAG_MS"):
        load_settings()


@pytest.mark.parametrize(("value", "expected"), [(None, 50), ("0", 0), ("10", 10), ("250", 250)])
def test_lag_limits_that_are_taken(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None, expected: int
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRAPHRUN_WORKER_CONCURRENCY", raising=False)
    if value is None:
        monkeypatch.delenv("GRAPHRUN_WORKER_ADMIT_LAG_MS", raising=False)
    else:
        monkeypatch.setenv("GRAPHRUN_WORKER_ADMIT_LAG_MS", value)
    settings = load_settings()
    assert settings.worker_admit_lag_ms == expected and settings.worker_concurrency == 100


# --- a worker on real Redis ------------------------------------------------------------------


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(REGISTRY_TOML)


async def waiters(client: httpx.AsyncClient, n: int) -> tuple[str, int, list[str]]:
    """``n`` executions of a graph whose node waits for ``release(key)``: (key, workflow id, ids)."""
    key = uuid.uuid4().hex
    created = await client.post("/workflows", json={"name": "w", "graph": "waiter", "config": {"key": key}})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    return key, workflow_id, [(await submit(client, workflow_id))["execution_id"] for _ in range(n)]


async def statuses(client: httpx.AsyncClient, workflow_id: int) -> Counter[str]:
    page = (await client.get("/executions", params={"workflow_id": workflow_id, "limit": 200})).json()
    return Counter(item["status"] for item in page["items"])


async def test_a_worker_holds_many_waiting_runs_at_once(
    client: httpx.AsyncClient, settings: Settings, worker_factory: WorkerFactory
) -> None:
    """Runs that only wait do not make the loop lag: under a ceiling raised to 500 (as for agents
    that mostly wait on a slow model), all 120 are taken at once, far beyond the floor and beyond
    the default ceiling of 100, with the default lag limit."""
    assert settings.worker_admit_lag_ms == 50  # the default
    await worker_factory(settings.model_copy(update={"worker_concurrency": 500}))
    key, workflow_id, ids = await waiters(client, 120)

    async def all_running() -> bool:
        return (await statuses(client, workflow_id))["running"] == 120

    try:
        await wait_until(all_running, 30, lambda: "120 executions running at once")
    finally:
        release(key)
    for execution_id in ids:
        await wait_status(client, execution_id, "succeeded", timeout=30)


@pytest.mark.parametrize("admit_lag_ms", [50, 0])
async def test_a_lagging_worker_leaves_executions_on_the_queue(
    client: httpx.AsyncClient, settings: Settings, worker_factory: WorkerFactory, admit_lag_ms: int
) -> None:
    """Ten waiting executions queued, then the worker's loop made to lag (the worker runs on this
    test's loop): it takes the floor's four and leaves six on the queue until the loop answers again.
    Without a lag limit (0) it takes all ten regardless, as a fixed limit does."""
    key, workflow_id, ids = await waiters(client, 10)
    settings = settings.model_copy(update={"worker_admit_lag_ms": admit_lag_ms, "worker_concurrency": 100})
    taken = FLOOR if admit_lag_ms else 10

    async def taken_so_far() -> bool:
        return (await statuses(client, workflow_id))["running"] >= taken

    async def all_running() -> bool:
        return (await statuses(client, workflow_id))["running"] == 10

    try:
        async with loop_hogged():
            await worker_factory(settings)
            await wait_until(taken_so_far, 30, lambda: f"{taken} executions running")
            await asyncio.sleep(1.5)  # more blocks of the loop; nothing more may be taken meanwhile
            assert await statuses(client, workflow_id) == Counter(running=taken, queued=10 - taken)
        await wait_until(all_running, 10, lambda: "all 10 executions running once the loop answers")
    finally:
        release(key)
    for execution_id in ids:
        await wait_status(client, execution_id, "succeeded", timeout=30)
