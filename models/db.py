"""Engine and transaction setup for SQLite (embedded) and PostgreSQL (production).

Writes go through `Database.write`, which gives one transaction, committed before it
returns, and retries it when the database reports a transient conflict. On SQLite there is
a single writer path: one in-process lock in front of a one-connection pool whose
transactions begin IMMEDIATE, so concurrent requests queue instead of failing; other
processes wait on `busy_timeout`.

Outages surface in one shape: `read` and `write` turn every error that means "the database
cannot be reached, or stays busy" (refused or lost connections, a server shutting down,
SQLite locked past its timeout, conflicts still failing after the retries) into
`DatabaseUnavailable`. Routes answer it with HTTP 503 and `Retry-After`, GraphQL with an
error coded UNAVAILABLE; the pool (pre-ping on PostgreSQL) reconnects once the database is
back, without a restart. Any other database error is a bug and stays what it is.

Reads are bounded in time: with `statement_timeout` (seconds; the server passes
USERTRAIL_STATEMENT_TIMEOUT), every statement on a read connection that runs longer is
stopped by the database (PostgreSQL's `statement_timeout`; on SQLite a progress handler,
models/sqlite_connections.py), and `read` raises `StatementTimeout`. The connection stays usable:
the read transaction is rolled back as always. Writes have no statement timeout: their work
is bounded by the input limits, a definition's backfill reads every stored event by design,
and a write stopped halfway would be retried by SDKs again and again.

Length: engines, transactions and every kind of outage turned into one named exception
(STYLE.md names this module as the example): they are one concept, the database's edge.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from models import distribution, sqlite_connections

log = logging.getLogger(__name__)

T = TypeVar("T")

# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock, unique violation
# (a concurrent writer created the same row first; the retry sees it and takes the other path).
RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}
MAX_ATTEMPTS = 5
# SQLSTATEs of a server that cannot serve: class 08 (connection exception), shutting down or
# starting (57P01-57P03), too many connections (53300).
UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}
# Driver messages of a lost connection or a database that cannot be opened or written.
UNAVAILABLE_MESSAGES = (
    "connection is closed",
    "connection was closed",
    "database is locked",
    "unable to open database file",
    "disk i/o error",
)
# Seconds a client should wait before retrying after an outage (the `Retry-After` header).
RETRY_AFTER_SECONDS = 2
# asyncpg waits 60 s for a server that does not answer; requests should fail fast instead.
CONNECT_TIMEOUT_SECONDS = 5
# SQLite: the writer never checkpoints the WAL inside a commit; a background thread does,
# after a commit, at most this often (see `Checkpointer`).
CHECKPOINT_INTERVAL_SECONDS = 0.1


# SQLSTATE of a statement cancelled by PostgreSQL, here always by `statement_timeout`.
QUERY_CANCELED = "57014"
# What sqlite3 says of a statement stopped by the progress handler (or `interrupt()`).
SQLITE_INTERRUPTED = "interrupted"


class StatementTimeout(Exception):
    """A read statement ran past the statement timeout and the database stopped it.

    No OSError: it is no outage, and retrying the same request would time out again.
    """

    code = "QUERY_TIMEOUT"

    def __init__(self, seconds: float):
        super().__init__(f"a statement ran longer than the statement timeout of {seconds:g} s")
        self.seconds = seconds


class DatabaseUnavailable(ConnectionError):
    """The database cannot be reached or stays busy; the client should retry later.

    A ConnectionError (so an OSError) on purpose: it is no domain error, so resolvers never
    turn it into a payload error, and every handler of connection failures catches it.
    A write that fails this way was not acknowledged; when the connection broke during
    COMMIT it may have been stored all the same, which idempotency keys make harmless.
    """

    code = "UNAVAILABLE"

    def __init__(self, message: str = "the database is unavailable; retry later"):
        super().__init__(message)
        self.message = message
        self.retry_after = RETRY_AFTER_SECONDS


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


def _sqlstate(error: DBAPIError) -> str | None:
    orig = error.orig
    return getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )


def _is_retryable(error: DBAPIError) -> bool:
    if _sqlstate(error) in RETRYABLE_SQLSTATES:
        return True
    # SQLite: another process holds the write lock longer than busy_timeout.
    return isinstance(error, OperationalError) and "database is locked" in str(error)


def _causes(error: BaseException) -> list[BaseException]:
    """The error, the driver error it wraps, and their causes (a short, cycle-free chain)."""
    chain: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending and len(chain) < 8:
        item = pending.pop(0)
        if item is None or any(item is seen for seen in chain):
            continue
        chain.append(item)
        pending += [getattr(item, "orig", None), item.__cause__, item.__context__]
    return chain


def is_unavailable(error: BaseException) -> bool:
    """True when `error` means the database cannot be reached or serve now, not a bug."""
    for item in _causes(error):
        if isinstance(item, OSError | PoolTimeout):
            return True  # refused, reset or timed-out connections; no connection left in the pool
        if isinstance(item, DBAPIError) and item.connection_invalidated:
            return True  # the dialect recognised a disconnect
        if isinstance(item, SQLAlchemyError):
            continue  # its text quotes statements and values; the driver error follows
        sqlstate = getattr(item, "sqlstate", None)
        if isinstance(sqlstate, str):  # a PostgreSQL error: its message may quote values
            if sqlstate.startswith("08") or sqlstate in UNAVAILABLE_SQLSTATES:
                return True
        elif any(message in str(item).lower() for message in UNAVAILABLE_MESSAGES):
            return True
    return False


def is_timeout(error: BaseException) -> bool:
    """True when `error` is a statement stopped by the statement timeout."""
    for item in _causes(error):
        if getattr(item, "sqlstate", None) == QUERY_CANCELED:
            return True
        if isinstance(item, sqlite3.OperationalError) and str(item) == SQLITE_INTERRUPTED:
            return True
    return False


def _unavailable(error: BaseException) -> DatabaseUnavailable:
    if isinstance(error, DatabaseUnavailable):
        return error
    log.warning("database unavailable: %s: %s", type(error).__name__, error)
    return DatabaseUnavailable()


class Database:
    """The configured database: a read engine, a write path, and dialect facts."""

    def __init__(self, url: str, *, echo: bool = False, statement_timeout: float | None = None):
        """`statement_timeout`: seconds a read statement may run (None or 0: no limit)."""
        self.url = normalise_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        positive = statement_timeout is not None and statement_timeout > 0
        self.statement_timeout = statement_timeout if positive else None
        common: dict[str, Any] = {
            "echo": echo,
            "json_serializer": _dumps,
            "json_deserializer": orjson.loads,
        }
        if self.is_sqlite:  # SQLAlchemy's aiosqlite adapter (no own driver: see sqlite_connections)
            self.engine = create_async_engine(self.url, pool_size=8, max_overflow=8, **common)
            self.write_engine = create_async_engine(self.url, pool_size=1, max_overflow=0, **common)
            sqlite_connections.install(self.engine, statement_timeout=self.statement_timeout)
            sqlite_connections.install(self.write_engine)
            _configure_sqlite(self.engine, begin="BEGIN")
            _configure_sqlite(self.write_engine, begin="BEGIN IMMEDIATE", autocheckpoint=False)
        else:
            settings = dict(distribution.SESSION_SETTINGS)  # Citus's; inert elsewhere
            if self.statement_timeout is not None:
                # For every statement of the pool's connections; writes lift it (`_write_once`).
                settings["statement_timeout"] = str(max(1, round(self.statement_timeout * 1000)))
            connect_args: dict[str, Any] = {
                "timeout": CONNECT_TIMEOUT_SECONDS,
                "server_settings": settings,
            }
            self.engine = create_async_engine(
                self.url,
                pool_size=10,
                max_overflow=10,
                pool_pre_ping=True,
                connect_args=connect_args,
                **common,
            )
            event.listen(self.engine.sync_engine, "connect", json_codecs)
            self.write_engine = self.engine
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        database = make_url(self.url).database
        self._checkpointer = (
            Checkpointer(database)
            if self.is_sqlite and database and database != ":memory:"
            else None
        )
        self.statement_count = 0
        for engine in {self.engine, self.write_engine}:
            event.listen(engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith(("BEGIN", "PRAGMA")):  # count queries, not transaction control
            self.statement_count += 1

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading, inside a transaction that is rolled back at the end.

        Raises DatabaseUnavailable when the database cannot be reached, StatementTimeout
        when a statement ran past the statement timeout.
        """
        try:
            async with self.engine.connect() as conn:
                yield conn
        except (OSError, SQLAlchemyError) as error:
            if self.statement_timeout is not None and is_timeout(error):
                # From the exception, not its text: that quotes the whole statement.
                raise StatementTimeout(self.statement_timeout) from None
            if is_unavailable(error):
                raise _unavailable(error) from error
            raise

    @asynccontextmanager
    async def _write_once(self) -> AsyncIterator[AsyncConnection]:
        if self._write_lock is None:
            async with self.write_engine.begin() as conn:
                committed = _start_after_commit(conn)
                if self.statement_timeout is not None:  # reads only (see the module docstring)
                    await conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
                yield conn
            await _run_after_commit(committed)
            return
        async with self._write_lock:
            async with self.write_engine.begin() as conn:
                committed = _start_after_commit(conn)
                yield conn
            if self._checkpointer is not None:
                self._checkpointer.after_commit()
        await _run_after_commit(committed)  # outside the lock: the next write need not wait

    async def write(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `work` in one write transaction, committed before returning; retried on conflicts.

        `work` may run several times: it must draw anything random (ids) inside. Raises
        DatabaseUnavailable when the database cannot be reached, or conflicts outlast the
        retries; a lost connection is not retried here, since COMMIT may have succeeded.
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with self._write_once() as conn:
                    return await work(conn)
            except DBAPIError as error:
                if is_unavailable(error) and not _is_retryable(error):
                    raise _unavailable(error) from error
                if not _is_retryable(error):
                    raise
                if attempt == MAX_ATTEMPTS:
                    log.warning("write failed after %d attempts: %s", attempt, error.orig)
                    raise DatabaseUnavailable("the database is busy; retry later") from error
                log.info(
                    "retrying write after transient conflict (attempt %d): %s", attempt, error.orig
                )
                await asyncio.sleep(0.01 * attempt)
            except (OSError, SQLAlchemyError) as error:  # e.g. from the driver, connecting
                if is_unavailable(error):
                    raise _unavailable(error) from error
                raise
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
        if self._checkpointer is not None:
            await self._checkpointer.close()
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()


AFTER_COMMIT = "usertrail.after_commit"
AfterCommit = Callable[[], Awaitable[None]]


def after_commit(conn: AsyncConnection, callback: AfterCommit) -> None:
    """Call `callback` once the write transaction `conn` belongs to has committed; never when
    it rolls back (a retried attempt's callbacks go with it). Only in `Database.write`."""
    conn.info[AFTER_COMMIT].append(callback)


def _start_after_commit(conn: AsyncConnection) -> list[AfterCommit]:
    # The connection's info outlives the checkout: each transaction starts a fresh list.
    pending: list[AfterCommit] = []
    conn.info[AFTER_COMMIT] = pending
    return pending


async def _run_after_commit(pending: list[AfterCommit]) -> None:
    for callback in pending:
        try:
            await callback()
        except Exception:  # the write is committed: a follower's failure is only logged
            log.exception("a callback after a committed write failed")
    pending.clear()


class Checkpointer:
    """Copies an SQLite WAL back into the database file in a thread, off the write path.

    SQLite checkpoints inside the COMMIT that grows the WAL past 1,000 pages: the writer
    then copies pages and syncs the file while every other write waits. The write
    connection turns that off; after a commit this starts a PASSIVE checkpoint (which never
    blocks writers or readers) on its own connection in a worker thread, unless one runs or
    one started less than CHECKPOINT_INTERVAL_SECONDS ago. The WAL is then reused from its
    start by a later write. Durability is unchanged: a commit is in the WAL either way.
    """

    def __init__(self, path: str):
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._running: asyncio.Future[None] | None = None
        self._started = 0.0

    def after_commit(self) -> None:
        now = time.monotonic()
        if self._running is not None and not self._running.done():
            return
        if now - self._started < CHECKPOINT_INTERVAL_SECONDS:
            return
        self._started = now
        self._running = asyncio.ensure_future(asyncio.to_thread(self._checkpoint))
        self._running.add_done_callback(_log_failure)

    def _checkpoint(self) -> None:
        if self._connection is None:
            self._connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            self._connection.execute("PRAGMA busy_timeout=5000")
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def close(self) -> None:
        """Wait for a running checkpoint, then close the connection."""
        running = self._running
        if running is not None and running.get_loop() is asyncio.get_running_loop():
            await asyncio.gather(running, return_exceptions=True)
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _log_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("WAL checkpoint failed: %s", done.exception())


# The version byte PostgreSQL puts before a jsonb value in binary format.
JSONB_VERSION = b"\x01"


def _decode_json(value: bytes) -> Any:
    return orjson.loads(value)


def _decode_jsonb(value: bytes) -> Any:
    return orjson.loads(value[1:])


def _encode_json(text: str) -> bytes:
    return text.encode()


def _encode_jsonb(text: str) -> bytes:
    return JSONB_VERSION + text.encode()


def json_codecs(dbapi_connection: Any, _record: Any = None) -> None:
    """On a new asyncpg connection (an engine "connect" listener): json and jsonb values
    decoded by orjson from the bytes the server sends.

    SQLAlchemy's own codecs decode those bytes to a str first, then parse it: the same
    values, a third slower (a page of events reads a jsonb value per row). Writes are
    unchanged: the SQL layer serialises values to text, sent as is (jsonb: after its
    version byte).
    """

    async def register(driver_connection: Any) -> None:
        for name, encoder, decoder in (
            ("json", _encode_json, _decode_json),
            ("jsonb", _encode_jsonb, _decode_jsonb),
        ):
            await driver_connection.set_type_codec(
                name, encoder=encoder, decoder=decoder, schema="pg_catalog", format="binary"
            )

    dbapi_connection.run_async(register)


def _configure_sqlite(engine: AsyncEngine, *, begin: str, autocheckpoint: bool = True) -> None:
    pragmas = ["journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000", "foreign_keys=ON"]
    if not autocheckpoint:
        pragmas.append("wal_autocheckpoint=0")

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that we can emit BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)
