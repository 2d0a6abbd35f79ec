"""Saved user filters and fixed user lists (segments); the segments table is environment-wide
and small (replicated to every shard); a static segment's members are per-user rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Micros


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    # Lower-cased name: names are unique per environment, ignoring case.
    name_key: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(4096))
    # DYNAMIC: members are whoever its filter selects when asked; STATIC: the users listed in
    # segment_members (its filter is then `{}`).
    kind: Mapped[str] = mapped_column(String(16), default="DYNAMIC", server_default="DYNAMIC")
    # The UserFilter as saved (contract field names; ids of definitions and segments as numbers).
    filter: Mapped[dict[str, Any]] = mapped_column()
    created_us: Mapped[int] = mapped_column(Micros)
    updated_us: Mapped[int] = mapped_column(Micros)

    __table_args__ = (UniqueConstraint("environment_id", "name_key"),)


class SegmentMember(Base):
    """A user listed in a static segment; a row of that user's (moved by merges, erased with
    the user), so on Citus it lives on the user's shard."""

    __tablename__ = "segment_members"

    environment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    added_us: Mapped[int] = mapped_column(Micros)

    __table_args__ = (
        # A user's memberships: merges move them, deleting the user erases them.
        Index("ix_segment_members_env_user", "environment_id", "user_id"),
    )
