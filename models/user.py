"""Users and the aliases that route external ids to them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Micros


class User(Base):
    """One person in one environment; all of their rows share (environment_id, user_id)."""

    __tablename__ = "users"

    environment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    identity: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(1024))
    # Custom properties set by addUserProperties / traits.
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # "Initial Browser", "Initial Landing Page", ... from the earliest session (SPEC §7).
    autocaptured: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Earliest and latest event time; the creation time while the user has no events.
    first_seen_us: Mapped[int] = mapped_column(Micros)
    last_seen_us: Mapped[int] = mapped_column(Micros)
    created_us: Mapped[int] = mapped_column(Micros)
    # When last_seen_us last changed (received time): users listings keep a snapshot
    # order across pages by recomputing the order key of users changed after the snapshot.
    activity_us: Mapped[int] = mapped_column(Micros)
    has_events: Mapped[bool] = mapped_column(default=False)
    # Stored events and sessions (kept by the Counts projection), so users sort by them.
    event_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    session_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When a sort key other than last seen (first seen, counts, properties) last changed
    # (received time); the values before each such change are kept in `user_versions`.
    sorted_us: Mapped[int] = mapped_column(Micros, default=0, server_default="0")

    __table_args__ = (
        # The users list: newest activity first, keyset on (last_seen_us, user_id).
        Index("ix_users_env_last_seen", "environment_id", "last_seen_us", "user_id"),
        # Identities are unique through user_aliases' primary key; this index is for lookups.
        Index("ix_users_env_identity", "environment_id", "identity"),
        Index("ix_users_env_activity", "environment_id", "activity_us"),
        # The users list in its other orders (services/user_order.py).
        Index("ix_users_env_first_seen", "environment_id", "first_seen_us", "user_id"),
        Index("ix_users_env_event_count", "environment_id", "event_count", "user_id"),
        Index("ix_users_env_session_count", "environment_id", "session_count", "user_id"),
        Index("ix_users_env_sorted", "environment_id", "sorted_us"),
    )


class UserVersion(Base):
    """A user's sort keys as they were until `until_us` (the received time of a change):
    a listing sorted as of a snapshot places a user changed since by its version then."""

    __tablename__ = "user_versions"

    environment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    until_us: Mapped[int] = mapped_column(Micros, primary_key=True)
    identity: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(1024))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    autocaptured: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen_us: Mapped[int] = mapped_column(Micros)
    event_count: Mapped[int] = mapped_column(Integer)
    session_count: Mapped[int] = mapped_column(Integer)


class UserAlias(Base):
    """An external key that routes to a user.

    kinds: ``identity`` (every identified user has one; the primary key makes identities
    unique per environment), ``user_id`` (the userId of a user merged away keeps routing to
    the user it was merged into), ``anonymous_id`` (Segment's anonymousId).
    """

    __tablename__ = "user_aliases"

    environment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    alias: Mapped[str] = mapped_column(String(1024), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_user_aliases_env_user", "environment_id", "user_id"),)
