"""models/sqlite_driver: a statement is one round trip to the connection's worker thread, and
its rows read back as from any DB-API cursor."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from models.db import Database, DatabaseUnavailable
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
    await cursor.execute("SELECT n FROM t WHERE n > ?", (7,))
    assert await cursor.fetchmany(0) == [(8,), (9,), (10,)]  # as sqlite3: every row
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
    await cursor.execute("SELECT n FROM t")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await cursor.execute("SELECT * FROM missing")
    assert await cursor.fetchone() is None  # no rows left of the statement before
    await cursor.execute("SELECT count(*) FROM t")
    assert await cursor.fetchall() == [(10,)]


SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000) "
SLOW += "SELECT count(*) FROM c"


async def test_a_cursor_closed_while_its_statement_runs_waits_for_it(
    connection: OneTripConnection,
) -> None:
    """A caller cancelled mid-statement closes its cursor on the worker thread, after the
    statement, and sees its cancellation (not sqlite3's "recursive use of cursors")."""

    async def count() -> None:
        async with await connection.cursor() as cursor:
            await cursor.execute(SLOW)

    task = asyncio.create_task(count())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cursor = await connection.cursor()
    await cursor.execute("SELECT count(*) FROM t")
    assert await cursor.fetchall() == [(10,)]


async def test_a_closed_connection_is_read_as_lost_and_replaced(tmp_path: Path) -> None:
    """As with SQLAlchemy's own adapter: the pool drops a connection closed under it."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'closed.db'}")
    try:
        async with db.read() as conn:
            await conn.execute(text("SELECT 1"))
            raw = (await conn.get_raw_connection()).driver_connection
        await raw.close()
        with pytest.raises(DatabaseUnavailable):
            async with db.read() as conn:
                await conn.execute(text("SELECT 1"))
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await db.dispose()


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
