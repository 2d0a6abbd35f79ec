"""Engine and transaction setup for SQLite (embedded) and PostgreSQL (production).

Writes go through `Database.write`, which gives one transaction and retries it when the
database reports a transient conflict. On SQLite there is a single writer path: one
in-process lock in front of a one-connection pool whose transactions begin IMMEDIATE, so
concurrent requests queue instead of failing; other processes wait on `busy_timeout`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

T = TypeVar("T")

# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock, unique violation
# (a concurrent writer created the same row first; the retry sees it and takes the other path).
RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}
MAX_ATTEMPTS = 5


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def normalise_url(url: str) -> str:
    """Map plain URLs to the async drivers we ship (sqlite → aiosqlite, postgresql → asyncpg)."""
    parsed = make_url(url)
    driver = {
        "sqlite": "sqlite+aiosqlite",
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
    }.get(parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False) if driver else url


def _is_retryable(error: DBAPIError) -> bool:
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    if sqlstate in RETRYABLE_SQLSTATES:
        return True
    # SQLite: another process holds the write lock longer than busy_timeout.
    return isinstance(error, OperationalError) and "database is locked" in str(error)


class Database:
    """The configured database: a read engine, a write path, and dialect facts."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = normalise_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        common: dict[str, Any] = {
            "echo": echo,
            "json_serializer": _dumps,
            "json_deserializer": orjson.loads,
        }
        if self.is_sqlite:
            self.engine = create_async_engine(self.url, pool_size=8, max_overflow=8, **common)
            self.write_engine = create_async_engine(self.url, pool_size=1, max_overflow=0, **common)
            _configure_sqlite(self.engine, begin="BEGIN")
            _configure_sqlite(self.write_engine, begin="BEGIN IMMEDIATE")
        else:
            self.engine = create_async_engine(
                self.url, pool_size=10, max_overflow=10, pool_pre_ping=True, **common
            )
            self.write_engine = self.engine
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self.statement_count = 0
        for engine in {self.engine, self.write_engine}:
            event.listen(engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith(("BEGIN", "PRAGMA")):  # count queries, not transaction control
            self.statement_count += 1

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading, inside a transaction that is rolled back at the end."""
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def _write_once(self) -> AsyncIterator[AsyncConnection]:
        if self._write_lock is None:
            async with self.write_engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.write_engine.begin() as conn:
            yield conn

    async def write(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `work` in one write transaction, committed before returning; retried on conflicts."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with self._write_once() as conn:
                    return await work(conn)
            except DBAPIError as error:
                if attempt == MAX_ATTEMPTS or not _is_retryable(error):
                    raise
                log.info(
                    "retrying write after transient conflict (attempt %d): %s", attempt, error.orig
                )
                await asyncio.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except (TimeoutError, OSError, DBAPIError):
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()


def _configure_sqlite(engine: AsyncEngine, *, begin: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that we can emit BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "busy_timeout=5000",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)
