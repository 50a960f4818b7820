"""LangGraph threads: their rows, a thread's computed status, search, copy, and the state copy."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from graphrun.errors import ConflictError, NotFoundError
from graphrun.store.base import ExecutionStatus, IfExists, Thread
from graphrun.store.queries.common import json_contains, ordering, thread_row, utcnow
from graphrun.store.queries.workflows import insert_for
from graphrun.store.schema import JSONType, UTCDateTime, executions, threads

# Every writing operation writes first: see graphrun.store.queries.common.

_ACTIVE = (ExecutionStatus.QUEUED.value, ExecutionStatus.RUNNING.value)
# "busy" is never stored: it is whether an execution of the thread is queued or running now, so it
# cannot drift from the executions (a crashed worker leaves nothing to reset).
_BUSY = sa.exists().where(executions.c.thread_id == threads.c.thread_id, executions.c.status.in_(_ACTIVE))
_STATUS = sa.case((_BUSY, "busy"), else_=threads.c.status)
_SELECT: sa.Select[Any] = sa.select(*(c for c in threads.c if c.name != "status"), _STATUS.label("status"))
_SORTABLE = {
    "thread_id": threads.c.thread_id,
    "status": _STATUS,
    "created_at": threads.c.created_at,
    "updated_at": threads.c.updated_at,
}


def _get(conn: sa.Connection, thread_id: str) -> Thread:
    row = conn.execute(_SELECT.where(threads.c.thread_id == thread_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"thread {thread_id} not found")
    return thread_row(row)


def create_thread(
    conn: sa.Connection,
    thread_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    if_exists: IfExists = "raise",
) -> Thread:
    now = utcnow()
    tid = thread_id or str(uuid.uuid4())
    inserted = conn.execute(
        insert_for(conn)(threads)
        .values(
            thread_id=tid,
            created_at=now,
            updated_at=now,
            state_updated_at=now,
            metadata=metadata or {},
            status="idle",
            config={},
            values=None,
            interrupts={},
            error=None,
        )
        .on_conflict_do_nothing()
        .returning(threads.c.thread_id)
    ).first()
    if inserted is None and if_exists == "raise":
        raise ConflictError(f"thread {tid} already exists")
    return _get(conn, tid)


def get_thread(conn: sa.Connection, thread_id: str) -> Thread:
    return _get(conn, thread_id)


def _merge_metadata(conn: sa.Connection, thread_id: str, metadata: dict[str, Any]) -> bool:
    now = utcnow()
    row = conn.execute(
        threads.update().where(threads.c.thread_id == thread_id).values(updated_at=now).returning(threads.c["metadata"])
    ).one_or_none()
    if row is None:
        return False
    if metadata:
        # Under the row lock the UPDATE above took: concurrent merges do not lose keys.
        merged = {**row[0], **metadata}
        conn.execute(threads.update().where(threads.c.thread_id == thread_id).values(metadata=merged))
    return True


def update_thread(conn: sa.Connection, thread_id: str, metadata: dict[str, Any]) -> Thread:
    if not _merge_metadata(conn, thread_id, metadata):
        raise NotFoundError(f"thread {thread_id} not found")
    return _get(conn, thread_id)


def delete_thread(conn: sa.Connection, thread_id: str) -> None:
    if conn.execute(threads.delete().where(threads.c.thread_id == thread_id)).rowcount == 0:
        raise NotFoundError(f"thread {thread_id} not found")
    conn.execute(executions.delete().where(executions.c.thread_id == thread_id))


def _filters(
    conn: sa.Connection,
    ids: list[str] | None,
    metadata: dict[str, Any] | None,
    values: dict[str, Any] | None,
    status: str | None,
) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if ids is not None:
        where.append(threads.c.thread_id.in_(ids))
    if status is not None:
        where.append(_STATUS == status)  # noqa: SIM300 (a SQL expression)
    where += json_contains(conn, threads.c["metadata"], metadata or {})
    return where + json_contains(conn, threads.c["values"], values or {})


def search_threads(
    conn: sa.Connection,
    *,
    ids: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    status: str | None = None,
    limit: int = 10,
    offset: int = 0,
    sort_by: str = "created_at",
    sort_order: str = "desc",
) -> list[Thread]:
    column = _SORTABLE.get(sort_by, threads.c.created_at)
    query = (
        _SELECT.where(*_filters(conn, ids, metadata, values, status))
        .order_by(ordering(column, sort_order), ordering(threads.c.thread_id, sort_order))
        .limit(limit)
        .offset(offset)
    )
    return [thread_row(r) for r in conn.execute(query).all()]


def count_threads(
    conn: sa.Connection,
    *,
    metadata: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    status: str | None = None,
) -> int:
    query = sa.select(sa.func.count()).select_from(threads).where(*_filters(conn, None, metadata, values, status))
    return int(conn.execute(query).scalar_one())


def copy_thread(conn: sa.Connection, thread_id: str) -> Thread:
    now = utcnow()
    new_id = str(uuid.uuid4())
    copied = sa.select(
        sa.literal(new_id, sa.String),
        sa.literal(now, threads.c.created_at.type),
        sa.literal(now, threads.c.updated_at.type),
        threads.c.state_updated_at,
        threads.c["metadata"],
        threads.c.status,
        threads.c.config,
        threads.c["values"],
        threads.c.interrupts,
        threads.c.error,
    ).where(threads.c.thread_id == thread_id)
    names = ["thread_id", "created_at", "updated_at", "state_updated_at", "metadata", "status"]
    names += ["config", "values", "interrupts", "error"]
    if conn.execute(threads.insert().from_select(names, copied)).rowcount == 0:
        raise NotFoundError(f"thread {thread_id} not found")
    return _get(conn, new_id)


# Every LangGraph run ends with it: built once (see queries/executions.py).
_SET_STATE = (
    threads.update()
    .where(threads.c.thread_id == sa.bindparam("thread"))
    .values(
        status=sa.bindparam("st"),
        values=sa.bindparam("vals", type_=JSONType),
        interrupts=sa.bindparam("ints", type_=JSONType),
        error=sa.bindparam("err", type_=JSONType),
        updated_at=sa.bindparam("now", type_=UTCDateTime),
        state_updated_at=sa.bindparam("now", type_=UTCDateTime),
    )
)


def set_thread_state(
    conn: sa.Connection,
    thread_id: str,
    *,
    status: str,
    values: Any,
    interrupts: dict[str, list[dict[str, Any]]],
    error: Any,
) -> None:
    """No thread (deleted meanwhile): nothing to record."""
    now = utcnow()
    params = {"thread": thread_id, "st": status, "vals": values, "ints": interrupts, "err": error, "now": now}
    conn.execute(_SET_STATE, params)
