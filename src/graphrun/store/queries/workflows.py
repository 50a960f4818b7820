"""Workflows, their versions and their sub-workflow dependencies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from graphrun.errors import ConflictError, NotFoundError, StoreError
from graphrun.store.base import IfExists, Page, Workflow, WorkflowVersion
from graphrun.store.queries.common import decode_cursor, encode_cursor, utcnow, workflow_row
from graphrun.store.schema import executions, workflow_deps, workflow_versions, workflows

# Every writing operation writes first: see graphrun.store.queries.common.


def insert_for(conn: sa.Connection) -> Any:
    """The dialect's INSERT, which has ON CONFLICT DO NOTHING."""
    return sqlite_insert if conn.dialect.name == "sqlite" else pg_insert


def create_workflow(
    conn: sa.Connection,
    name: str,
    graph: str,
    config: dict[str, Any],
    *,
    assistant_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    description: str | None = None,
    context: dict[str, Any] | None = None,
    if_exists: IfExists = "raise",
) -> Workflow:
    now = utcnow()
    values = {
        "name": name,
        "graph": graph,
        "config": config,
        "version": 1,
        "version_seq": 1,
        "created_at": now,
        "updated_at": now,
        "assistant_id": assistant_id or str(uuid.uuid4()),
        "metadata": metadata or {},
        "description": description,
        "context": context or {},
    }
    # Insert first (or nothing, when the assistant id is taken), then read: see common.
    row = conn.execute(
        insert_for(conn)(workflows).values(**values).on_conflict_do_nothing().returning(*workflows.c)
    ).one_or_none()
    if row is None:
        existing = conn.execute(
            sa.select(workflows).where(workflows.c.assistant_id == values["assistant_id"])
        ).one_or_none()
        if existing is not None and if_exists == "do_nothing" and existing.deleted_at is None:
            return workflow_row(existing)
        raise ConflictError(f"assistant {values['assistant_id']} already exists")
    write_version(conn, row, now)
    return workflow_row(row)


def write_version(conn: sa.Connection, row: sa.Row[Any], now: datetime) -> None:
    """Record ``row`` (a workflows row as just written) as its version ``row.version``."""
    m = row._mapping
    conn.execute(
        workflow_versions.insert().values(
            workflow_id=m["id"],
            version=m["version"],
            graph=m["graph"],
            config=m["config"],
            name=m["name"],
            metadata=m["metadata"],
            context=m["context"],
            created_at=now,
        )
    )


_GET_WORKFLOW = sa.select(workflows).where(
    workflows.c.id == sa.bindparam("workflow_id"), workflows.c.deleted_at.is_(None)
)


def get_workflow(conn: sa.Connection, workflow_id: int) -> Workflow:
    row = conn.execute(_GET_WORKFLOW, {"workflow_id": workflow_id}).one_or_none()
    if row is None:
        raise NotFoundError(f"workflow {workflow_id} not found")
    return workflow_row(row)


def find_workflow(conn: sa.Connection, name: str) -> Workflow:
    """The newest live workflow with this name."""
    row = conn.execute(
        sa.select(workflows)
        .where(workflows.c.name == name, workflows.c.deleted_at.is_(None))
        .order_by(workflows.c.id.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no workflow named {name!r}")
    return workflow_row(row)


def list_workflows(conn: sa.Connection, limit: int, cursor: str | None) -> Page[Workflow]:
    query = sa.select(workflows).where(workflows.c.deleted_at.is_(None))
    if cursor:
        (after,) = decode_cursor(cursor, 1)
        if not after.isdigit():
            raise StoreError("malformed cursor")
        query = query.where(workflows.c.id > int(after))
    rows = conn.execute(query.order_by(workflows.c.id).limit(limit + 1)).all()
    items = [workflow_row(r) for r in rows[:limit]]
    more = len(rows) > limit
    return Page(items, encode_cursor(str(items[-1].id)) if more else None)


def update_workflow(
    conn: sa.Connection,
    workflow_id: int,
    name: str | None,
    graph: str | None,
    config: dict[str, Any] | None,
    metadata: dict[str, Any] | None = None,
    description: str | None = None,
    context: dict[str, Any] | None = None,
) -> Workflow:
    """A new version with the given fields changed; ``metadata`` is merged into the current one."""
    now = utcnow()
    values: dict[str, Any] = _NEXT_VERSION | {"updated_at": now}
    for key, value in (("name", name), ("graph", graph), ("config", config), ("description", description)):
        if value is not None:
            values[key] = value
    if context is not None:
        values["context"] = context
    # One UPDATE … SET version_seq = version_seq + 1 RETURNING: the row lock serialises concurrent
    # updates, so each gets its own version, and the version row is written in the same transaction.
    row = conn.execute(
        workflows.update()
        .where(workflows.c.id == workflow_id, workflows.c.deleted_at.is_(None))
        .values(**values)
        .returning(*workflows.c)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"workflow {workflow_id} not found")
    if metadata:
        # Under the row lock the first UPDATE took: no concurrent update merges in between.
        merged = {**row._mapping["metadata"], **metadata}
        row = conn.execute(
            workflows.update().where(workflows.c.id == workflow_id).values(metadata=merged).returning(*workflows.c)
        ).one()
    write_version(conn, row, now)
    _bump_dependents(conn, workflow_id, now)
    return workflow_row(row)


# A new version number is one past the highest ever written (not the current one, which "set latest"
# may have moved back). In SQL, the right-hand sides read the row as it was before this UPDATE.
_NEXT_VERSION: dict[str, Any] = {
    "version": workflows.c.version_seq + 1,
    "version_seq": workflows.c.version_seq + 1,
}


def _bump_dependents(conn: sa.Connection, workflow_id: int, now: datetime) -> None:
    """Give every workflow that embeds ``workflow_id`` (transitively) a new version."""
    seen = {workflow_id}
    frontier = [workflow_id]
    while frontier:
        parents = conn.execute(
            sa.select(workflow_deps.c.parent_id).where(workflow_deps.c.child_id.in_(frontier)).distinct()
        ).scalars()
        frontier = [p for p in parents if p not in seen]
        seen.update(frontier)
        for parent in frontier:
            row = conn.execute(
                workflows.update()
                .where(workflows.c.id == parent, workflows.c.deleted_at.is_(None))
                .values(**_NEXT_VERSION, updated_at=now)
                .returning(*workflows.c)
            ).one_or_none()
            if row is not None:
                write_version(conn, row, now)


def record_dependencies(conn: sa.Connection, workflow_id: int, children: dict[int, int]) -> bool:
    """See ``SQLStore.record_dependencies``."""
    # Write first (insert-or-ignore), then read.
    conn.execute(
        insert_for(conn)(workflow_deps).on_conflict_do_nothing(),
        [{"parent_id": workflow_id, "child_id": c} for c in children],
    )
    query = sa.select(workflows.c.id, workflows.c.version).where(
        workflows.c.id.in_(list(children)), workflows.c.deleted_at.is_(None)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    current = {r.id: r.version for r in conn.execute(query).all()}
    return all(current.get(child) == version for child, version in children.items())


def popular_workflows(conn: sa.Connection, limit: int, since: datetime) -> list[Workflow]:
    """Live workflows with the most executions since ``since`` (for prewarming)."""
    counts = (
        sa.select(executions.c.workflow_id, sa.func.count().label("n"))
        .where(executions.c.created_at >= since)
        .group_by(executions.c.workflow_id)
        .subquery()
    )
    query = (
        sa.select(workflows)
        .join(counts, counts.c.workflow_id == workflows.c.id)
        .where(workflows.c.deleted_at.is_(None))
        .order_by(counts.c.n.desc(), workflows.c.id)
        .limit(limit)
    )
    return [workflow_row(r) for r in conn.execute(query).all()]


def delete_workflow(conn: sa.Connection, workflow_id: int) -> None:
    now = utcnow()
    result = conn.execute(
        workflows.update().where(workflows.c.id == workflow_id, workflows.c.deleted_at.is_(None)).values(deleted_at=now)
    )
    if result.rowcount == 0:
        raise NotFoundError(f"workflow {workflow_id} not found")
    # Parents that embed it get a new version: their next build fails loudly instead of running on
    # with a deleted sub-workflow.
    _bump_dependents(conn, workflow_id, now)
    conn.execute(workflow_deps.delete().where(workflow_deps.c.parent_id == workflow_id))


_GET_VERSION = sa.select(workflow_versions).where(
    workflow_versions.c.workflow_id == sa.bindparam("workflow_id"),
    workflow_versions.c.version == sa.bindparam("version"),
)


def get_version(conn: sa.Connection, workflow_id: int, version: int) -> WorkflowVersion:
    row = conn.execute(_GET_VERSION, {"workflow_id": workflow_id, "version": version}).one_or_none()
    if row is None:
        raise NotFoundError(f"workflow {workflow_id} has no version {version}")
    return version_row(row)


def version_row(row: sa.Row[Any]) -> WorkflowVersion:
    m = row._mapping
    return WorkflowVersion(
        workflow_id=m["workflow_id"],
        version=m["version"],
        graph=m["graph"],
        config=m["config"],
        name=m["name"],
        metadata=m["metadata"],
        context=m["context"],
        created_at=m["created_at"],
    )
