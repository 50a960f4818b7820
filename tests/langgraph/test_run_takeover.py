"""A run on a thread taken over while its database checkpoints lag behind its stream: the next
attempt runs again a step whose output the client already has, and must not publish that output
again. In-loop workers; the lag is made certain by holding one task's writes at the database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph_sdk import get_client

from graphrun.settings import Settings
from tests.conftest import InLoopWorker, ServerHandle
from tests.helpers import scaled
from tests.langgraph.sdk import collect, steps_run_at_step_3

GRAPHS = "tests.langgraph.rungraphs"


@pytest.fixture
def lg_settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    project = tmp_path / "project"
    project.mkdir()
    (project / "langgraph.json").write_text(json.dumps({"graphs": {"steps": f"{GRAPHS}:steps"}}))
    # A stopping worker hands its run over almost at once: mid-node of the step it is in.
    return settings_factory(config=project / "langgraph.json", shutdown_grace_s=0.1)


async def test_a_step_run_again_after_a_take_over_is_not_published_again(
    lg_settings: Settings,
    api_factory: Callable[[Settings], Awaitable[ServerHandle]],
    worker_factory: Callable[[Settings], Awaitable[InLoopWorker]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # step_2's writes do not reach the database while the first worker runs (a slow database):
    # its update is in the log, but the newest durable checkpoint is the one after step_1.
    release = asyncio.Event()
    write = AsyncSqliteSaver.aput_writes

    async def slow_for_step_2(
        self: AsyncSqliteSaver,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if ("items", ["item-2"]) in writes and not release.is_set():
            await release.wait()
            raise ConnectionError("the database went away")  # never lands, as if the worker had died
        await write(self, config, writes, task_id, task_path)

    monkeypatch.setattr(AsyncSqliteSaver, "aput_writes", slow_for_step_2)
    api = await api_factory(lg_settings)
    first = await worker_factory(lg_settings)
    client = get_client(url=api.url, api_key=None)
    try:
        tid, rid = await steps_run_at_step_3(client)
        await first.stop()  # hands the run over mid-node of step_3
        release.set()
        await worker_factory(lg_settings)

        joined = await asyncio.wait_for(client.runs.join(tid, rid), scaled(30))
        assert joined["items"] == [f"item-{i}" for i in range(1, 6)]
        assert (await client.runs.get(tid, rid))["status"] == "success"
        replay = await collect(client.runs.join_stream(tid, rid, last_event_id="-1"))
        updates = [p.data for p in replay if p.event == "updates"]
        assert updates == [{f"step_{i}": {"items": [f"item-{i}"]}} for i in range(1, 6)], updates
        # step_2's start went out once too: its custom event is the run's output, not a re-run's.
        customs = [p.data for p in replay if p.event == "custom"]
        assert customs.count({"started": "step_2"}) == 1, customs
    finally:
        await client.aclose()
