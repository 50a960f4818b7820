"""The store's operations, each one synchronous function on one transaction's connection.

``SQLStore`` runs each as a whole: in a thread on SQLite, under ``run_sync`` on PostgreSQL (see
``graphrun.store.runner``). So nothing here may await, and each function is one transaction.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import ReturningUpdate

from graphrun.errors import NotFoundError, StoreError
from graphrun.store.base import Execution, ExecutionStatus, Page, Workflow, WorkflowVersion
from graphrun.store.schema import JSONType, UTCDateTime, executions, workflow_deps, workflow_versions, workflows


def _now() -> datetime:
    return datetime.now(UTC)


def new_execution_id() -> str:
    """128 random bits: not guessable from any other id."""
    return secrets.token_urlsafe(16)


def _encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("\x1f".join(parts).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, n: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise StoreError("malformed cursor") from None
    parts = raw.split("\x1f")
    if len(parts) != n:
        raise StoreError("malformed cursor")
    return parts


def _workflow(row: sa.Row[Any]) -> Workflow:
    m = row._mapping
    return Workflow(
        id=m["id"],
        name=m["name"],
        graph=m["graph"],
        config=m["config"],
        version=m["version"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _execution(row: sa.Row[Any]) -> Execution:
    m = row._mapping
    return Execution(
        id=m["id"],
        workflow_id=m["workflow_id"],
        workflow_version=m["workflow_version"],
        status=ExecutionStatus(m["status"]),
        input=m["input"],
        output=m["output"],
        error=m["error"],
        attempt=m["attempt"],
        timeout_s=m["timeout_s"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
    )


# On SQLite a transaction that reads before it writes fails with "database is locked" (busy
# snapshot) when another process committed in between, and the busy timeout cannot help. So every
# writing operation below writes first: its first statement takes the write lock.


def ping(conn: sa.Connection) -> None:
    conn.execute(sa.text("SELECT 1"))


# -- workflows ----------------------------------------------------------------------------------


def create_workflow(conn: sa.Connection, name: str, graph: str, config: dict[str, Any]) -> Workflow:
    now = _now()
    row = conn.execute(
        workflows.insert()
        .values(name=name, graph=graph, config=config, version=1, created_at=now, updated_at=now)
        .returning(*workflows.c)
    ).one()
    conn.execute(
        workflow_versions.insert().values(workflow_id=row.id, version=1, graph=graph, config=config, created_at=now)
    )
    return _workflow(row)


_GET_WORKFLOW = sa.select(workflows).where(
    workflows.c.id == sa.bindparam("workflow_id"), workflows.c.deleted_at.is_(None)
)


def get_workflow(conn: sa.Connection, workflow_id: int) -> Workflow:
    row = conn.execute(_GET_WORKFLOW, {"workflow_id": workflow_id}).one_or_none()
    if row is None:
        raise NotFoundError(f"workflow {workflow_id} not found")
    return _workflow(row)


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
    return _workflow(row)


def list_workflows(conn: sa.Connection, limit: int, cursor: str | None) -> Page[Workflow]:
    query = sa.select(workflows).where(workflows.c.deleted_at.is_(None))
    if cursor:
        (after,) = _decode_cursor(cursor, 1)
        if not after.isdigit():
            raise StoreError("malformed cursor")
        query = query.where(workflows.c.id > int(after))
    rows = conn.execute(query.order_by(workflows.c.id).limit(limit + 1)).all()
    items = [_workflow(r) for r in rows[:limit]]
    more = len(rows) > limit
    return Page(items, _encode_cursor(str(items[-1].id)) if more else None)


def update_workflow(
    conn: sa.Connection,
    workflow_id: int,
    name: str | None,
    graph: str | None,
    config: dict[str, Any] | None,
) -> Workflow:
    now = _now()
    values: dict[str, Any] = {"version": workflows.c.version + 1, "updated_at": now}
    if name is not None:
        values["name"] = name
    if graph is not None:
        values["graph"] = graph
    if config is not None:
        values["config"] = config
    # One UPDATE … SET version = version + 1 RETURNING: the row lock serialises concurrent updates,
    # so each gets its own version, and the version row is written in the same transaction.
    row = conn.execute(
        workflows.update()
        .where(workflows.c.id == workflow_id, workflows.c.deleted_at.is_(None))
        .values(**values)
        .returning(*workflows.c)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"workflow {workflow_id} not found")
    conn.execute(
        workflow_versions.insert().values(
            workflow_id=workflow_id, version=row.version, graph=row.graph, config=row.config, created_at=now
        )
    )
    _bump_dependents(conn, workflow_id, now)
    return _workflow(row)


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
                .values(version=workflows.c.version + 1, updated_at=now)
                .returning(workflows.c.version, workflows.c.graph, workflows.c.config)
            ).one_or_none()
            if row is not None:
                conn.execute(
                    workflow_versions.insert().values(
                        workflow_id=parent, version=row.version, graph=row.graph, config=row.config, created_at=now
                    )
                )


def record_dependencies(conn: sa.Connection, workflow_id: int, children: dict[int, int]) -> bool:
    """See ``SQLStore.record_dependencies``."""
    # Write first (insert-or-ignore), then read.
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    conn.execute(
        insert(workflow_deps).on_conflict_do_nothing(),
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
    return [_workflow(r) for r in conn.execute(query).all()]


def delete_workflow(conn: sa.Connection, workflow_id: int) -> None:
    now = _now()
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
    return WorkflowVersion(workflow_id, version, row.graph, row.config)


# -- executions ---------------------------------------------------------------------------------

# The statements of the hot path (every execution makes these calls) are built once, with bound
# parameters: building one per call, and computing its cache key, costs more than SQLite running it.

# One INSERT … SELECT that pins the current version: no read-then-write transaction.
_CREATE_EXECUTION = (
    executions.insert()
    .from_select(
        ["id", "workflow_id", "workflow_version", "status", "input", "attempt", "timeout_s", "created_at"],
        sa.select(
            sa.bindparam("new_id", type_=sa.String),
            workflows.c.id,
            workflows.c.version,
            sa.literal(ExecutionStatus.QUEUED.value),
            sa.bindparam("input", type_=JSONType),
            sa.literal(0),
            sa.bindparam("timeout_s", type_=sa.Float),
            sa.bindparam("now", type_=UTCDateTime),
        ).where(workflows.c.id == sa.bindparam("workflow_id"), workflows.c.deleted_at.is_(None)),
    )
    .returning(*executions.c)
)
_GET_EXECUTION = sa.select(executions).where(executions.c.id == sa.bindparam("execution_id"))
_DELETE_EXECUTION = executions.delete().where(executions.c.id == sa.bindparam("execution_id"))


def create_execution(
    conn: sa.Connection, workflow_id: int, input: dict[str, Any], timeout_s: float | None
) -> Execution:
    params = {
        "new_id": new_execution_id(),
        "workflow_id": workflow_id,
        "input": input,
        "timeout_s": timeout_s,
        "now": _now(),
    }
    row = conn.execute(_CREATE_EXECUTION, params).one_or_none()
    if row is None:
        raise NotFoundError(f"workflow {workflow_id} not found")
    return _execution(row)


def delete_execution(conn: sa.Connection, execution_id: str) -> None:
    conn.execute(_DELETE_EXECUTION, {"execution_id": execution_id})


def get_execution(conn: sa.Connection, execution_id: str) -> Execution:
    row = conn.execute(_GET_EXECUTION, {"execution_id": execution_id}).one_or_none()
    if row is None:
        raise NotFoundError(f"execution {execution_id} not found")
    return _execution(row)


def list_executions(
    conn: sa.Connection,
    limit: int,
    cursor: str | None,
    workflow_id: int | None,
    status: ExecutionStatus | None,
) -> Page[Execution]:
    query = sa.select(executions)
    if workflow_id is not None:
        query = query.where(executions.c.workflow_id == workflow_id)
    if status is not None:
        query = query.where(executions.c.status == status.value)
    if cursor:
        ts, last_id = _decode_cursor(cursor, 2)
        try:
            at = datetime.fromisoformat(ts)
        except ValueError:
            raise StoreError("malformed cursor") from None
        # Newest first; (created_at, id) is unique, so the page boundary is exact.
        query = query.where(
            sa.or_(
                executions.c.created_at < at,
                sa.and_(executions.c.created_at == at, executions.c.id < last_id),
            )
        )
    query = query.order_by(executions.c.created_at.desc(), executions.c.id.desc()).limit(limit + 1)
    rows = conn.execute(query).all()
    items = [_execution(r) for r in rows[:limit]]
    more = len(rows) > limit
    next_cursor = _encode_cursor(items[-1].created_at.isoformat(), items[-1].id) if more else None
    return Page(items, next_cursor)


def _transition(*where: Any, **values: Any) -> ReturningUpdate[Any]:
    """A compare-and-set: one UPDATE … WHERE <expected state> … RETURNING of ``:execution_id``."""
    this = executions.c.id == sa.bindparam("execution_id")
    return executions.update().where(this, *where).values(**values).returning(*executions.c)


# (Parameters may not be named after a column the UPDATE sets: SQLAlchemy reserves those names.)
_RUNNING_ATTEMPT = (
    executions.c.status == ExecutionStatus.RUNNING.value,
    executions.c.attempt == sa.bindparam("expected_attempt"),
)
_NOW = sa.bindparam("now", type_=UTCDateTime)
_CLAIM = _transition(
    executions.c.status == ExecutionStatus.QUEUED.value,
    status=ExecutionStatus.RUNNING.value,
    started_at=_NOW,
    attempt=executions.c.attempt + 1,
)
_FINISH = _transition(
    *_RUNNING_ATTEMPT,
    status=sa.bindparam("new_status"),
    output=sa.bindparam("out", type_=JSONType),
    error=sa.bindparam("err", type_=JSONType),
    finished_at=_NOW,
)
_REQUEUE = _transition(*_RUNNING_ATTEMPT, status=ExecutionStatus.QUEUED.value)
_CANCEL_QUEUED = _transition(
    executions.c.status == ExecutionStatus.QUEUED.value, status=ExecutionStatus.CANCELLED.value, finished_at=_NOW
)


def _run_transition(conn: sa.Connection, statement: ReturningUpdate[Any], params: dict[str, Any]) -> Execution | None:
    row = conn.execute(statement, params).one_or_none()
    return _execution(row) if row is not None else None


def claim_execution(conn: sa.Connection, execution_id: str) -> Execution | None:
    return _run_transition(conn, _CLAIM, {"execution_id": execution_id, "now": _now()})


def finish_execution(
    conn: sa.Connection,
    execution_id: str,
    attempt: int,
    status: ExecutionStatus,
    output: Any,
    error: dict[str, Any] | None,
) -> Execution | None:
    params = {
        "execution_id": execution_id,
        "expected_attempt": attempt,
        "new_status": status.value,
        "out": output,
        "err": error,
        "now": _now(),
    }
    return _run_transition(conn, _FINISH, params)


def requeue_execution(conn: sa.Connection, execution_id: str, attempt: int) -> Execution | None:
    return _run_transition(conn, _REQUEUE, {"execution_id": execution_id, "expected_attempt": attempt})


def executions_in(
    conn: sa.Connection, status: ExecutionStatus, limit: int, created_before: datetime | None
) -> list[Execution]:
    """Oldest first: what the sweeper checks."""
    query = sa.select(executions).where(executions.c.status == status.value)
    if created_before is not None:
        query = query.where(executions.c.created_at < created_before)
    query = query.order_by(executions.c.created_at, executions.c.id).limit(limit)
    return [_execution(r) for r in conn.execute(query).all()]


def cancel_queued(conn: sa.Connection, execution_id: str) -> Execution | None:
    return _run_transition(conn, _CANCEL_QUEUED, {"execution_id": execution_id, "now": _now()})
