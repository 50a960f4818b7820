"""LangGraph assistants and threads: assistant columns on workflows and versions, the threads table,
and thread, metadata and options columns on executions.

Existing workflows get a random (uuid4) assistant id: none of them was a graph's default assistant
(those are created at start-up by ``ensure_default_assistants`` with the id derived from the graph's
name), so an old workflow named after a graph stays a workflow of its own.

Revision ID: 0003
Revises: 0002
"""

import uuid

import sqlalchemy as sa
from alembic import op

from graphrun.store.schema import JSONType, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_EMPTY = sa.text("'{}'")


def upgrade() -> None:
    # Only ADD COLUMN and CREATE INDEX: on SQLite anything else recreates the table, and dropping
    # ``workflows`` fails while ``workflow_versions`` references it.
    op.add_column("workflows", sa.Column("version_seq", sa.Integer, nullable=False, server_default="0"))
    op.add_column("workflows", sa.Column("assistant_id", sa.String(36), nullable=False, server_default=""))
    op.add_column("workflows", sa.Column("metadata", JSONType, nullable=False, server_default=_EMPTY))
    op.add_column("workflows", sa.Column("description", sa.Text, nullable=True))
    op.add_column("workflows", sa.Column("context", JSONType, nullable=False, server_default=_EMPTY))
    conn = op.get_bind()
    workflows = sa.table("workflows", sa.column("id"), sa.column("assistant_id"))
    for (wid,) in conn.execute(sa.select(workflows.c.id)).all():
        conn.execute(workflows.update().where(workflows.c.id == wid).values(assistant_id=str(uuid.uuid4())))
    # Versions are written in order, so the highest one is the current version today.
    op.execute(
        "UPDATE workflows SET version_seq = COALESCE("
        "(SELECT MAX(v.version) FROM workflow_versions v WHERE v.workflow_id = workflows.id), version)"
    )
    op.create_index("uq_workflows_assistant_id", "workflows", ["assistant_id"], unique=True)

    op.add_column("workflow_versions", sa.Column("name", sa.String(200), nullable=False, server_default=""))
    op.add_column("workflow_versions", sa.Column("metadata", JSONType, nullable=False, server_default=_EMPTY))
    op.add_column("workflow_versions", sa.Column("context", JSONType, nullable=False, server_default=_EMPTY))
    op.execute(
        "UPDATE workflow_versions SET name = "
        "(SELECT w.name FROM workflows w WHERE w.id = workflow_versions.workflow_id)"
    )

    op.add_column("executions", sa.Column("thread_id", sa.String(36), nullable=True))
    op.add_column("executions", sa.Column("metadata", JSONType, nullable=False, server_default=_EMPTY))
    op.add_column("executions", sa.Column("options", JSONType, nullable=False, server_default=_EMPTY))
    op.create_index("ix_executions_thread", "executions", ["thread_id", "created_at"])

    op.create_table(
        "threads",
        sa.Column("thread_id", sa.String(36), primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("state_updated_at", UTCDateTime, nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("values", JSONType, nullable=True),
        sa.Column("interrupts", JSONType, nullable=False),
        sa.Column("error", JSONType, nullable=True),
    )
    op.create_index("ix_threads_created", "threads", ["created_at"])


def downgrade() -> None:
    op.drop_table("threads")
    op.drop_index("ix_executions_thread", "executions")
    with op.batch_alter_table("executions") as batch:
        for col in ("options", "metadata", "thread_id"):
            batch.drop_column(col)
    with op.batch_alter_table("workflow_versions") as batch:
        for col in ("context", "metadata", "name"):
            batch.drop_column(col)
    op.drop_index("uq_workflows_assistant_id", "workflows")
    with op.batch_alter_table("workflows") as batch:
        for col in ("context", "description", "metadata", "assistant_id", "version_seq"):
            batch.drop_column(col)
