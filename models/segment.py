"""Saved user filters (segments); environment-wide and small, so replicable to every shard."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, String, UniqueConstraint
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
    # The UserFilter as saved (contract field names; ids of definitions and segments as numbers).
    filter: Mapped[dict[str, Any]] = mapped_column()
    created_us: Mapped[int] = mapped_column(Micros)
    updated_us: Mapped[int] = mapped_column(Micros)

    __table_args__ = (UniqueConstraint("environment_id", "name_key"),)
