"""What the workflow and execution queries share: row mapping, page cursors, the clock."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from graphrun.errors import StoreError
from graphrun.store.base import Execution, ExecutionStatus, Workflow


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
    )


# On SQLite a transaction that reads before it writes fails with "database is locked" (busy
# snapshot) when another process committed in between, and the busy timeout cannot help. So every
# writing operation below writes first: its first statement takes the write lock.


def ping(conn: sa.Connection) -> None:
    conn.execute(sa.text("SELECT 1"))
