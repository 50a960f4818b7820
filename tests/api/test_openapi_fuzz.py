"""schemathesis, an outside fuzzer, against the real API's own /openapi.json: every operation gets
schema-valid and schema-invalid requests, and every answer must be declared in the document, with
its content type and body schema, and none may be a 5xx. Afterwards the server is still healthy and
still runs executions.

Generation is derandomized (the same requests every run), so the test cannot be flaky by chance;
GRAPHRUN_FUZZ_EXAMPLES raises the number of examples per operation for a deeper run (``make fuzz``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from graphrun.settings import Settings
from tests.conftest import InLoopWorker, ServerHandle
from tests.helpers import chain_workflow, read_events, submit

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = int(os.environ.get("GRAPHRUN_FUZZ_EXAMPLES", "20"))
# Every answer the API gives a fuzzed request is immediate. The events stream is the one that could
# last (until its execution ends), but no fuzzed request names a real execution: generated ids are
# random, so the route answers 400, 404 or 422 before any stream starts. The timeout turns a stream
# that opened anyway into a failure, not a hang.
REQUEST_TIMEOUT_S = 10.0


def _fuzz(schema: Any, base_url: str) -> tuple[list[str], int]:
    """Run every operation in both modes; returns the failures and the number of runs. Blocking:
    call it in a thread, so that the API, which serves in the test's event loop, can answer."""
    failures: list[str] = []
    runs = 0
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @given(case=operation.as_strategy(generation_mode=mode))
                @hypothesis_settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink],
                    suppress_health_check=list(HealthCheck),
                )
                def run(case: Any) -> None:
                    case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=REQUEST_TIMEOUT_S)

                runs += 1
                try:
                    run()
                except Unsatisfiable:
                    # An operation without parameters or body (GET /healthz) has nothing to make invalid.
                    if mode is GenerationMode.POSITIVE:
                        raise
                except Exception as exc:  # each failure is reported, all at the end
                    failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures, runs


async def _cancel_unfinished(client: httpx.AsyncClient) -> None:
    """Fuzzed submits leave queued executions of fuzzed workflows (a chain of 10,000 steps, say):
    cancelled here, so that the worker started afterwards runs only the health check's chain."""
    for status in ("queued", "running"):
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"status": status, "limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/executions", params=params)).json()
            for execution in page["items"]:
                response = await client.post(f"/executions/{execution['id']}/cancel")
                assert response.status_code in (202, 409), response.text
            cursor = page["next_cursor"]
            if not cursor:
                break


async def test_fuzzed_requests_get_declared_answers_and_leave_the_server_healthy(
    api: ServerHandle,
    client: httpx.AsyncClient,
    settings: Settings,
    worker_factory: Callable[[Settings], Awaitable[InLoopWorker]],
) -> None:
    schema = await asyncio.to_thread(schemathesis.openapi.from_url, f"{api.url}/openapi.json", timeout=30)
    operations = {result.ok().label for result in schema.get_all_operations()}
    assert len(operations) >= 14, operations  # every route of API.md §2 is in the document

    failures, runs = await asyncio.to_thread(_fuzz, schema, api.url)
    assert runs == 2 * len(operations)
    assert not failures, f"{len(failures)} of {runs} fuzz runs failed:\n\n" + "\n\n".join(failures)

    # Healthy afterwards: it answers, its backends answer, and an execution still runs to its end.
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    await _cancel_unfinished(client)
    # No worker ran during the fuzz: a fuzzed workflow may be as heavy as its config allows.
    await worker_factory(settings)
    workflow = await chain_workflow(client, steps=3)
    submitted = await submit(client, workflow["id"])
    events = await read_events(client, submitted["execution_id"])
    assert events[-1]["event"] == "complete" and events[-1]["data"]["output"] == {"n": 3}, events
    execution = (await client.get(f"/executions/{submitted['execution_id']}")).json()
    assert execution["status"] == "succeeded"


@pytest.mark.parametrize("workflow_id", ["0", "-1", str(2**63), str(2**64 + 7), "-" + str(2**70)])
async def test_a_workflow_id_that_cannot_exist_is_404_everywhere(client: httpx.AsyncClient, workflow_id: str) -> None:
    # 404 like any unknown id (openapi.py says why not 422); beyond 64 bits SQLite raised OverflowError.
    url = f"/workflows/{workflow_id}"
    for response in (
        await client.get(url),
        await client.put(url, json={"name": "x"}),
        await client.delete(url),
        await client.post(f"{url}/executions", json={"input": {}}),
    ):
        assert response.status_code == 404, response.text
        assert response.json() == {"detail": f"workflow {workflow_id} not found"}
    page = await client.get("/executions", params={"workflow_id": workflow_id})
    assert page.status_code == 200 and page.json() == {"items": [], "next_cursor": None}
    assert (await client.get("/workflows/abc")).status_code == 422  # not an integer at all: validation


async def test_an_execution_id_of_the_wrong_form_is_404_before_any_lookup(client: httpx.AsyncClient) -> None:
    for bad in ("x" * 65, "a.b", "%C3%A9"):
        for response in (
            await client.get(f"/executions/{bad}"),
            await client.post(f"/executions/{bad}/cancel"),
            await client.get(f"/executions/{bad}/events"),
        ):
            assert response.status_code == 404, response.text
            assert "not found" in response.json()["detail"]


async def test_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    for method, path, allowed in [
        ("PATCH", "/workflows", "GET, POST"),
        ("PATCH", "/workflows/1", "DELETE, GET, PUT"),
        ("GET", "/workflows/1/executions", "POST"),
        ("DELETE", "/executions/abc/cancel", "POST"),
        ("POST", "/healthz", "GET"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allowed, (method, path)
        assert response.json() == {"detail": "Method Not Allowed"}


async def test_the_document_declares_401_only_when_keys_are_on(
    api: ServerHandle,
    client_factory: Callable[..., httpx.AsyncClient],
    api_factory: Callable[[Settings], Awaitable[ServerHandle]],
    settings: Settings,
) -> None:
    def unauthorized(doc: dict[str, Any]) -> set[str]:
        return {
            f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m, op in ops.items() if "401" in op["responses"]
        }

    open_doc = (await client_factory(api).get("/openapi.json")).json()
    assert unauthorized(open_doc) == set() and "securitySchemes" not in open_doc["components"]
    keyed = await api_factory(settings.model_copy(update={"api_keys": ("k1",)}))
    doc = (await client_factory(keyed).get("/openapi.json")).json()
    operations = {f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops}
    assert unauthorized(doc) == operations - {"GET /healthz"}
    assert doc["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
