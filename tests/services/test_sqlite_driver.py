"""models/sqlite_driver: a statement is one round trip to the connection's worker thread, and
its rows read back as from any DB-API cursor. With USERTRAIL_FAST_PATHS off, SQLite goes
through SQLAlchemy's stock aiosqlite adapter, with the same SQL functions and timeout."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import literal, select, text
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection

from models.db import Database, DatabaseUnavailable, StatementTimeout
from models.property_values import fold
from models.sqlite_driver import OneTripConnection, connector
from services.condition_sql import TextColumn, condition_sql
from services.conditions import PropertyCondition, validate

# Counts to a billion: minutes of work, stopped by any statement timeout.
ENDLESS = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
    "SELECT count(*) FROM n"
)


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


@pytest.mark.parametrize("fast_paths", [True, False], ids=["driver", "stock"])
async def test_a_closed_connection_is_read_as_lost_and_replaced(
    tmp_path: Path, fast_paths: bool
) -> None:
    """As with SQLAlchemy's own adapter: the pool drops a connection closed under it."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'closed.db'}", fast_paths=fast_paths)
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


@pytest.mark.parametrize(
    ("fast_paths", "trips_per_statement"), [(True, 1), (False, 4)], ids=["driver", "stock"]
)
async def test_sqlalchemy_statements_make_one_trip_each(
    tmp_path: Path, fast_paths: bool, trips_per_statement: int
) -> None:
    """Through the engine (cursor made, executed, rows fetched, cursor closed): one call on the
    worker thread per statement, where SQLAlchemy's own adapter makes four."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'trips.db'}", fast_paths=fast_paths)
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
        assert trips == 2 * trips_per_statement
    finally:
        await db.dispose()


@pytest.mark.parametrize("fast_paths", [True, False], ids=["driver", "stock"])
async def test_both_drivers_get_the_sql_functions_and_the_statement_timeout(
    tmp_path: Path, fast_paths: bool
) -> None:
    """The setting picks the driver; the SQL functions of property conditions and the read
    statement timeout come with either, and writes stay without a timeout."""
    db = Database(
        f"sqlite+aiosqlite:///{tmp_path / 'either.db'}",
        statement_timeout=0.5,
        fast_paths=fast_paths,
    )
    try:
        async with db.read() as conn:
            adapted = (await conn.get_raw_connection()).dbapi_connection
            assert isinstance(adapted, AsyncAdapt_aiosqlite_connection)
            driver = adapted.driver_connection
            assert isinstance(driver, OneTripConnection) is fast_paths
            folded = await conn.execute(
                text("SELECT usertrail_fold(:value) = :folded"),
                {"value": "ÉCOLE Straße", "folded": fold("ÉCOLE Straße")},
            )
            assert folded.scalar() == 1
            # CONTAINS compiles to usertrail_fold on SQLite.
            contains = validate(PropertyCondition("name", "CONTAINS", "école"), "c")
            operand = TextColumn(literal("ÉCOLE Straße"), db.dialect)
            assert (await conn.execute(select(condition_sql(contains, operand)))).scalar() == 1
        with pytest.raises(StatementTimeout):
            async with db.read() as conn:
                await conn.execute(text(ENDLESS))
        async with db.read() as conn:  # the connection goes on, with a fresh deadline
            assert (await conn.execute(text("SELECT count(*) FROM sqlite_master"))).scalar() == 0
            await asyncio.sleep(0.6)  # past the last statement's deadline: no leftover stops it
            few = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)"
            assert (await conn.execute(text(few + " SELECT count(*) FROM n"))).scalar() == 50000

        async def write(conn):  # type: ignore[no-untyped-def]
            slow = ENDLESS.replace("1000000000", "3000000")  # seconds: past the read timeout
            return (await conn.execute(text(slow))).scalar()

        assert await db.write(write) == 3000000
    finally:
        await db.dispose()
