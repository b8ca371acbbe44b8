"""The Prefect flow run that created a task: ``task.flow_run_id`` (UUID text, nullable).

A plain ``ADD COLUMN`` on both backends: Alembic's batch mode would copy and drop the
``task`` table on SQLite, and dropping it deletes every run through ``ON DELETE CASCADE``
(see 0002_studies). Existing tasks keep NULL.

Revision ID: 0007_flow_run_id
Revises: 0006_events
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_flow_run_id"
# The head this branch started from; the lead re-chains the 0002 migrations when merging.
down_revision = "0006_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("task", sa.Column("flow_run_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    """Revert this revision (the flow-run links are dropped; tasks and runs are kept)."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE task DROP COLUMN flow_run_id")
    else:
        op.drop_column("task", "flow_run_id")
