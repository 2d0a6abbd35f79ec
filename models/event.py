"""Raw events, as ingested; their session_id is maintained by the sessionizer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Micros


class Event(Base):
    __tablename__ = "events"

    environment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    session_id: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(1024))
    time_us: Mapped[int] = mapped_column(Micros)
    source: Mapped[str] = mapped_column(String(8))
    client_session_id: Mapped[str | None] = mapped_column(String(255))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What the caller said about where the event came from (user agent, url, location, ...).
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    replay: Mapped[bool] = mapped_column(default=False)
    received_us: Mapped[int] = mapped_column(Micros)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index("ix_events_env_user_time", "environment_id", "user_id", "time_us"),
        Index("ix_events_env_user_session", "environment_id", "user_id", "session_id", "time_us"),
        Index("ix_events_env_type_time", "environment_id", "type", "time_us"),
        # Users filters: one user's events of a type in a range (a users page probes each
        # user), and a type's events grouped by user, without a sort (counting members).
        Index("ix_events_env_type_user_time", "environment_id", "type", "user_id", "time_us"),
    )


class IdempotencyKey(Base):
    """Keys seen per environment (GraphQL/Heap idempotencyKey, Segment messageId)."""

    __tablename__ = "idempotency_keys"

    environment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    created_us: Mapped[int] = mapped_column(Micros)
