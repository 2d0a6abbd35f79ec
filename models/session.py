"""Sessions: derived from a user's events by the sessionizer, never written by clients."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Micros


class Session(Base):
    __tablename__ = "sessions"

    environment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    origin: Mapped[str] = mapped_column(String(8))  # CLIENT | SERVER
    source: Mapped[str] = mapped_column(String(8))  # WEB | IOS | ANDROID | SERVER
    client_session_id: Mapped[str | None] = mapped_column(String(255))
    start_us: Mapped[int] = mapped_column(Micros)
    end_us: Mapped[int] = mapped_column(Micros)  # time of the last event, server events included
    # End of the active window [start, active_until): last client event + timeout for client
    # sessions, start + 30 min for server-only ones.
    active_until_us: Mapped[int] = mapped_column(Micros)
    # The event whose traits the session shows (first client event; first event if server-only).
    first_event_id: Mapped[int] = mapped_column(BigInteger)
    event_count: Mapped[int] = mapped_column(Integer)
    browser: Mapped[str | None] = mapped_column(String(255))
    platform: Mapped[str | None] = mapped_column(String(255))
    device_type: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(255))
    region: Mapped[str | None] = mapped_column(String(255))
    city: Mapped[str | None] = mapped_column(String(255))
    landing_page: Mapped[str | None] = mapped_column(String(4096))
    referrer: Mapped[str | None] = mapped_column(String(4096))
    utm: Mapped[dict[str, Any]] = mapped_column(default=dict)
    replay_available: Mapped[bool] = mapped_column(default=False)
    # Pages of the first and last page view (else client event with a page) and the number of
    # page views (services.sessionize); null/0 for server-only sessions. Stored so that
    # filters on them are plain column conditions.
    entry_page: Mapped[str | None] = mapped_column(String(4096))
    exit_page: Mapped[str | None] = mapped_column(String(4096))
    pageview_count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_sessions_env_user_start", "environment_id", "user_id", "start_us"),
        Index("ix_sessions_env_user_active", "environment_id", "user_id", "active_until_us"),
        Index("ix_sessions_env_start", "environment_id", "start_us"),
    )
