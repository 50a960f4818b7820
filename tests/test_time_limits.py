"""Time limits: the submit's ``timeout_s``, else the workflow's own (config ``timeout_s``, which graphrun
keeps for itself), else GRAPHRUN_EXECUTION_TIMEOUT_S; counted from the start of the execution."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from graphrun.settings import Settings
from tests.conftest import InLoopWorker, ServerHandle
from tests.graphs import REGISTRY_TOML
from tests.helpers import chain_workflow, read_events, scaled, submit, wait_status

# Limits of seconds, not tenths: each counts from the start, graph build included, and every
# execution here must reach its first node inside its limit however busy the machine is.
DEFAULT_S = 3.0


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(REGISTRY_TOML, execution_timeout_s=DEFAULT_S)


@pytest.fixture
def client(client: httpx.AsyncClient, worker: InLoopWorker) -> httpx.AsyncClient:
    """The API client, with a worker running."""
    return client


async def test_which_limit_applies(client: httpx.AsyncClient) -> None:
    plain = await chain_workflow(client, steps=2, delay_s=30)
    shorter = await chain_workflow(client, steps=2, delay_s=30, timeout_s=2.0)
    longer = await chain_workflow(client, steps=2, delay_s=30, timeout_s=4.0)
    # The key is stored as given, and neither the chain factory nor its config_model (which forbids
    # unknown keys) ever sees it: these executions start and run their nodes.
    assert shorter["config"] == {"steps": 2, "delay_s": 30, "timeout_s": 2.0}

    async def limit(workflow: dict[str, Any], **body: Any) -> tuple[str, float, list[str]]:
        sub = await submit(client, workflow["id"], **body)
        events = await read_events(client, sub["execution_id"])
        ex = await wait_status(client, sub["execution_id"], "timed_out", "succeeded", "failed", "cancelled")
        return ex["status"], events[-1]["data"].get("timeout_s"), [e["event"] for e in events]

    results = await asyncio.gather(
        limit(plain),  # the process default
        limit(shorter),  # the workflow's own, below the default
        limit(longer),  # the workflow's own, above it
        limit(longer, timeout_s=2.5),  # the submit's beats the workflow's
    )
    assert [(status, limit_s) for status, limit_s, _ in results] == [
        ("timed_out", DEFAULT_S),
        ("timed_out", 2.0),
        ("timed_out", 4.0),
        ("timed_out", 2.5),
    ]
    assert all(kinds == ["start", "node_start", "timeout"] for _, _, kinds in results), results


async def test_the_limit_counts_from_the_start(client: httpx.AsyncClient) -> None:
    """Building the graph counts: a factory that takes 5 s and an instant node, limit 0.5 s: the
    limit ends the execution long before the build does."""
    created = await client.post(
        "/workflows", json={"name": "s", "graph": "slow_to_build", "config": {"build_s": 5, "timeout_s": 0.5}}
    )
    sub = await submit(client, created.json()["id"])
    events = await read_events(client, sub["execution_id"])
    assert [e["event"] for e in events] == ["start", "timeout"]
    assert events[-1]["data"]["ts"] - events[0]["data"]["ts"] < 0.5 + scaled(1.0)


@pytest.mark.parametrize("bad", [0, -1, "10", True, float("inf"), 8 * 24 * 3600, [1]])
async def test_a_bad_workflow_limit_is_422(
    api: ServerHandle, client_factory: Callable[..., httpx.AsyncClient], bad: Any
) -> None:
    json_body = {"content-type": "application/json"}
    config = json.dumps({"timeout_s": bad})  # json.dumps writes inf as Infinity, which the API parses
    client = client_factory(api)
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
