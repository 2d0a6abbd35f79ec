"""API keys: random secrets stored only as hashes, each bound to one environment and scope."""

from __future__ import annotations

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Micros


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment_id: Mapped[int] = mapped_column(Integer)
    scope: Mapped[str] = mapped_column(String(16))  # ingest | read | admin
    # SHA-256 of the key: keys are 256-bit random secrets, so a fast hash cannot be brute-forced.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings to tell keys apart
    label: Mapped[str | None] = mapped_column(String(255))
    created_us: Mapped[int] = mapped_column(Micros)
    revoked_us: Mapped[int | None] = mapped_column(Micros)

    __table_args__ = (Index("ix_api_keys_env", "environment_id"),)
