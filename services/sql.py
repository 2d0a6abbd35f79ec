"""Small SQL helpers shared by the services."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table, and_, tuple_
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


def keys_in(columns: Sequence[Any], keys: Sequence[tuple[Any, ...]]) -> Any:
    """`(a, b, …) IN keys`, written so that an index on the columns is used.

    SQLite does not seek an index for a row-value IN list (it scans the index prefix); with
    each column's own IN list beside it, it seeks, and the row-value test keeps it exact.
    """
    each = [column.in_(list({key[i] for key in keys})) for i, column in enumerate(columns)]
    return and_(*each, tuple_(*columns).in_(list(keys)))
