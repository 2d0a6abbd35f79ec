"""event definitions, definition matches, rage clicks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 06:14:03.730725
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_definitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("name_key", sa.String(length=255), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=False),
        sa.Column("description", sa.String(length=4096), nullable=True),
        sa.Column(
            "criteria", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_definitions")),
        sa.UniqueConstraint(
            "environment_id", "name_key", name=op.f("uq_event_definitions_environment_id_name_key")
        ),
    )
    op.create_table(
        "definition_matches",
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("definition_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("conditions", sa.Integer(), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "environment_id",
            "user_id",
            "event_id",
            "definition_id",
            name=op.f("pk_definition_matches"),
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("definition_matches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_definition_matches_env_def_time",
            ["environment_id", "definition_id", "time_us"],
            unique=False,
        )
        batch_op.create_index(
            "ix_definition_matches_env_def_user",
            ["environment_id", "definition_id", "user_id", "time_us"],
            unique=False,
        )
    op.create_table(
        "rage_clicks",
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint(
            "environment_id", "user_id", "event_id", name=op.f("pk_rage_clicks")
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("rage_clicks")
    with op.batch_alter_table("definition_matches", schema=None) as batch_op:
        batch_op.drop_index("ix_definition_matches_env_def_user")
        batch_op.drop_index("ix_definition_matches_env_def_time")
    op.drop_table("definition_matches")
    op.drop_table("event_definitions")
