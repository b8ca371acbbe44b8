"""SQLite never hands out an id twice: ``task``, ``run`` and ``authenticatable`` get
AUTOINCREMENT.

Without it SQLite gives a new row the largest id + 1, so deleting the newest task gave its id
(and its runs' ids) to the next task: a node that had handled the old run skipped the new one,
and a token naming the old id would have named the new row. PostgreSQL's sequences never
reuse ids; nothing changes there.

Revision ID: 0009_sqlite_ids
Revises: 0008_blobs
"""

from __future__ import annotations

from alembic import op

revision = "0009_sqlite_ids"
down_revision = "0008_blobs"
branch_labels = None
depends_on = None

TABLES = ("authenticatable", "task", "run")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:  # foreign keys are off during migrations (env.py): nothing cascades
        with op.batch_alter_table(table, recreate="always",
                                  table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def upgrade() -> None:
    """Rebuild the three tables with AUTOINCREMENT (SQLite only)."""
    _rebuild(True)


def downgrade() -> None:
    """Rebuild them without it (SQLite only)."""
    _rebuild(False)
