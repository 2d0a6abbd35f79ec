"""An environment: the unit of data isolation (Heap's app_id)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Micros, SmallKey


class Environment(Base):
    __tablename__ = "environments"

    id: Mapped[int] = mapped_column(SmallKey, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    # The public id integrations send as Heap's `app_id`.
    app_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_us: Mapped[int] = mapped_column(Micros)
