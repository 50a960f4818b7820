"""Time limits: the submit's ``timeout_s``, else the workflow's own (config ``timeout_s``, which graphrun
keeps for itself), else GRAPHRUN_EXECUTION_TIMEOUT_S; counted from the start of the execution."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from graphrun.settings import Settings
from tests.conftest import ServerHandle
from tests.helpers import chain_workflow, read_events, submit, wait_status

DEFAULT_S = 0.7


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"execution_timeout_s": DEFAULT_S})


@pytest.fixture
async def client(api: ServerHandle, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
        yield c


async def test_which_limit_applies(client: httpx.AsyncClient) -> None:
    plain = await chain_workflow(client, steps=2, delay_s=5)
    shorter = await chain_workflow(client, steps=2, delay_s=5, timeout_s=0.4)
    longer = await chain_workflow(client, steps=2, delay_s=5, timeout_s=1.2)
    # The key is stored as given, and neither the chain factory nor its config_model (which forbids
    # unknown keys) ever sees it: these executions start and run their nodes.
    assert shorter["config"] == {"steps": 2, "delay_s": 5, "timeout_s": 0.4}

    async def limit(workflow: dict[str, Any], **body: Any) -> tuple[str, float, list[str]]:
        sub = await submit(client, workflow["id"], **body)
        events = await read_events(client, sub["execution_id"])
        ex = await wait_status(client, sub["execution_id"], "timed_out", "succeeded", "failed", "cancelled")
        return ex["status"], events[-1]["data"].get("timeout_s"), [e["event"] for e in events]

    results = await asyncio.gather(
        limit(plain),  # the process default
        limit(shorter),  # the workflow's own, below the default
        limit(longer),  # the workflow's own, above it
        limit(longer, timeout_s=0.5),  # the submit's beats the workflow's
    )
    assert [(status, limit_s) for status, limit_s, _ in results] == [
        ("timed_out", DEFAULT_S),
        ("timed_out", 0.4),
        ("timed_out", 1.2),
        ("timed_out", 0.5),
    ]
    assert all(kinds == ["start", "node_start", "timeout"] for _, _, kinds in results)


async def test_the_limit_counts_from_the_start(client: httpx.AsyncClient) -> None:
    wf = await chain_workflow(client, steps=2, delay_s=5, timeout_s=0.5)
    sub = await submit(client, wf["id"])
    events = await read_events(client, sub["execution_id"])
    assert events[-1]["event"] == "timeout"
    elapsed = events[-1]["data"]["ts"] - events[0]["data"]["ts"]
    assert 0.45 <= elapsed < 0.5 + 1.0, elapsed


@pytest.mark.parametrize("bad", [0, -1, "10", True, float("inf"), 8 * 24 * 3600, [1]])
async def test_a_bad_workflow_limit_is_422(api: ServerHandle, bad: Any) -> None:
    json_body = {"content-type": "application/json"}
    config = json.dumps({"timeout_s": bad})  # json.dumps writes inf as Infinity, which the API parses
    async with httpx.AsyncClient(base_url=api.url) as client:
        body = f'{{"name": "c", "graph": "chain", "config": {config}}}'
        r = await client.post("/workflows", content=body, headers=json_body)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "config", "timeout_s"]
        ok = await client.post("/workflows", json={"name": "c", "graph": "chain", "config": {"timeout_s": 60}})
        assert ok.status_code == 201
        r = await client.put(f"/workflows/{ok.json()['id']}", content=f'{{"config": {config}}}', headers=json_body)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "config", "timeout_s"]
        assert (await client.get(f"/workflows/{ok.json()['id']}")).json()["version"] == 1
