"""Sub-workflow dependencies.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflow_deps",
        sa.Column("parent_id", sa.Integer, primary_key=True),
        sa.Column("child_id", sa.Integer, primary_key=True),
    )
    op.create_index("ix_workflow_deps_child", "workflow_deps", ["child_id"])


def downgrade() -> None:
    op.drop_table("workflow_deps")
