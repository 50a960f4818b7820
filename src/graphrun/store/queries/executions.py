"""Executions: creation, reads, and the compare-and-set transitions of their life cycle."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.dml import ReturningUpdate

from graphrun.errors import ConflictError, NotFoundError, StoreError
from graphrun.store.base import (
    RESUME_FROM_OPTION,
    RESUME_OPTION,
    Execution,
    ExecutionStatus,
    Page,
    checkpoint_thread_of,
)
from graphrun.store.queries.common import decode_cursor, encode_cursor, execution_row, new_execution_id, utcnow
from graphrun.store.schema import JSONType, UTCDateTime, executions, threads, workflows

# Every writing operation writes first: see graphrun.store.queries.common.

# The statements of the hot path (every execution makes these calls) are built once, with bound
# parameters: building one per call, and computing its cache key, costs more than SQLite running it.

# One INSERT … SELECT that pins the current version: no read-then-write transaction.
_CREATE_EXECUTION = (
    executions.insert()
    .from_select(
        [
            "id",
            "workflow_id",
            "workflow_version",
            "status",
            "input",
            "attempt",
            "timeout_s",
            "created_at",
            "thread_id",
            "metadata",
            "options",
        ],
        sa.select(
            sa.bindparam("new_id", type_=sa.String),
            workflows.c.id,
            workflows.c.version,
            sa.literal(ExecutionStatus.QUEUED.value),
            sa.bindparam("input", type_=JSONType),
            sa.literal(0),
            sa.bindparam("timeout_s", type_=sa.Float),
            sa.bindparam("now", type_=UTCDateTime),
            sa.bindparam("thread", type_=sa.String),
            sa.bindparam("meta", type_=JSONType),
            sa.bindparam("opts", type_=JSONType),
        ).where(workflows.c.id == sa.bindparam("workflow_id"), workflows.c.deleted_at.is_(None)),
    )
    .returning(*executions.c)
)
# A run on a thread is stored under its thread row's lock (this UPDATE is the transaction's first
# statement: a row lock on PostgreSQL, the write lock on SQLite). So the runs of one thread are
# stored one at a time, whatever the number of API processes: the busy check of `reject` cannot be
# passed by two at once, and created_at (read after the lock) follows the order they were stored in.
_LOCK_THREAD = (
    threads.update()
    .where(threads.c.thread_id == sa.bindparam("thread"))
    .values(updated_at=sa.bindparam("now", type_=UTCDateTime))
    .returning(threads.c.thread_id, threads.c["metadata"])
)
_SET_THREAD_METADATA = (
    threads.update()
    .where(threads.c.thread_id == sa.bindparam("thread"))
    .values(metadata=sa.bindparam("merged", type_=JSONType))
)
_THREAD_ACTIVE = sa.select(executions.c.id).where(
    executions.c.thread_id == sa.bindparam("thread"),
    executions.c.status.in_((ExecutionStatus.QUEUED.value, ExecutionStatus.RUNNING.value)),
)
_ABSENT = object()  # a metadata key the thread does not have yet
_GET_EXECUTION = sa.select(executions).where(executions.c.id == sa.bindparam("execution_id"))
_DELETE_EXECUTION = executions.delete().where(executions.c.id == sa.bindparam("execution_id"))


def create_execution(
    conn: sa.Connection,
    workflow_id: int,
    input: dict[str, Any],
    timeout_s: float | None,
    *,
    execution_id: str | None = None,
    thread_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    only_if_idle: bool = False,
    thread_metadata: dict[str, Any] | None = None,
) -> Execution:
    """``only_if_idle``: refuse (ConflictError "busy") when a run of the thread is queued or running.
    ``thread_metadata``: merged into the thread's metadata (a LangGraph run stamps its graph_id and
    assistant_id), written only when it changes something."""
    locked = None
    if thread_id is not None:
        locked = conn.execute(_LOCK_THREAD, {"thread": thread_id, "now": utcnow()}).first()
        if locked is None:
            raise NotFoundError(f"thread {thread_id} not found")
        if only_if_idle and conn.execute(_THREAD_ACTIVE.limit(1), {"thread": thread_id}).first() is not None:
            raise ConflictError(f"thread {thread_id} is busy: a run is pending or running", "busy")
    elif only_if_idle:
        raise ValueError("only_if_idle needs a thread")
    params = {
        "new_id": execution_id or new_execution_id(),
        "workflow_id": workflow_id,
        "input": input,
        "timeout_s": timeout_s,
        "now": utcnow(),
        "thread": thread_id,
        "meta": metadata or {},
        "opts": options or {},
    }
    row = conn.execute(_CREATE_EXECUTION, params).one_or_none()
    if row is None:
        raise NotFoundError(f"workflow {workflow_id} not found")
    if locked is not None and thread_metadata:
        # Under the thread's lock (the UPDATE above): concurrent runs do not lose each other's keys.
        current = locked[1] or {}
        if any(current.get(key, _ABSENT) != value for key, value in thread_metadata.items()):
            conn.execute(_SET_THREAD_METADATA, {"thread": thread_id, "merged": {**current, **thread_metadata}})
    return execution_row(row)


def delete_execution(conn: sa.Connection, execution_id: str) -> None:
    conn.execute(_DELETE_EXECUTION, {"execution_id": execution_id})


def get_execution(conn: sa.Connection, execution_id: str) -> Execution:
    row = conn.execute(_GET_EXECUTION, {"execution_id": execution_id}).one_or_none()
    if row is None:
        raise NotFoundError(f"execution {execution_id} not found")
    return execution_row(row)


def list_executions(
    conn: sa.Connection,
    limit: int,
    cursor: str | None,
    workflow_id: int | None,
    status: ExecutionStatus | None,
    thread_id: str | None = None,
) -> Page[Execution]:
    query = sa.select(executions)
    if thread_id is not None:
        query = query.where(executions.c.thread_id == thread_id)
    if workflow_id is not None:
        query = query.where(executions.c.workflow_id == workflow_id)
    if status is not None:
        query = query.where(executions.c.status == status.value)
    if cursor:
        ts, last_id = decode_cursor(cursor, 2)
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
    items = [execution_row(r) for r in rows[:limit]]
    more = len(rows) > limit
    next_cursor = encode_cursor(items[-1].created_at.isoformat(), items[-1].id) if more else None
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

# Thread order: an execution of a thread may start only when none of that thread runs and none
# created before it is still queued. Evaluated inside the claim's UPDATE, so two claims on one thread
# cannot both pass: on PostgreSQL the later one sees the earlier still queued (or running), on SQLite
# writes are serialised. (created_at, id) orders the executions of a thread totally.
_other = executions.alias("other")
_THREAD_TURN = sa.or_(
    executions.c.thread_id.is_(None),
    ~sa.exists().where(
        _other.c.thread_id == executions.c.thread_id,
        _other.c.id != executions.c.id,
        sa.or_(
            _other.c.status == ExecutionStatus.RUNNING.value,
            sa.and_(
                _other.c.status == ExecutionStatus.QUEUED.value,
                sa.or_(
                    _other.c.created_at < executions.c.created_at,
                    sa.and_(_other.c.created_at == executions.c.created_at, _other.c.id < executions.c.id),
                ),
            ),
        ),
    ),
)
_CLAIM = _transition(
    executions.c.status == ExecutionStatus.QUEUED.value,
    _THREAD_TURN,
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


# Only a native execution (no LangGraph thread) that no resume claimed yet can be resumed or
# cancelled while interrupted: the row lock of this UPDATE lets exactly one of them win.
_RESUMABLE = (
    executions.c.status == ExecutionStatus.INTERRUPTED.value,
    executions.c.resumed_by.is_(None),
    executions.c.thread_id.is_(None),
)
_MARK_RESUMED = _transition(*_RESUMABLE, resumed_by=sa.bindparam("successor"))
_CANCEL_INTERRUPTED = _transition(*_RESUMABLE, status=ExecutionStatus.CANCELLED.value, finished_at=_NOW)


def _run_transition(conn: sa.Connection, statement: ReturningUpdate[Any], params: dict[str, Any]) -> Execution | None:
    row = conn.execute(statement, params).one_or_none()
    return execution_row(row) if row is not None else None


def claim_execution(conn: sa.Connection, execution_id: str) -> Execution | None:
    return _run_transition(conn, _CLAIM, {"execution_id": execution_id, "now": utcnow()})


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
        "now": utcnow(),
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
    return [execution_row(r) for r in conn.execute(query).all()]


def cancel_queued(conn: sa.Connection, execution_id: str) -> Execution | None:
    return _run_transition(conn, _CANCEL_QUEUED, {"execution_id": execution_id, "now": utcnow()})


def cancel_interrupted(conn: sa.Connection, execution_id: str) -> Execution | None:
    return _run_transition(conn, _CANCEL_INTERRUPTED, {"execution_id": execution_id, "now": utcnow()})


def resume_execution(conn: sa.Connection, execution_id: str, resume: Any) -> Execution:
    """The mark and the new execution in one transaction: a refused resume stores nothing."""
    successor = new_execution_id()
    original = _run_transition(conn, _MARK_RESUMED, {"execution_id": execution_id, "successor": successor})
    if original is None:
        found = get_execution(conn, execution_id)  # NotFoundError for an unknown id
        if found.resumed_by is not None:
            raise ConflictError(
                f"execution {execution_id} was already resumed (by {found.resumed_by})", found.status.value
            )
        raise ConflictError(f"execution {execution_id} is {found.status.value}: nothing to resume", found.status.value)
    row = {
        "id": successor,
        "workflow_id": original.workflow_id,
        "workflow_version": original.workflow_version,
        "status": ExecutionStatus.QUEUED.value,
        "input": {RESUME_OPTION: resume},
        "attempt": 0,
        "timeout_s": original.timeout_s,
        "created_at": utcnow(),
        "metadata": {},
        "options": {RESUME_OPTION: resume, RESUME_FROM_OPTION: checkpoint_thread_of(original)},
    }
    return execution_row(conn.execute(executions.insert().values(**row).returning(*executions.c)).one())


_BLOCKED = sa.select(executions.c.id).where(
    executions.c.id == sa.bindparam("execution_id"),
    executions.c.status == ExecutionStatus.QUEUED.value,
    ~_THREAD_TURN,
)
_NEXT_ON_THREAD = (
    sa.select(executions.c.id)
    .where(executions.c.thread_id == sa.bindparam("thread_id"), executions.c.status == ExecutionStatus.QUEUED.value)
    .order_by(executions.c.created_at, executions.c.id)
    .limit(1)
)


def blocked_on_thread(conn: sa.Connection, execution_id: str) -> bool:
    return conn.execute(_BLOCKED, {"execution_id": execution_id}).first() is not None


def next_queued_on_thread(conn: sa.Connection, thread_id: str) -> str | None:
    found: str | None = conn.execute(_NEXT_ON_THREAD, {"thread_id": thread_id}).scalar_one_or_none()
    return found
