"""aiosqlite connections that run a statement in one round trip to their worker thread.

Not behind USERTRAIL_FAST_PATHS, and no longer a speed-up: bench/internals.py (commit
ead9ea6, issue 18) measured Segment `/v1/batch` at 2,292 events/s with this driver and 4,232
with SQLAlchemy's own aiosqlite adapter (median of 3 runs each, 4 clients, a loaded 2-core
machine). It stays because the statement timeout and the SQL functions of property
conditions are installed through it; moving those to "connect" listeners of SQLAlchemy's
adapter would let it go. It reaches into aiosqlite 0.22 private fields (`_connection`,
`_cursor`, `_execute`, `_thread`): pyproject.toml bounds aiosqlite below 0.23 and
requirements.lock pins it.

aiosqlite runs every call on a connection's worker thread and hands the result back to the
event loop. SQLAlchemy's aiosqlite adapter makes four such calls per statement: make a cursor,
execute, fetch the rows, close the cursor. Each waits for the worker thread to take the GIL
and then for the event loop to come round; under ingestion load the loop is busy parsing other
requests, and a write transaction of some thirty statements spent more time in those waits
than in SQLite (Segment `/v1/batch`: 6,800 → 8,800 events/s with one trip, bench route
harness, interleaved runs).

Here a cursor is made and closed on the calling thread (a plain sqlite3 object; the
connection is opened with `check_same_thread=False`, SQLite is built serialized, and
SQLAlchemy runs one statement at a time on a connection), and `execute` fetches the
statement's rows in the same trip as it runs it. `fetchone`, `fetchmany`, `fetchall` and
iteration then read those rows without another trip. A cursor closed while its statement
still runs (its caller cancelled) is closed on the worker thread, after the statement.

Statement timeout: a connection made with `statement_timeout` stops any statement running
longer (SQLite answers "interrupted"), through a progress handler that SQLite calls every
PROGRESS_STEPS virtual-machine steps on the worker thread. The deadline is set on that
thread as the statement starts, so a statement whose caller went away still stops.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import make_url

ITER_CHUNK_SIZE = 64  # aiosqlite's default


class OneTripCursor(aiosqlite.Cursor):
    """An aiosqlite cursor whose `execute` returns with the statement's rows in hand."""

    def __init__(self, conn: aiosqlite.Connection, cursor: sqlite3.Cursor) -> None:
        super().__init__(conn, cursor)
        self._rows: deque[Any] = deque()
        self._running = False  # a statement of this cursor is on the worker thread

    def __await__(self) -> Generator[Any, None, OneTripCursor]:
        """`await connection.cursor()` works as with aiosqlite."""
        yield from ()
        return self

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> OneTripCursor:
        cursor = self._cursor

        def run() -> list[Any]:
            # aiosqlite's signature (overridden here) is wider than sqlite3's stubs.
            cursor.execute(sql, () if parameters is None else parameters)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

        self._rows = deque(await self._run(run))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> OneTripCursor:
        await self._run(partial(self._cursor.executemany, sql, parameters))  # type: ignore[arg-type]
        return self

    async def executescript(self, sql_script: str) -> OneTripCursor:
        await self._run(partial(self._cursor.executescript, sql_script))
        return self

    async def _run(self, work: Callable[[], Any]) -> Any:
        self._rows = deque()  # a failed statement leaves no rows of the one before

        def run() -> Any:
            try:
                return work()
            finally:  # on the worker thread: a cancelled caller's await ends before this
                self._running = False

        self._running = True
        return await self._execute(run)

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        wanted = self.arraysize if size is None else size
        count = len(self._rows) if wanted <= 0 else min(wanted, len(self._rows))  # as sqlite3
        return [self._rows.popleft() for _ in range(count)]

    async def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()
        if self._running:  # cancelled mid-statement: close after it, on the worker thread
            await self._execute(self._cursor.close)
        else:
            self._cursor.close()


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors are `OneTripCursor`s, made without a trip."""

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        if self._connection is None:  # as aiosqlite says it, which SQLAlchemy reads as a
            raise sqlite3.OperationalError("no active connection")  # lost connection
        return OneTripCursor(self, self._connection.cursor())


def connector(url: str) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    """An `async_creator` for `create_async_engine(url, async_creator=...)`: connections to
    the database of `url`, opened with the arguments SQLAlchemy would give sqlite3. The SQL
    functions and the statement timeout come from models/sqlite_connections.py."""
    args, kwargs = SQLiteDialect_aiosqlite().create_connect_args(make_url(url))
    connect = partial(sqlite3.connect, *args, **{**kwargs, "check_same_thread": False})

    async def create() -> aiosqlite.Connection:
        connection = OneTripConnection(connect, ITER_CHUNK_SIZE)
        connection._thread.daemon = True  # as SQLAlchemy's own aiosqlite connect does
        await connection
        return connection

    return create
