"""LangGraph assistants: a graphrun workflow seen through LangGraph's server API.

An assistant is a workflow (same row, same versions). Each registered graph has a default assistant
whose id is derived from the graph's name (``default_assistant_id``); wherever an assistant id is
accepted, a graph name stands for its default assistant.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from graphrun.api.openapi import CREATE, DELETE, READ, WRITE, answers
from graphrun.api.state import AppState, State, require_key
from graphrun.errors import NotFoundError
from graphrun.langgraph import graphinfo
from graphrun.store.base import Workflow, WorkflowVersion, default_assistant_id

router = APIRouter(prefix="/assistants", tags=["langgraph: assistants"], dependencies=[Depends(require_key)])

SEARCH = answers(400, 413, 503)

AssistantSort = Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"]


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


class AssistantOut(BaseModel):
    assistant_id: str
    graph_id: str
    config: dict[str, Any]
    context: dict[str, Any]
    metadata: dict[str, Any]
    name: str
    created_at: datetime
    updated_at: datetime
    version: int
    description: str | None

    @field_serializer("created_at", "updated_at")
    def _times(self, value: datetime) -> str | None:
        return iso(value)

    @classmethod
    def of(cls, wf: Workflow) -> AssistantOut:
        return cls(
            assistant_id=wf.assistant_id,
            graph_id=wf.graph,
            config=wf.config,
            context=wf.context,
            metadata=wf.metadata,
            name=wf.name,
            created_at=wf.created_at,
            updated_at=wf.updated_at,
            version=wf.version,
            description=wf.description,
        )


class AssistantVersionOut(BaseModel):
    assistant_id: str
    version: int
    graph_id: str
    config: dict[str, Any]
    context: dict[str, Any]
    metadata: dict[str, Any]
    created_at: datetime | None
    name: str
    description: str | None

    @field_serializer("created_at")
    def _times(self, value: datetime | None) -> str | None:
        return iso(value)

    @classmethod
    def of(cls, wf: Workflow, v: WorkflowVersion) -> AssistantVersionOut:
        return cls(
            assistant_id=wf.assistant_id,
            version=v.version,
            graph_id=v.graph,
            config=v.config,
            context=v.context,
            metadata=v.metadata,
            created_at=v.created_at,
            name=v.name,
            description=wf.description,
        )


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the SDKs send fields a server may not know


class AssistantCreate(_Body):
    graph_id: str = Field(min_length=1, max_length=200)
    assistant_id: uuid.UUID | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: str | None = Field(default=None, max_length=200)
    description: str | None = None


class AssistantPatch(_Body):
    graph_id: str | None = Field(default=None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = Field(default=None, max_length=200)
    description: str | None = None


class AssistantCount(_Body):
    metadata: dict[str, Any] | None = None
    graph_id: str | None = None
    name: str | None = None


class AssistantSearch(AssistantCount):
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=2**31 - 1)
    sort_by: AssistantSort | None = None
    sort_order: Literal["asc", "desc"] | None = None


class VersionsSearch(_Body):
    metadata: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=2**31 - 1)


class SetLatest(_Body):
    version: int = Field(ge=1, le=2**31 - 1)


async def resolve_assistant(state: AppState, assistant_id: str) -> Workflow:
    """The live workflow of an assistant id, or of a graph name's default assistant; 404 naming the
    registered graphs otherwise."""
    try:
        key = str(uuid.UUID(assistant_id))
    except ValueError:
        if assistant_id not in state.registry:
            raise NotFoundError(
                f"assistant {assistant_id!r} not found: not an assistant id, nor a graph name; "
                f"registered graphs: {', '.join(state.registry.names) or 'none'}"
            ) from None
        key = default_assistant_id(assistant_id)
    try:
        return await state.store.get_workflow_by_assistant(key)
    except NotFoundError:
        raise NotFoundError(
            f"assistant {assistant_id} not found; registered graphs (each also names its default "
            f"assistant): {', '.join(state.registry.names) or 'none'}"
        ) from None


def check_graph(state: AppState, graph_id: str) -> None:
    if graph_id not in state.registry:
        raise NotFoundError(
            f"graph {graph_id!r} not found; registered graphs: {', '.join(state.registry.names) or 'none'}"
        )


def _context(config: dict[str, Any] | None, context: dict[str, Any] | None) -> dict[str, Any]:
    """LangGraph's server mirrors ``config.configurable`` into ``context`` when none is given."""
    if context is not None:
        return context
    configurable = (config or {}).get("configurable")
    return dict(configurable) if isinstance(configurable, dict) else {}


@router.post("", response_model=AssistantOut, responses={**CREATE, **answers(404, 409)})
async def create_assistant(body: AssistantCreate, state: State) -> AssistantOut:
    check_graph(state, body.graph_id)
    wf = await state.store.create_workflow(
        body.name or body.graph_id,
        body.graph_id,
        body.config or {},
        assistant_id=str(body.assistant_id) if body.assistant_id else None,
        metadata=body.metadata,
        description=body.description,
        context=_context(body.config, body.context),
        if_exists=body.if_exists,
    )
    return AssistantOut.of(wf)


@router.post("/search", response_model=list[AssistantOut], responses=SEARCH)
async def search_assistants(body: AssistantSearch, state: State) -> list[AssistantOut]:
    found = await state.store.search_workflows(
        graph=body.graph_id,
        name=body.name,
        metadata=body.metadata,
        limit=body.limit,
        offset=body.offset,
        sort_by=body.sort_by or "created_at",
        sort_order=body.sort_order or "desc",
    )
    return [AssistantOut.of(wf) for wf in found]


@router.post("/count", response_model=int, responses=SEARCH)
async def count_assistants(body: AssistantCount, state: State) -> int:
    return await state.store.count_workflows(graph=body.graph_id, name=body.name, metadata=body.metadata)


@router.get("/{assistant_id}", response_model=AssistantOut, responses=READ)
async def get_assistant(assistant_id: str, state: State) -> AssistantOut:
    return AssistantOut.of(await resolve_assistant(state, assistant_id))


@router.patch("/{assistant_id}", response_model=AssistantOut, responses=WRITE)
async def patch_assistant(assistant_id: str, body: AssistantPatch, state: State) -> AssistantOut:
    wf = await resolve_assistant(state, assistant_id)
    if body.graph_id is not None:
        check_graph(state, body.graph_id)
    context = body.context
    if context is None and body.config is not None and "configurable" in body.config:
        context = _context(body.config, None)
    updated = await state.store.update_workflow(
        wf.id,
        name=body.name,
        graph=body.graph_id,
        config=body.config,
        metadata=body.metadata,
        description=body.description,
        context=context,
    )
    await state.changes.announce(updated.id, updated.version)
    return AssistantOut.of(updated)


@router.delete("/{assistant_id}", status_code=204, responses=DELETE)
async def delete_assistant(assistant_id: str, state: State) -> Response:
    wf = await resolve_assistant(state, assistant_id)
    await state.store.delete_workflow(wf.id)
    await state.changes.announce(wf.id, None)
    return Response(status_code=204)


@router.post("/{assistant_id}/versions", response_model=list[AssistantVersionOut], responses=WRITE)
async def list_assistant_versions(assistant_id: str, body: VersionsSearch, state: State) -> list[AssistantVersionOut]:
    wf = await resolve_assistant(state, assistant_id)
    versions = await state.store.list_versions(wf.id, metadata=body.metadata, limit=body.limit, offset=body.offset)
    return [AssistantVersionOut.of(wf, v) for v in versions]


@router.post("/{assistant_id}/latest", response_model=AssistantOut, responses=WRITE)
async def set_latest_version(assistant_id: str, body: SetLatest, state: State) -> AssistantOut:
    wf = await resolve_assistant(state, assistant_id)
    latest = await state.store.set_latest_version(wf.id, body.version)
    await state.changes.announce(latest.id, latest.version)
    return AssistantOut.of(latest)


@router.get("/{assistant_id}/graph", response_model=dict[str, Any], responses=answers(400, 404, 503))
async def get_assistant_graph(
    assistant_id: str,
    state: State,
    xray: Annotated[str | None, Query(description="true, false, or a depth of subgraphs to expand")] = None,
) -> dict[str, Any]:
    wf = await resolve_assistant(state, assistant_id)
    graph = await state.graphs.get(wf.id, wf.version)
    return graphinfo.drawable(graph, graphinfo.parse_xray(xray))


@router.get("/{assistant_id}/schemas", response_model=dict[str, Any], responses=READ)
async def get_assistant_schemas(assistant_id: str, state: State) -> dict[str, Any]:
    wf = await resolve_assistant(state, assistant_id)
    graph = await state.graphs.get(wf.id, wf.version)
    return {"graph_id": wf.graph, **graphinfo.schemas(graph, wf.graph)}
