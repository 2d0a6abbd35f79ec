"""Small SQL helpers shared by the services."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")

# Keys per IN list: large enough that a page of nested data needs one statement, and small
# enough that tuple keys stay under the bound-parameter limits (SQLite 32,766; asyncpg 32,767).
IN_LIMIT = 5000


def chunks(items: Sequence[T], size: int = IN_LIMIT) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_ignoring_duplicates(conn: AsyncConnection, table: Table, keys: list[str]) -> Any:
    """INSERT … ON CONFLICT (keys) DO NOTHING for the connection's dialect."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=keys)
