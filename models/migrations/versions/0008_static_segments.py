"""static segments: segments.kind and the segment_members table (distributed on Citus)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 22:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.distribution import distribute

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "segments",
        sa.Column("kind", sa.String(length=16), nullable=False, server_default="DYNAMIC"),
    )
    op.create_table(
        "segment_members",
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("added_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "environment_id", "segment_id", "user_id", name=op.f("pk_segment_members")
        ),
    )
    op.create_index("ix_segment_members_env_user", "segment_members", ["environment_id", "user_id"])
    # On Citus: segment_members hash-distributed by user_id, co-located with users
    # (models/distribution.py); nothing elsewhere.
    distribute(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_segment_members_env_user", table_name="segment_members")
    op.drop_table("segment_members")
    op.drop_column("segments", "kind")
