"""Interrupts through the native API: an execution that stops at ``interrupt()`` ends ``interrupted``
with a terminal ``interrupt`` event; ``POST /executions/{id}/resume`` continues it, once, as a new
execution on its checkpoints; cancelling it ends it for good."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypedDict

import httpx
import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from graphrun.settings import Settings
from tests.conftest import InLoopWorker
from tests.helpers import read_events, submit, wait_status

REGISTRY = """[graphs]
two_questions = "tests.test_interrupts:build_two_questions"
"""


class Answers(TypedDict, total=False):
    name: str
    colour: str
    summary: str


def build_two_questions(config: dict[str, Any] | None = None) -> StateGraph:  # type: ignore[type-arg]
    """Asks two questions in a row (two interrupts), then sums the answers up."""

    def ask_name(state: Answers) -> Answers:
        return {"name": interrupt({"question": "Your name?"})}

    def ask_colour(state: Answers) -> Answers:
        return {"colour": interrupt({"question": f"{state['name']}, your colour?"})}

    def sum_up(state: Answers) -> Answers:
        return {"summary": f"{state['name']} likes {state['colour']}"}

    graph = StateGraph(Answers)
    graph.add_node("ask_name", ask_name)
    graph.add_node("ask_colour", ask_colour)
    graph.add_node("sum_up", sum_up)
    graph.add_edge(START, "ask_name")
    graph.add_edge("ask_name", "ask_colour")
    graph.add_edge("ask_colour", "sum_up")
    graph.add_edge("sum_up", END)
    return graph


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(REGISTRY)


@pytest.fixture
def client(client: httpx.AsyncClient, worker: InLoopWorker) -> httpx.AsyncClient:
    """The API client, with a worker running."""
    return client


async def _workflow(client: httpx.AsyncClient, graph: str) -> dict[str, Any]:
    response = await client.post("/workflows", json={"name": graph, "graph": graph, "config": {}})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _interrupted(client: httpx.AsyncClient, graph: str = "approval", **input: Any) -> dict[str, Any]:
    wf = await _workflow(client, graph)
    sub = await submit(client, wf["id"], input=input or {"request": "deploy v2"})
    return await wait_status(client, sub["execution_id"], "interrupted", "failed", "succeeded")


async def test_interrupt_ends_interrupted_with_its_terminal_event(client: httpx.AsyncClient) -> None:
    row = await _interrupted(client)
    assert row["status"] == "interrupted", row
    assert row["finished_at"] is not None
    events = await read_events(client, row["id"])
    assert [e["event"] for e in events] == ["start", "node_start", "interrupt"]
    (pending,) = events[-1]["data"]["interrupts"]
    assert pending["value"]["question"] == "Approve 'deploy v2'?"
    assert isinstance(pending["id"], str) and pending["id"]
    assert row["output"] == {"interrupts": events[-1]["data"]["interrupts"]}


async def test_resume_continues_with_the_answer(client: httpx.AsyncClient) -> None:
    row = await _interrupted(client)
    response = await client.post(f"/executions/{row['id']}/resume", json={"resume": "approve"})
    assert response.status_code == 202, response.text
    resumed = response.json()
    assert resumed["status"] == "queued"
    assert resumed["execution_id"] != row["id"]
    assert (resumed["workflow_id"], resumed["workflow_version"]) == (row["workflow_id"], row["workflow_version"])
    assert resumed["events_url"].endswith(f"/executions/{resumed['execution_id']}/events")
    done = await wait_status(client, resumed["execution_id"], "succeeded", "failed")
    assert done["status"] == "succeeded", done
    assert done["output"]["approved"] is True
    assert done["output"]["messages"][-1]["content"] == "Approved: deploy v2. Done."
    events = await read_events(client, resumed["execution_id"])
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "complete"
    assert [e["data"]["node"] for e in events if e["event"] == "node_end"] == ["ask", "act"]
    # The first one stays interrupted, resumed: a second resume is refused and stores nothing.
    again = await client.post(f"/executions/{row['id']}/resume", json={"resume": "reject"})
    assert again.status_code == 409, again.text
    assert resumed["execution_id"] in again.json()["detail"]
    page = (await client.get("/executions", params={"workflow_id": row["workflow_id"]})).json()
    assert len(page["items"]) == 2


async def test_resume_of_what_is_not_interrupted_is_refused(client: httpx.AsyncClient) -> None:
    wf = await _workflow(client, "chain")
    sub = await submit(client, wf["id"])
    await wait_status(client, sub["execution_id"], "succeeded")
    response = await client.post(f"/executions/{sub['execution_id']}/resume", json={"resume": 1})
    assert response.status_code == 409, response.text
    assert response.json()["status"] == "succeeded"
    missing = await client.post("/executions/nope/resume", json={"resume": 1})
    assert missing.status_code == 404
    unknown = await client.post("/executions/0123456789abcdef0123456789abcdef/resume", json={"resume": 1})
    assert unknown.status_code == 404
    row = await _interrupted(client)
    for body in ({}, {"resume": None}):
        assert (await client.post(f"/executions/{row['id']}/resume", json=body)).status_code == 422
    assert len((await client.get("/executions")).json()["items"]) == 2


async def test_concurrent_resumes_exactly_one_wins(client: httpx.AsyncClient) -> None:
    row = await _interrupted(client)
    answers = await asyncio.gather(
        *(client.post(f"/executions/{row['id']}/resume", json={"resume": "approve"}) for _ in range(8))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] + [409] * 7, [a.text for a in answers]
    (won,) = [a.json() for a in answers if a.status_code == 202]
    assert (await wait_status(client, won["execution_id"], "succeeded", "failed"))["status"] == "succeeded"
    page = (await client.get("/executions", params={"workflow_id": row["workflow_id"]})).json()
    assert len(page["items"]) == 2


async def test_cancel_of_an_interrupted_execution(client: httpx.AsyncClient) -> None:
    row = await _interrupted(client)
    response = await client.post(f"/executions/{row['id']}/cancel")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "cancelled"
    assert (await client.post(f"/executions/{row['id']}/cancel")).status_code == 202  # idempotent
    refused = await client.post(f"/executions/{row['id']}/resume", json={"resume": "approve"})
    assert refused.status_code == 409
    assert refused.json()["status"] == "cancelled"


async def test_cancel_after_resume_is_refused(client: httpx.AsyncClient) -> None:
    row = await _interrupted(client)
    resumed = (await client.post(f"/executions/{row['id']}/resume", json={"resume": "no"})).json()
    response = await client.post(f"/executions/{row['id']}/cancel")
    assert response.status_code == 409, response.text
    done = await wait_status(client, resumed["execution_id"], "succeeded", "failed")
    assert done["output"]["approved"] is False


async def test_a_chain_of_two_interrupts_resumed_twice(client: httpx.AsyncClient) -> None:
    first = await _interrupted(client, "two_questions", topic="x")
    assert first["status"] == "interrupted", first
    assert first["output"]["interrupts"][0]["value"] == {"question": "Your name?"}
    response = await client.post(f"/executions/{first['id']}/resume", json={"resume": "Ada"})
    assert response.status_code == 202, response.text
    second = await wait_status(client, response.json()["execution_id"], "interrupted", "failed", "succeeded")
    assert second["status"] == "interrupted", second
    assert second["output"]["interrupts"][0]["value"] == {"question": "Ada, your colour?"}
    events = await read_events(client, second["id"])
    assert [e["data"]["node"] for e in events if e["event"] == "node_end"] == ["ask_name"]
    assert events[-1]["event"] == "interrupt"
    response = await client.post(f"/executions/{second['id']}/resume", json={"resume": "green"})
    assert response.status_code == 202, response.text
    third = await wait_status(client, response.json()["execution_id"], "failed", "succeeded")
    assert third["status"] == "succeeded", third
    assert third["output"] == {"name": "Ada", "colour": "green", "summary": "Ada likes green"}
    # Each link was resumed once.
    assert (await client.post(f"/executions/{first['id']}/resume", json={"resume": "Bob"})).status_code == 409


def test_the_stored_terminal_event_of_an_interrupted_execution() -> None:
    """After the log expired, the stream rebuilds the same `interrupt` event from the stored row."""
    from datetime import UTC, datetime

    from graphrun.events.model import EventKind
    from graphrun.events.terminal import stored_terminal_event, terminal_event
    from graphrun.store.base import Execution, ExecutionStatus

    pending = [{"id": "i1", "value": {"question": "ok?"}}]
    now = datetime.now(UTC)
    row = Execution("e1", 1, 1, ExecutionStatus.INTERRUPTED, {}, {"interrupts": pending}, None, 1, None, now, now, now)
    rebuilt = stored_terminal_event(row, default_timeout_s=60)
    assert rebuilt is not None and rebuilt.kind is EventKind.INTERRUPT
    assert rebuilt.data == {"interrupts": pending}
    live = terminal_event("e1", ExecutionStatus.INTERRUPTED, interrupts=pending)
    assert live.data == rebuilt.data and live.terminal
