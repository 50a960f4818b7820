"""What the queries share: row mapping, page cursors, JSON filters, the clock."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from graphrun.errors import StoreError
from graphrun.store.base import Execution, ExecutionStatus, Thread, Workflow


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_execution_id() -> str:
    """128 random bits: not guessable from any other id."""
    return secrets.token_urlsafe(16)


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("\x1f".join(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise StoreError("malformed cursor") from None
    parts = raw.split("\x1f")
    if len(parts) != n:
        raise StoreError("malformed cursor")
    return parts


def workflow_row(row: sa.Row[Any]) -> Workflow:
    m = row._mapping
    return Workflow(
        id=m["id"],
        name=m["name"],
        graph=m["graph"],
        config=m["config"],
        version=m["version"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        assistant_id=m["assistant_id"],
        metadata=m["metadata"],
        description=m["description"],
        context=m["context"],
    )


def execution_row(row: sa.Row[Any]) -> Execution:
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
        thread_id=m["thread_id"],
        metadata=m["metadata"],
        options=m["options"],
        resumed_by=m["resumed_by"],
    )


def thread_row(row: sa.Row[Any]) -> Thread:
    """A row of ``threads`` with its computed ``status`` (see ``queries.threads``)."""
    m = row._mapping
    return Thread(
        thread_id=m["thread_id"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        metadata=m["metadata"],
        status=m["status"],
        config=m["config"],
        values=m["values"],
        interrupts=m["interrupts"],
        error=m["error"],
        state_updated_at=m["state_updated_at"],
    )


def json_contains(conn: sa.Connection, column: Any, wanted: dict[str, Any]) -> list[sa.ColumnElement[bool]]:
    """Conditions that every key of ``wanted`` is in the JSON object ``column`` with an equal value.

    PostgreSQL: JSONB containment (nested objects match by containment). SQLite: per key, the same
    JSON type and value (nested objects match only when equal).
    """
    if not wanted:
        return []
    if conn.dialect.name == "postgresql":
        return [column.op("@>")(sa.bindparam(None, wanted, type_=JSONB))]
    conds: list[sa.ColumnElement[bool]] = []
    for key, value in wanted.items():
        # json_each rather than a JSON path: any key works, whatever characters it holds.
        members = sa.func.json_each(column).table_valued("key", "value", "type")
        text = json.dumps(value, separators=(",", ":"))
        match = [members.c.key == key, members.c.type == sa.func.json_type(text)]
        if value is not None:
            match.append(members.c.value == sa.func.json_extract(text, "$"))
        conds.append(sa.select(sa.literal(1)).select_from(members).where(*match).exists())
    return conds


def ordering(column: Any, sort_order: str) -> Any:
    return column.asc() if sort_order == "asc" else column.desc()


# On SQLite a transaction that reads before it writes fails with "database is locked" (busy
# snapshot) when another process committed in between, and the busy timeout cannot help. So every
# writing operation below writes first: its first statement takes the write lock.


def ping(conn: sa.Connection) -> None:
    conn.execute(sa.text("SELECT 1"))
