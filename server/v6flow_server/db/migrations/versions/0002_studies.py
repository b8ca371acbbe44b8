"""Studies: a study table, its organizations (study_member) and task.study_id → study.id.

SQLite cannot add a foreign key to an existing column. On SQLite the upgrade drops the column
and adds it again with its ``REFERENCES`` clause (``ALTER TABLE … DROP/ADD COLUMN`` touch no
other row); the downgrade copies the table (once 0009 rebuilt it, the key is a table
constraint, which DROP COLUMN refuses). Foreign keys are off while migrations run (env.py),
so a copied table's drop deletes nothing through ``ON DELETE CASCADE``.
Revision 0001 never wrote ``task.study_id`` (it was always NULL), so nothing is lost.

Revision ID: 0002_studies
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_studies"
down_revision = "0001"
branch_labels = None
depends_on = None

_FK_NAME = "task_study_id_fkey"  # PostgreSQL's own name for an unnamed column foreign key


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "study",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("collaboration_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["collaboration_id"], ["collaboration.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_study_collaboration_id", "study", ["collaboration_id"])
    op.create_table(
        "study_member",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("study_id", "organization_id"),
    )
    if _sqlite():
        op.execute("ALTER TABLE task DROP COLUMN study_id")
        op.execute("ALTER TABLE task ADD COLUMN study_id INTEGER REFERENCES study (id)")
    else:
        op.create_foreign_key(_FK_NAME, "task", "study", ["study_id"], ["id"])
    op.create_index("ix_task_study_id", "task", ["study_id"])


def downgrade() -> None:
    """Revert this revision (tasks keep their rows; their study link is dropped)."""
    op.drop_index("ix_task_study_id", table_name="task")
    if _sqlite():  # a copy of the table (foreign keys are off during migrations: env.py)
        with op.batch_alter_table("task", recreate="always") as batch:
            batch.drop_column("study_id")
        op.execute("ALTER TABLE task ADD COLUMN study_id INTEGER")
    else:
        op.drop_constraint(_FK_NAME, "task", type_="foreignkey")
        op.execute("UPDATE task SET study_id = NULL")
    op.drop_table("study_member")
    op.drop_index("ix_study_collaboration_id", table_name="study")
    op.drop_table("study")
