"""The HTTP contract of API.md §2, including every kind of bad input. A rejected request stores
nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from graphrun.settings import Settings
from tests.helpers import chain_workflow, submit


async def counts(client: httpx.AsyncClient) -> tuple[int, int]:
    wfs = (await client.get("/workflows", params={"limit": 200})).json()["items"]
    exs = (await client.get("/executions", params={"limit": 200})).json()["items"]
    return len(wfs), len(exs)


async def test_health_ready_metrics_graphs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and "text/plain" in metrics.headers["content-type"]
    graphs = (await client.get("/graphs")).json()
    names = {g["name"] for g in graphs}
    assert {"chain", "kb_agent", "kb_search"} <= names
    assert all(isinstance(g["description"], str) and g["description"] for g in graphs)


async def test_workflow_crud_and_versions(client: httpx.AsyncClient) -> None:
    wf = await chain_workflow(client, steps=2)
    assert wf["version"] == 1 and wf["config"] == {"steps": 2} and wf["created_at"].endswith("Z")
    got = (await client.get(f"/workflows/{wf['id']}")).json()
    assert got == wf
    put = await client.put(f"/workflows/{wf['id']}", json={"config": {"steps": 3}})
    assert put.status_code == 200 and put.json()["version"] == 2 and put.json()["name"] == "c"
    put = await client.put(f"/workflows/{wf['id']}", json={"name": "renamed"})
    assert put.json()["version"] == 3 and put.json()["config"] == {"steps": 3}
    assert (await client.delete(f"/workflows/{wf['id']}")).status_code == 204
    assert (await client.get(f"/workflows/{wf['id']}")).status_code == 404
    assert (await client.delete(f"/workflows/{wf['id']}")).status_code == 404


async def test_lists_page_with_cursor(client: httpx.AsyncClient) -> None:
    made = [(await chain_workflow(client))["id"] for _ in range(5)]
    page = (await client.get("/workflows", params={"limit": 2})).json()
    ids = [w["id"] for w in page["items"]]
    while page["next_cursor"]:
        page = (await client.get("/workflows", params={"limit": 2, "cursor": page["next_cursor"]})).json()
        ids += [w["id"] for w in page["items"]]
    # After the registered graphs' default assistants, which are workflows too.
    assert ids[-len(made) :] == made and len(set(ids)) == len(ids)
    for bad in ({"limit": 0}, {"limit": 201}, {"limit": "x"}):
        assert (await client.get("/workflows", params=bad)).status_code == 422
    assert (await client.get("/workflows", params={"cursor": "!!"})).status_code == 400
    assert (await client.get("/executions", params={"status": "sleeping"})).status_code == 422


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b"", 422, ""),
        (b'{"graph": "chain"}', 422, "name"),
        (b'{"name": "x"}', 422, "graph"),
        (b'{"name": 5, "graph": "chain"}', 422, "name"),
        (b'{"name": "x", "graph": "chain", "config": [1]}', 422, "config"),
        (b'{"name": "x", "graph": "nope"}', 422, "chain"),  # names the registered graphs
        (b'{"name": "x", "graph": "chain", "config": {"steps": "many"}}', 422, "steps"),
        (b'{"name": "x", "graph": "chain", "config": {"stepz": 2}}', 422, "stepz"),
        (b'{"name": "", "graph": "chain"}', 422, "name"),
    ],
)
async def test_bad_workflow_bodies_store_nothing(
    client: httpx.AsyncClient, body: bytes, status: int, fragment: str
) -> None:
    before = await counts(client)
    response = await client.post("/workflows", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert fragment in response.text
    assert "detail" in response.json()
    assert await counts(client) == before


async def test_unknown_graph_lists_registered_ones(client: httpx.AsyncClient) -> None:
    response = await client.post("/workflows", json={"name": "x", "graph": "nope"})
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "graph"] and "chain" in detail["registered"]


async def test_bad_updates(client: httpx.AsyncClient) -> None:
    wf = await chain_workflow(client)
    for body, status in [({}, 422), ({"graph": "nope"}, 422), ({"config": {"steps": 0}}, 422), ({"name": 3}, 422)]:
        assert (await client.put(f"/workflows/{wf['id']}", json=body)).status_code == status
    assert (await client.get(f"/workflows/{wf['id']}")).json()["version"] == 1
    assert (await client.put("/workflows/424242", json={"name": "x"})).status_code == 404
    assert (await client.get("/workflows/abc")).status_code == 422


async def test_bad_submissions_store_nothing(client: httpx.AsyncClient) -> None:
    wf = await chain_workflow(client)
    before = await counts(client)
    url = f"/workflows/{wf['id']}/executions"
    for body in [{}, {"input": 3}, {"input": {}, "timeout_s": -1}, {"input": {}, "timeout_s": "soon"}]:
        assert (await client.post(url, json=body)).status_code == 422
    assert (await client.post(url, content=b"{", headers={"content-type": "application/json"})).status_code == 400
    assert (await client.post("/workflows/999999/executions", json={"input": {}})).status_code == 404
    assert await counts(client) == before


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, settings: Settings) -> None:
    wf = await chain_workflow(client)
    before = await counts(client)
    big = {"input": {"blob": "x" * (settings.max_input_bytes + 10)}}
    response = await client.post(f"/workflows/{wf['id']}/executions", json=big)
    assert response.status_code == 413 and "larger than" in response.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked upload
        yield b'{"input": {"blob": "'
        for _ in range(settings.max_input_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"}}'

    response = await client.post(
        f"/workflows/{wf['id']}/executions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert await counts(client) == before


async def test_unknown_execution(client: httpx.AsyncClient) -> None:
    assert (await client.get("/executions/nope")).status_code == 404
    assert (await client.post("/executions/nope/cancel")).status_code == 404
    assert (await client.get("/executions/nope/events")).status_code == 404


async def test_submit_answers_at_once_and_cancel_a_queued_execution(client: httpx.AsyncClient) -> None:
    # No worker runs in this test: the execution stays queued until cancelled.
    wf = await chain_workflow(client, steps=2)
    sub = await submit(client, wf["id"])
    assert sub["status"] == "queued" and sub["workflow_version"] == 1
    assert sub["events_url"].endswith(f"/executions/{sub['execution_id']}/events")
    ex = (await client.get(f"/executions/{sub['execution_id']}")).json()
    assert ex["status"] == "queued" and ex["input"] == {"n": 0} and ex["attempt"] == 0 and ex["started_at"] is None
    cancelled = await client.post(f"/executions/{sub['execution_id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    again = await client.post(f"/executions/{sub['execution_id']}/cancel")
    assert again.status_code == 202 and again.json()["status"] == "cancelled"
    from tests.helpers import read_events

    events = await read_events(client, sub["execution_id"])
    assert [e["event"] for e in events] == ["cancelled"]


async def test_malformed_last_event_id_is_400(client: httpx.AsyncClient) -> None:
    wf = await chain_workflow(client)
    sub = await submit(client, wf["id"])
    r = await client.get(f"/executions/{sub['execution_id']}/events", headers={"Last-Event-ID": "yesterday"})
    assert r.status_code == 400 and "malformed event id" in r.json()["detail"]
    r = await client.get(f"/executions/{sub['execution_id']}/events", params={"last_event_id": "1-x"})
    assert r.status_code == 400


async def test_body_without_json_content_type_is_a_clear_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/workflows", content=b'{"name": "x", "graph": "chain"}')
    assert response.status_code in (400, 415, 422), response.text
    assert "detail" in response.json()
