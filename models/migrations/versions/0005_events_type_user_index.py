"""events: (environment, type, user, time) index for per-user event filters

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_events_env_type_user_time",
        "events",
        ["environment_id", "type", "user_id", "time_us"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_events_env_type_user_time", table_name="events")
