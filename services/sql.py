"""Small SQL helpers shared by the services."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any, TypeVar

import orjson
from sqlalchemy import JSON, Table, and_, tuple_
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


async def insert_rows(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    encoded: bool = False,
) -> None:
    """A plain INSERT of many rows (dicts with every column), at the driver's own speed.

    SQLAlchemy's executemany processes every parameter of every row in Python; for the bulk
    inserts of ingestion this writes the rows itself: one `executemany` of tuples on SQLite,
    one binary COPY on PostgreSQL (asyncpg's `copy_records_to_table`, inside the open
    transaction). JSON columns are serialised here (orjson), unless `encoded` says the rows
    hold them as JSON text already; no statement events fire.
    """
    if not rows:
        return
    columns = list(table.columns)
    names = [column.name for column in columns]
    values = itemgetter(*names)
    documents = [i for i, column in enumerate(columns) if isinstance(column.type, JSON)]
    if encoded or not documents:
        records = [values(row) for row in rows]
    else:
        records = []
        for row in rows:
            record = list(values(row))
            for i in documents:
                record[i] = orjson.dumps(record[i]).decode()
            records.append(tuple(record))
    if conn.dialect.name != "postgresql":
        marks = ", ".join("?" * len(names))
        await conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", records
        )
        return
    raw = await conn.get_raw_connection()
    adapted = raw.dbapi_connection
    assert adapted is not None  # a checked-out connection has its driver connection
    if getattr(adapted, "_transaction", None) is None:  # asyncpg begins on the first statement
        await conn.exec_driver_sql("SELECT 1")
    await adapted.driver_connection.copy_records_to_table(
        table.name, records=records, columns=names
    )
