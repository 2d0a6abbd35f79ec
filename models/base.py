"""Declarative base and the column types every table shares."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Integer, MetaData, Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase

# Times are stored as integer microseconds since the Unix epoch (UTC): identical on
# SQLite and PostgreSQL, exact to the microsecond, and cheap to compare and index.
Micros = BigInteger

# JSON documents: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
Document = JSON().with_variant(JSONB(), "postgresql")

# An auto-incrementing integer key on both dialects (SQLite needs plain INTEGER for rowid aliasing).
SmallKey = Integer

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(AsyncAttrs, DeclarativeBase):
    """Base of every mapped table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Every mapping here is a plain table (SQLAlchemy types `__table__` as any FromClause,
    # which its insert/update/delete and our helpers taking a Table refuse).
    __table__: ClassVar[Table]
    type_annotation_map: dict[Any, Any] = {dict[str, Any]: Document}
