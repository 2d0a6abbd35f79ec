"""Citus: distribute the per-user tables by user_id, the rest as models/distribution.py says

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from models.distribution import distribute

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nothing on SQLite or PostgreSQL without the citus extension; env.py also runs this
    # after every upgrade, for tables restored (pg_restore) after this revision was stamped.
    distribute(op.get_bind())


def downgrade() -> None:
    # Distributed tables stay distributed: undistribute_table() copies every row back to the
    # coordinator, a decision for an operator, not a schema downgrade.
    pass
