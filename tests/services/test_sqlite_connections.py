"""models/sqlite_connections: SQLite connections of SQLAlchemy's stock aiosqlite adapter get
the SQL functions of property conditions and, on reads, the statement timeout."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import literal, select, text
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection

from models.db import Database, DatabaseUnavailable, StatementTimeout
from models.property_values import fold
from services.condition_sql import TextColumn, condition_sql
from services.conditions import PropertyCondition, validate

# Counts to a billion: minutes of work, stopped by any statement timeout.
ENDLESS = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
    "SELECT count(*) FROM n"
)


async def test_a_closed_connection_is_read_as_lost_and_replaced(tmp_path: Path) -> None:
    """The pool drops a connection closed under it, and `read` says the database is away."""
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


async def test_the_stock_adapter_gets_the_sql_functions_and_the_statement_timeout(
    tmp_path: Path,
) -> None:
    """SQLAlchemy's own aiosqlite adapter, with the SQL functions of property conditions and
    the read statement timeout; writes stay without a timeout."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}", statement_timeout=0.5)
    try:
        async with db.read() as conn:
            adapted = (await conn.get_raw_connection()).dbapi_connection
            assert isinstance(adapted, AsyncAdapt_aiosqlite_connection)
            assert type(adapted.driver_connection) is aiosqlite.Connection
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
