"""Blob store: the ``blob`` table, and ``run.result_in_blob`` beside ``blob_storage_used``.

Revision ID: 0008_blobs
Revises: 0007_flow_run_id
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_blobs"
down_revision = "0007_flow_run_id"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``blob`` (with its indexes) and add ``run.result_in_blob`` (false)."""
    op.create_table(
        "blob",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("uploader", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=8), nullable=True),
        sa.Column("dead", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("blob", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blob_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_blob_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_blob_dead"), ["dead"], unique=False)
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result_in_blob", sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade() -> None:
    """Drop the column and the table (the blobs' bytes stay in the store)."""
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("result_in_blob")
    with op.batch_alter_table("blob", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blob_dead"))
        batch_op.drop_index(batch_op.f("ix_blob_run_id"))
        batch_op.drop_index(batch_op.f("ix_blob_created_at"))
    op.drop_table("blob")
