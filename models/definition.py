"""Event definitions (environment-wide) and their per-user side tables: matches, rage clicks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Document, Micros, SmallKey


class EventDefinition(Base):
    """A named OR of criteria over raw events; small, so replicated to every shard on Citus."""

    __tablename__ = "event_definitions"

    id: Mapped[int] = mapped_column(SmallKey, primary_key=True, autoincrement=True)
    environment_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    # The name case-folded: names are unique per environment whatever their casing.
    name_key: Mapped[str] = mapped_column(String(255))
    color: Mapped[str] = mapped_column(String(7))
    description: Mapped[str | None] = mapped_column(String(4096))
    # [{type, selector, target_text, path, properties}], see services/matching.py.
    criteria: Mapped[list[dict[str, Any]]] = mapped_column(Document)
    created_us: Mapped[int] = mapped_column(Micros)
    updated_us: Mapped[int] = mapped_column(Micros)

    __table_args__ = (UniqueConstraint("environment_id", "name_key"),)


class DefinitionMatch(Base):
    """An event that a definition matches; filled by the backfill and by ingestion."""

    __tablename__ = "definition_matches"

    environment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    definition_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Conditions of the most specific criterion that matched: the precedence rule of SPEC §4.
    conditions: Mapped[int] = mapped_column(Integer)
    time_us: Mapped[int] = mapped_column(Micros)  # the event's time, for counts in a range

    __table_args__ = (
        Index("ix_definition_matches_env_def_time", "environment_id", "definition_id", "time_us"),
        Index(
            "ix_definition_matches_env_def_user",
            "environment_id",
            "definition_id",
            "user_id",
            "time_us",
        ),
        # The primary key is the table on SQLite: one B-tree fewer to fill per match.
        {"sqlite_with_rowid": False},
    )


class RageClick(Base):
    """A click that belongs to a rage-click burst (SPEC §3)."""

    __tablename__ = "rage_clicks"

    environment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)

    __table_args__ = ({"sqlite_with_rowid": False},)
