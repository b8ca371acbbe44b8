"""Accounts: lockout window and lock, TOTP enrolment, mailed reset tokens.

The columns are added with plain ``ALTER TABLE … ADD/DROP COLUMN``, also on SQLite: batch
mode would copy ``user`` and drop the original, and with ``PRAGMA foreign_keys=ON`` that
drop deletes every ``user_role``/``user_rule`` row through ``ON DELETE CASCADE``.

Revision ID: 0003_accounts
Revises: 0002_studies
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_accounts"
down_revision = "0002_studies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    for column in _user_columns():
        op.add_column("user", column)
    op.create_table(
        "account_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_account_token_user_id", "account_token", ["user_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_account_token_user_id", table_name="account_token")
    op.drop_table("account_token")
    for column in reversed(_user_columns()):
        op.execute(f'ALTER TABLE "user" DROP COLUMN {column.name}')


def _user_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("failed_login_since", sa.DateTime(), nullable=True),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("otp_secret", sa.Text(), nullable=True),
        sa.Column("otp_confirmed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("otp_last_step", sa.BigInteger(), nullable=True),
    ]
