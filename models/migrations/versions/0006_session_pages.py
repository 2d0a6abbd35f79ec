"""sessions: entry page, exit page and page view count, backfilled from the events

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The page of an event as services.sessionize.event_page reads it: a client event's `path`
# property, else a screenview's `name`, when a non-empty string, cut to 4096 characters.
PAGE = {
    "sqlite": (
        "CASE WHEN e.source <> 'SERVER' THEN COALESCE("
        "CASE WHEN json_type(e.properties, '$.path') = 'text' "
        "AND json_extract(e.properties, '$.path') <> '' "
        "THEN substr(json_extract(e.properties, '$.path'), 1, 4096) END, "
        "CASE WHEN e.type = 'screenview' AND json_type(e.properties, '$.name') = 'text' "
        "AND json_extract(e.properties, '$.name') <> '' "
        "THEN substr(json_extract(e.properties, '$.name'), 1, 4096) END) END"
    ),
    "postgresql": (
        "CASE WHEN e.source <> 'SERVER' THEN COALESCE("
        "CASE WHEN jsonb_typeof(e.properties -> 'path') = 'string' "
        "AND e.properties ->> 'path' <> '' THEN left(e.properties ->> 'path', 4096) END, "
        "CASE WHEN e.type = 'screenview' AND jsonb_typeof(e.properties -> 'name') = 'string' "
        "AND e.properties ->> 'name' <> '' THEN left(e.properties ->> 'name', 4096) END) END"
    ),
}
OF_SESSION = (
    "e.environment_id = sessions.environment_id AND e.user_id = sessions.user_id "
    "AND e.session_id = sessions.id"
)
PAGE_VIEW = "e.source <> 'SERVER' AND e.type IN ('pageview', 'screenview')"


def _page(page: str, order: str, *, page_views_only: bool) -> str:
    narrowing = f" AND {PAGE_VIEW}" if page_views_only else ""
    return (
        f"(SELECT {page} FROM events e WHERE {OF_SESSION}{narrowing} AND ({page}) IS NOT NULL "
        f"ORDER BY e.time_us {order}, e.id {order} LIMIT 1)"
    )


def upgrade() -> None:
    op.add_column("sessions", sa.Column("entry_page", sa.String(4096), nullable=True))
    op.add_column("sessions", sa.Column("exit_page", sa.String(4096), nullable=True))
    op.add_column(
        "sessions",
        sa.Column("pageview_count", sa.Integer(), nullable=False, server_default="0"),
    )
    page = PAGE[op.get_bind().dialect.name]
    entry, exit_ = (
        f"COALESCE({_page(page, order, page_views_only=True)}, "
        f"{_page(page, order, page_views_only=False)})"
        for order in ("ASC", "DESC")
    )
    op.execute(
        "UPDATE sessions SET "
        f"pageview_count = (SELECT count(*) FROM events e WHERE {OF_SESSION} AND {PAGE_VIEW}), "
        f"entry_page = {entry}, exit_page = {exit_} "
        "WHERE origin = 'CLIENT'"
    )


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("pageview_count")
        batch.drop_column("exit_page")
        batch.drop_column("entry_page")
