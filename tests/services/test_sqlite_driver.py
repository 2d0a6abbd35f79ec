"""models/sqlite_driver: a statement is one round trip to the connection's worker thread, and
its rows read back as from any DB-API cursor."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from models.db import Database
from models.sqlite_driver import OneTripConnection, connector


@pytest.fixture
async def connection(tmp_path: Path) -> OneTripConnection:
    conn = await connector(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")()
    assert isinstance(conn, OneTripConnection)
    await conn.execute("CREATE TABLE t (n INTEGER)")
    await conn.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(1, 11)])
    yield conn
    await conn.close()


async def test_rows_read_back_in_order_by_every_fetch(connection: OneTripConnection) -> None:
    cursor = await connection.cursor()
    await cursor.execute("SELECT n FROM t ORDER BY n")
    assert await cursor.fetchone() == (1,)
    assert await cursor.fetchmany(3) == [(2,), (3,), (4,)]
    cursor.arraysize = 2
    assert await cursor.fetchmany() == [(5,), (6,)]
    assert await cursor.fetchall() == [(7,), (8,), (9,), (10,)]
    assert await cursor.fetchone() is None
    assert await cursor.fetchall() == []
    await cursor.execute("SELECT n FROM t WHERE n > ?", (8,))
    assert [row async for row in cursor] == [(9,), (10,)]
    await cursor.execute("UPDATE t SET n = n + 100 WHERE n <= ?", (3,))
    assert cursor.rowcount == 3 and await cursor.fetchall() == []
    await cursor.close()


async def test_a_failing_statement_raises_and_the_connection_goes_on(
    connection: OneTripConnection,
) -> None:
    cursor = await connection.cursor()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await cursor.execute("SELECT * FROM missing")
    await cursor.execute("SELECT count(*) FROM t")
    assert await cursor.fetchall() == [(10,)]


async def test_sqlalchemy_statements_make_one_trip_each(tmp_path: Path) -> None:
    """Through the engine (cursor made, executed, rows fetched, cursor closed): one call on the
    worker thread per statement, where SQLAlchemy's own adapter makes four."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'trips.db'}")
    try:
        async with db.read() as conn:
            await conn.execute(text("SELECT 1"))  # the transaction begins
            raw = (await conn.get_raw_connection()).driver_connection
            trips = 0
            execute = raw._execute

            async def counted(function, *args, **kwargs):  # type: ignore[no-untyped-def]
                nonlocal trips
                trips += 1
                return await execute(function, *args, **kwargs)

            raw._execute = counted
            try:
                rows = (await conn.execute(text("SELECT 1 UNION ALL SELECT 2"))).all()
                await conn.execute(text("SELECT 3"))
            finally:
                del raw._execute
        assert rows == [(1,), (2,)]
        assert trips == 2
    finally:
        await db.dispose()
