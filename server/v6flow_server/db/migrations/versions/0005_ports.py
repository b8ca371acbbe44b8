"""Ports of algorithm runs: the ``algorithm_port`` table (``POST/GET/DELETE /port``).

Revision ID: 0005_ports
Revises: 0004_audit
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_ports"
down_revision = "0004_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table; a run's ports go with the run (``ON DELETE CASCADE``)."""
    op.create_table(
        "algorithm_port",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "port"),
    )
    with op.batch_alter_table("algorithm_port", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_algorithm_port_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    """Drop the table (its index goes with it)."""
    op.drop_table("algorithm_port")
