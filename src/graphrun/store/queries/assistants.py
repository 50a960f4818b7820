"""Workflows seen as LangGraph assistants: lookup by assistant id, defaults, search, versions."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from graphrun.errors import NotFoundError
from graphrun.store.base import Workflow, WorkflowVersion, default_assistant_id
from graphrun.store.queries.common import json_contains, ordering, utcnow, workflow_row
from graphrun.store.queries.workflows import insert_for, version_row, write_version
from graphrun.store.schema import workflow_versions, workflows

# Every writing operation writes first: see graphrun.store.queries.common.

_LIVE = workflows.c.deleted_at.is_(None)
_SORTABLE = {
    "assistant_id": workflows.c.assistant_id,
    "graph_id": workflows.c.graph,
    "name": workflows.c.name,
    "created_at": workflows.c.created_at,
    "updated_at": workflows.c.updated_at,
}
_GET_BY_ASSISTANT = sa.select(workflows).where(workflows.c.assistant_id == sa.bindparam("assistant_id"), _LIVE)


def get_workflow_by_assistant(conn: sa.Connection, assistant_id: str) -> Workflow:
    row = conn.execute(_GET_BY_ASSISTANT, {"assistant_id": assistant_id}).one_or_none()
    if row is None:
        raise NotFoundError(f"assistant {assistant_id} not found")
    return workflow_row(row)


def ensure_default_assistants(conn: sa.Connection, graphs: list[str]) -> None:
    """Insert each graph's default assistant if absent, and undelete it if it was deleted."""
    if not graphs:
        return
    now = utcnow()
    ids = {default_assistant_id(g): g for g in graphs}
    conn.execute(
        workflows.update()
        .where(workflows.c.assistant_id.in_(list(ids)), workflows.c.deleted_at.is_not(None))
        .values(deleted_at=None, updated_at=now)
    )
    for assistant_id, graph in ids.items():
        row = conn.execute(
            insert_for(conn)(workflows)
            .values(
                name=graph,
                graph=graph,
                config={},
                version=1,
                version_seq=1,
                created_at=now,
                updated_at=now,
                assistant_id=assistant_id,
                metadata={"created_by": "system"},
                description=None,
                context={},
            )
            .on_conflict_do_nothing()
            .returning(*workflows.c)
        ).one_or_none()
        if row is not None:
            write_version(conn, row, now)


def _filters(
    conn: sa.Connection, graph: str | None, name: str | None, metadata: dict[str, Any] | None
) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = [_LIVE]
    if graph is not None:
        where.append(workflows.c.graph == graph)
    if name is not None:
        where.append(workflows.c.name == name)
    return where + json_contains(conn, workflows.c["metadata"], metadata or {})


def search_workflows(
    conn: sa.Connection,
    *,
    graph: str | None = None,
    name: str | None = None,
    metadata: dict[str, Any] | None = None,
    limit: int = 10,
    offset: int = 0,
    sort_by: str = "created_at",
    sort_order: str = "desc",
) -> list[Workflow]:
    column = _SORTABLE.get(sort_by, workflows.c.created_at)
    query = (
        sa.select(workflows)
        .where(*_filters(conn, graph, name, metadata))
        .order_by(ordering(column, sort_order), ordering(workflows.c.id, sort_order))
        .limit(limit)
        .offset(offset)
    )
    return [workflow_row(r) for r in conn.execute(query).all()]


def count_workflows(
    conn: sa.Connection, *, graph: str | None = None, name: str | None = None, metadata: dict[str, Any] | None = None
) -> int:
    query = sa.select(sa.func.count()).select_from(workflows).where(*_filters(conn, graph, name, metadata))
    return int(conn.execute(query).scalar_one())


def list_versions(
    conn: sa.Connection,
    workflow_id: int,
    *,
    metadata: dict[str, Any] | None = None,
    limit: int = 10,
    offset: int = 0,
) -> list[WorkflowVersion]:
    get_live(conn, workflow_id)
    query = (
        sa.select(workflow_versions)
        .where(
            workflow_versions.c.workflow_id == workflow_id,
            *json_contains(conn, workflow_versions.c["metadata"], metadata or {}),
        )
        .order_by(workflow_versions.c.version.desc())
        .limit(limit)
        .offset(offset)
    )
    return [version_row(r) for r in conn.execute(query).all()]


def get_live(conn: sa.Connection, workflow_id: int) -> sa.Row[Any]:
    row = conn.execute(sa.select(workflows).where(workflows.c.id == workflow_id, _LIVE)).one_or_none()
    if row is None:
        raise NotFoundError(f"workflow {workflow_id} not found")
    return row


def set_latest_version(conn: sa.Connection, workflow_id: int, version: int) -> Workflow:
    """Make ``version`` current: new executions pin it, and the workflow shows its fields."""
    # The UPDATE … FROM the version row writes first; no row: unknown workflow or version.
    v = workflow_versions
    row = conn.execute(
        workflows.update()
        .where(workflows.c.id == workflow_id, _LIVE, v.c.workflow_id == workflows.c.id, v.c.version == version)
        .values(
            version=v.c.version,
            graph=v.c.graph,
            config=v.c.config,
            name=v.c.name,
            metadata=v.c["metadata"],
            context=v.c.context,
            updated_at=utcnow(),
        )
        .returning(*workflows.c)
    ).one_or_none()
    if row is None:
        get_live(conn, workflow_id)
        raise NotFoundError(f"workflow {workflow_id} has no version {version}")
    return workflow_row(row)
