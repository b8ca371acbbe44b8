"""Replicas: the event table of the PostgreSQL bus, node streams, shared rate-limit counters.

Revision ID: 0006_events
Revises: 0005_ports
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_events"
down_revision = "0005_ports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``event``, ``node_stream`` and ``rate_limit_counter``."""
    op.create_table(
        "event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("collaboration_id", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_event_created_at", "event", ["created_at"])
    op.create_table(
        "node_stream",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("replica", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["authenticatable.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_node_stream_node_id", "node_stream", ["node_id"])
    op.create_index("ix_node_stream_replica", "node_stream", ["replica"])
    op.create_index("ix_node_stream_seen_at", "node_stream", ["seen_at"])
    op.create_table(
        "rate_limit_counter",
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_rate_limit_counter_expires_at", "rate_limit_counter", ["expires_at"])


def downgrade() -> None:
    """Drop the three tables (their indexes go with them)."""
    op.drop_table("rate_limit_counter")
    op.drop_table("node_stream")
    op.drop_table("event")
