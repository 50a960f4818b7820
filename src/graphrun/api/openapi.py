"""What the OpenAPI document says about answers and ids, said once for every route.

Each route declares the kinds of answer it can give through the tables below (``answers``), so
the document lists every status code the server really sends, with its body (``ErrorOut`` for
``{"detail": ...}``, FastAPI's own schema for 422). Ids are checked here, at the edge, before they
reach the database or Redis. ``install`` adds to the document what only the running app knows:
the registered graphs and their config models, and whether API keys are on.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from graphrun.api.schemas import ConflictOut, ErrorOut, Readiness
from graphrun.errors import NotFoundError
from graphrun.registry import MAX_TIMEOUT_S, GraphRegistry

RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "string"}}}

_ANSWERS: dict[int, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "malformed request: JSON body, cursor or event id"},
    404: {"model": ErrorOut, "description": "unknown id"},
    409: {"model": ConflictOut, "description": "conflicting state; `status` is the execution's"},
    413: {"model": ErrorOut, "description": "request body larger than GRAPHRUN_MAX_INPUT_BYTES"},
    503: {"model": ErrorOut, "description": "Redis or the database is unreachable", "headers": RETRY_AFTER},
}


def answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can answer with these codes (besides success and 422)."""
    return {code: _ANSWERS[code] for code in codes}


# Per kind of route. 413 goes with every POST and PUT: the body limit (limits.py) reads the body of
# any of them before routing, whether the route takes one or not.
READ = answers(404, 503)
LIST = answers(400, 503)
CREATE = answers(400, 413, 503)
WRITE = answers(400, 404, 413, 503)
DELETE = answers(404, 503)
CANCEL = answers(404, 409, 413, 503)
RESUME = answers(400, 404, 409, 413, 503)
READY: dict[int | str, dict[str, Any]] = {
    503: {"model": Readiness, "description": "Redis or the database does not answer", "headers": RETRY_AFTER}
}
STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the execution's events as Server-Sent Events (API.md §3), until its terminal event",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **answers(400, 404, 503),
}
UNAUTHORIZED = {
    "model": ErrorOut,
    "description": "missing or wrong API key (only when GRAPHRUN_API_KEYS is set)",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
}

# Ids. A workflow id is a positive 64-bit integer (the store's key); an execution id is URL-safe
# base64 (``secrets.token_urlsafe``). An id outside that form cannot name anything stored, so it is
# answered like any unknown id, 404 (API.md §2), without asking the database: SQLite cannot even
# bind an integer beyond 64 bits. 404 rather than 422 because that is what such ids got before
# (workflow 0, execution "nope"), and a client asking for a thing by id learns the same either way:
# there is no such thing. A value of the wrong type ("abc" for a workflow id) stays a 422.
MAX_WORKFLOW_ID = 2**63 - 1
_ID_BOUNDS = {"minimum": 1, "maximum": MAX_WORKFLOW_ID, "format": "int64"}
_EXECUTION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EXECUTION_ID_FORM = {"pattern": f"^{_EXECUTION_ID.pattern}$", "minLength": 1, "maxLength": 64}


def workflow_id_in_range(workflow_id: int) -> bool:
    return 1 <= workflow_id <= MAX_WORKFLOW_ID


async def _workflow_id(
    workflow_id: Annotated[int, Path(description="the workflow's id", json_schema_extra=_ID_BOUNDS)],
) -> int:
    if not workflow_id_in_range(workflow_id):
        raise NotFoundError(f"workflow {workflow_id} not found")
    return workflow_id


def check_execution_id(execution_id: str) -> str:
    if not _EXECUTION_ID.fullmatch(execution_id):
        shown = execution_id if len(execution_id) <= 80 else execution_id[:80] + "…"
        raise NotFoundError(f"execution {shown!r} not found")
    return execution_id


async def _execution_id(execution_id: ExecutionIdPath) -> str:
    return check_execution_id(execution_id)


WorkflowId = Annotated[int, Depends(_workflow_id)]
"""A workflow id path parameter, checked before the route runs."""

WorkflowIdFilter = Annotated[int | None, Query(description="only this workflow's", json_schema_extra=_ID_BOUNDS)]

ExecutionIdPath = Annotated[str, Path(description="the execution's id", json_schema_extra=_EXECUTION_ID_FORM)]
"""The bare path parameter, for a route that must check something else first (events.py: the key)."""

ExecutionId = Annotated[str, Depends(_execution_id)]
"""An execution id path parameter, checked before the route runs."""


# The document as the running app sees it.


def _config_schema(model: type[BaseModel] | None, components: dict[str, Any]) -> dict[str, Any]:
    """A graph's config as its factory's ``config_model`` checks it, plus graphrun's own keys."""
    reserved = {
        "timeout_s": {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT_S}, {"type": "null"}]}
    }
    if model is None:
        return {"type": "object", "properties": reserved}
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    schema.setdefault("properties", {}).update(reserved)
    return schema


def _graph_variants(registry: GraphRegistry, components: dict[str, Any]) -> list[dict[str, Any]]:
    """One body variant per registered graph: its name, and the config its factory accepts."""
    variants = []
    for name in registry.names:
        try:
            model = getattr(registry.factory(name), "config_model", None)
        except Exception:  # noqa: BLE001 - an unloadable factory fails its executions, not the document
            model = None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            model = None
        variants.append(
            {"properties": {"graph": {"const": name}, "config": _config_schema(model, components)}},
        )
    return variants


def _document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
    state = getattr(app.state, "graphrun", None)
    if state is None:  # no lifespan (a tool reading the document offline): the static part only
        return doc
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    registry: GraphRegistry = state.registry
    # A graph must be registered and its config must pass the factory's model (workflows.py): said
    # here, so that a body the document allows is one the server takes. An update naming no graph
    # is checked against the workflow's current graph, which no document can know.
    names = {"type": "string", "enum": registry.names}
    variants = _graph_variants(registry, components)
    create = components["WorkflowCreate"]
    create["properties"]["graph"] = names
    create["oneOf"] = variants
    update = components["WorkflowUpdate"]
    update["properties"]["graph"] = {"anyOf": [names, {"type": "null"}]}
    # A graph given: its config as that graph takes it. None given: at least one other field with a
    # value (a null counts as not given).
    update["anyOf"] = [
        {"required": ["graph"], "properties": {"graph": names}, "oneOf": variants},
        {
            "properties": {"graph": {"type": "null"}},
            "anyOf": [
                {"required": ["name"], "properties": {"name": {"type": "string"}}},
                {"required": ["config"], "properties": {"config": {"type": "object"}}},
            ],
        },
    ]
    if state.auth.enabled:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        components.setdefault("ErrorOut", ErrorOut.model_json_schema())
        unauthorized = {
            "description": UNAUTHORIZED["description"],
            "headers": UNAUTHORIZED["headers"],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
        }
        for path, operations in doc["paths"].items():
            if path == "/healthz":
                continue
            for operation in operations.values():
                operation["security"] = [{"bearer": []}]
                operation["responses"].setdefault("401", unauthorized)
    return doc


def install(app: FastAPI) -> None:
    """Serve the document that ``_document`` completes, built on first request (the registry's
    factories are imported by then, or are being imported by the lifespan's preload)."""
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if cached:
            return cached
        doc = _document(app)
        if getattr(app.state, "graphrun", None) is not None:  # complete: keep it
            cached.update(doc)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
