"""users: event and session counts, the sort-key change time, their indexes, user_versions

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 22:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from models.distribution import distribute

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OF_USER = "x.environment_id = users.environment_id AND x.user_id = users.user_id"
DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "user_versions",
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("until_us", sa.BigInteger(), nullable=False),
        sa.Column("identity", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=1024), nullable=True),
        sa.Column("properties", DOCUMENT, nullable=False),
        sa.Column("autocaptured", DOCUMENT, nullable=False),
        sa.Column("first_seen_us", sa.BigInteger(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("session_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "environment_id", "user_id", "until_us", name=op.f("pk_user_versions")
        ),
    )
    # On Citus, before any multi-shard statement of this transaction: a table is distributed
    # in sequential mode, which a parallel query earlier in the transaction rules out.
    distribute(op.get_bind())
    op.add_column(
        "users", sa.Column("event_count", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "users", sa.Column("session_count", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "users", sa.Column("sorted_us", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.execute(
        "UPDATE users SET "
        f"event_count = (SELECT count(*) FROM events x WHERE {OF_USER}), "
        f"session_count = (SELECT count(*) FROM sessions x WHERE {OF_USER})"
    )
    for name, columns in (
        ("ix_users_env_first_seen", ["environment_id", "first_seen_us", "user_id"]),
        ("ix_users_env_event_count", ["environment_id", "event_count", "user_id"]),
        ("ix_users_env_session_count", ["environment_id", "session_count", "user_id"]),
        ("ix_users_env_sorted", ["environment_id", "sorted_us"]),
    ):
        op.create_index(name, "users", columns, unique=False)


def downgrade() -> None:
    op.drop_table("user_versions")
    for name in (
        "ix_users_env_sorted",
        "ix_users_env_session_count",
        "ix_users_env_event_count",
        "ix_users_env_first_seen",
    ):
        op.drop_index(name, table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("sorted_us")
        batch.drop_column("session_count")
        batch.drop_column("event_count")
