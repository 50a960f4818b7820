"""Workflows, their versions, executions.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from graphrun.store.schema import JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("graph", sa.String(200), nullable=False),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("deleted_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_workflows_name", "workflows", ["name"])
    op.create_table(
        "workflow_versions",
        sa.Column("workflow_id", sa.Integer, sa.ForeignKey("workflows.id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("graph", sa.String(200), nullable=False),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "executions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workflow_id", sa.Integer, nullable=False),
        sa.Column("workflow_version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", JSONType, nullable=False),
        sa.Column("output", JSONType, nullable=True),
        sa.Column("error", JSONType, nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("timeout_s", sa.Float, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(
            ["workflow_id", "workflow_version"],
            ["workflow_versions.workflow_id", "workflow_versions.version"],
        ),
    )
    op.create_index("ix_executions_created", "executions", ["created_at", "id"])
    op.create_index("ix_executions_workflow", "executions", ["workflow_id", "created_at"])
    op.create_index("ix_executions_status", "executions", ["status", "created_at"])


def downgrade() -> None:
    op.drop_table("executions")
    op.drop_table("workflow_versions")
    op.drop_table("workflows")
