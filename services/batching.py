"""Group commit: concurrent ingestion requests written together, in one transaction.

A write transaction has a cost of its own (BEGIN, COMMIT writing the pages it touched, one
round of statements however many rows they carry): on SQLite, a batch of 1,000 events costs
about a third less per event than two batches of 500. While one write runs, requests that
arrive queue up; when it ends, the next write takes all of them at once. The first request
waits for nobody: merging happens only where requests would have waited for the lock anyway.

Only SQLite merges: it has a single writer, so requests wait for each other there anyway.
PostgreSQL writes run concurrently (they serialise per user, services/locks.py), and are
faster so.

Each request keeps its own result. If a merged write fails for a reason other than an
unreachable database, its requests are written again one by one, so that a request whose
data a bug trips on fails alone. A caller that goes away (a cancelled request) does not
cancel the shared write: its items may be stored without an answer, as when a connection
drops after COMMIT; idempotency keys make the client's retry harmless.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from models.db import Database, DatabaseUnavailable

R = TypeVar("R")
T = TypeVar("T")

# Items one merged write takes at most (a request is never split).
MAX_ITEMS = 4000
# Items a request prepares (parses, validates) between turns of the event loop.
SLICE = 32

Run = Callable[[AsyncConnection, Sequence[R]], Awaitable[list[T]]]


@dataclass(slots=True)
class _Waiting:
    run: Run[Any, Any]
    request: Any
    size: int
    answer: asyncio.Future[Any] = field(default_factory=asyncio.Future)


class GroupWriter:
    """Writes requests, merging those that arrive while a write is running.

    A request comes with its `run(conn, requests) -> one result per request`; a merged write
    calls each run once with its requests, in the order the runs first arrived (requests of
    concurrent callers: any order is one they could have had). A run may run several times
    (retries) and must draw anything random inside.
    """

    def __init__(self, db: Database, *, max_items: int = MAX_ITEMS):
        # A proxy: writers are kept per database (weakly), and must not keep theirs alive.
        self.db = weakref.proxy(db)
        self.max_items = max_items
        self._queue: list[_Waiting] = []
        self._draining: asyncio.Task[None] | None = None

    async def submit(self, run: Run[R, T], request: R, size: int) -> T:
        """The result of writing `request` (of `size` items) by `run`, alone or with others."""
        if not self.db.is_sqlite:
            results = await self.db.write(lambda conn: run(conn, [request]))
            return results[0]
        waiting = _Waiting(run, request, size)
        self._queue.append(waiting)
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        return await waiting.answer

    async def _drain(self) -> None:
        try:
            while self._queue:
                taken = self._take()
                await self._write(taken)
        finally:
            self._draining = None

    def _take(self) -> list[_Waiting]:
        taken = [self._queue.pop(0)]
        items = taken[0].size
        while self._queue and items + self._queue[0].size <= self.max_items:
            items += self._queue[0].size
            taken.append(self._queue.pop(0))
        return taken

    async def _write(self, taken: list[_Waiting]) -> None:
        try:
            results = await self.db.write(lambda conn: _run_all(conn, taken))
        except Exception as error:  # noqa: BLE001 -- handed to the requests' callers
            if len(taken) == 1 or isinstance(error, DatabaseUnavailable):
                for waiting in taken:
                    _settle(waiting, error=error)
                return
            for waiting in taken:  # one by one: only a request that fails alone fails
                await self._write([waiting])
            return
        for waiting, result in zip(taken, results, strict=True):
            _settle(waiting, result=result)


async def _run_all(conn: AsyncConnection, taken: list[_Waiting]) -> list[Any]:
    """Each run once, with its requests; the results in the order of `taken`."""
    by_run: dict[Run[Any, Any], list[int]] = {}
    for number, waiting in enumerate(taken):
        by_run.setdefault(waiting.run, []).append(number)
    results: list[Any] = [None] * len(taken)
    for run, numbers in by_run.items():
        answers = await run(conn, [taken[n].request for n in numbers])
        for number, answer in zip(numbers, answers, strict=True):
            results[number] = answer
    return results


async def one_by_one(
    conn: AsyncConnection, works: Sequence[Callable[[AsyncConnection], Awaitable[T]]]
) -> list[T]:
    """A run for requests that are write functions (`work(conn)`), called in order."""
    return [await work(conn) for work in works]


def _settle(waiting: _Waiting, *, result: Any = None, error: BaseException | None = None) -> None:
    if waiting.answer.done():  # its caller went away (a cancelled request)
        return
    if error is not None:
        waiting.answer.set_exception(error)
    else:
        waiting.answer.set_result(result)


async def in_slices(
    items: Sequence[T], size: int = SLICE
) -> AsyncIterator[tuple[int, Sequence[T]]]:
    """(offset, slice) of `items`, letting the event loop run between slices.

    A request's preparation (parsing, validating hundreds of items) is plain Python that holds
    the event loop; a write waiting for its next statement's answer waits for it too, and the
    write is what every request queues for. In slices, the write's statements follow each
    other within a slice's time (about a millisecond) and the database works meanwhile.
    """
    for start in range(0, len(items), size):
        if start:
            await asyncio.sleep(0)
        yield start, items[start : start + size]
