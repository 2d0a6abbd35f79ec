"""What every SQLite connection gets: the SQL functions of property conditions and, on read
connections, the statement timeout.

Installed by an engine "connect" listener through SQLAlchemy's public `run_async` and the
aiosqlite connection's public coroutines (`create_function`, `set_progress_handler`), which
run on its worker thread: no private field of aiosqlite or SQLAlchemy (SQLAlchemy 2.1.9,
aiosqlite 0.22.1 here).

This replaced models/sqlite_driver.py (issue 18), an aiosqlite Connection/Cursor subclass
making one worker-thread trip per statement instead of the stock adapter's four, plugged in
with `async_creator`. Measured against the stock adapter with bench/internals.py (commit
3323610 of branch `driver`, December 2026; 10,000 events per run, 4 clients, a fresh SQLite
file and `usertrail serve` per run, on and off strictly interleaved, 5 rounds, a loaded
2-core machine), it did not pay: Heap `/api/track` 4,295 events/s with it against 5,895
without (runs 3,600-6,168 against 4,859-9,661; stock faster in 5 of 5 rounds), Segment
`/v1/batch` 2,601 against 3,043 (1,388-4,978 against 1,837-5,797; stock faster in 4 of 5).

Statement timeout: SQLite calls a progress handler every PROGRESS_STEPS virtual-machine
steps on the worker thread; it stops the statement (SQLite answers "interrupted") once the
connection's deadline has passed. The deadline is set by "before_cursor_execute" as each
statement starts (both drivers run and fetch a statement within that cursor call) and
lifted after it, so COMMIT and ROLLBACK, which run without a cursor, run freely; a
statement whose caller went away keeps its deadline and still stops, and the pool lifts it
when the connection comes back ("checkin").
"""

from __future__ import annotations

import math
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from models.property_values import SQLITE_FUNCTIONS

# VM steps between deadline checks: 2-3 ms of a plain scan, ~70 ms of one calling json_extract
# per row. Each check takes the GIL from the event loop; checks 100x as often cost a long scan
# a third more while the loop is busy.
PROGRESS_STEPS = 100_000


class Deadline:
    """The monotonic time past which a connection's running statement is interrupted."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = math.inf

    def passed(self) -> bool:  # on the worker thread, every PROGRESS_STEPS steps
        return time.monotonic() > self.at


def install(engine: AsyncEngine, *, statement_timeout: float | None = None) -> None:
    """Give every connection of `engine` the SQL functions, and stop its statements running
    longer than `statement_timeout` seconds, if given."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        deadline = Deadline()
        record.info["deadline"] = deadline

        async def setup(driver_connection: Any) -> None:  # an aiosqlite.Connection
            for name, arguments, function in SQLITE_FUNCTIONS:
                await driver_connection.create_function(
                    name, arguments, function, deterministic=True
                )
            if statement_timeout is not None:
                await driver_connection.set_progress_handler(deadline.passed, PROGRESS_STEPS)

        dbapi_connection.run_async(setup)

    if statement_timeout is None:
        return

    def _deadline(conn: Any) -> Deadline | None:
        return conn.connection.info.get("deadline")  # the pool record's info

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _start(conn: Any, *_: Any) -> None:
        deadline = _deadline(conn)
        if deadline is not None:
            deadline.at = time.monotonic() + statement_timeout

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _finish(conn: Any, *_: Any) -> None:
        deadline = _deadline(conn)
        if deadline is not None:
            deadline.at = math.inf

    @event.listens_for(engine.sync_engine, "handle_error")
    def _failed(context: Any) -> None:
        if context.connection is not None and not context.connection.invalidated:
            deadline = _deadline(context.connection)
            if deadline is not None:
                deadline.at = math.inf

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        deadline = record.info.get("deadline")
        if deadline is not None:
            deadline.at = math.inf
