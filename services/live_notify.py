"""How every server process hears that events were stored, for its live subscribers.

Ingestion calls `announce` inside its write transaction; the announcement goes out only once
that transaction has committed (models/db.after_commit), never for one rolled back.

- PostgreSQL: `pg_notify` on the channel `usertrail_live`, in a small transaction of its own
  right after the commit (with `synchronous_commit` off: a notification needs no flush to
  disk). The payload is small, the environment and the (user id, event id) keys, split below
  PostgreSQL's 8000-byte limit; hearers read the rows themselves. Each server process
  LISTENs on one connection of its own, so every worker process of every server on the
  database hears every stored event, its own included.
- SQLite: the hubs of this process over the same database hear it directly. Other processes
  on the same file do not (the README says so): SQLite has no notifications between them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Iterator, Sequence

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.db import after_commit
from services.live import EventKey, LiveHub

log = logging.getLogger(__name__)

CHANNEL = "usertrail_live"
# PostgreSQL refuses payloads of 8000 bytes or more.
MAX_PAYLOAD = 7900
# Seconds between checks that the listening connection is alive, and at most between retries.
PING_SECONDS = 10.0
RETRY_SECONDS = 5.0
NOTIFY = text(
    "SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload"
)

# SQLite: the hubs of this process, by database URL.
_LOCAL: dict[str, weakref.WeakSet[LiveHub]] = {}


def announce(conn: AsyncConnection, *, environment_id: int, keys: Sequence[EventKey]) -> None:
    """Tell every live hub, once the open write transaction commits, that `keys` were stored."""
    if not keys:
        return
    if conn.dialect.name == "postgresql":
        payloads = list(encode(environment_id, keys))
        after_commit(conn, functools.partial(_notify, conn.engine, payloads))
    else:
        url = _url_of(conn.engine)
        after_commit(conn, functools.partial(_tell_local, url, environment_id, list(keys)))


def encode(environment_id: int, keys: Sequence[EventKey]) -> Iterator[str]:
    """Payloads `"<environment> <user>:<event> …"`, each under MAX_PAYLOAD bytes."""
    head = str(environment_id)
    parts: list[str] = []
    size = len(head)
    for user_id, event_id in keys:
        part = f"{user_id}:{event_id}"
        if parts and size + 1 + len(part) > MAX_PAYLOAD:
            yield " ".join([head, *parts])
            parts, size = [], len(head)
        parts.append(part)
        size += 1 + len(part)
    if parts:
        yield " ".join([head, *parts])


def decode(payload: str) -> tuple[int, list[EventKey]]:
    """The environment and keys of a payload made by `encode`."""
    head, *parts = payload.split(" ")
    keys: list[EventKey] = []
    for part in parts:
        user_id, _, event_id = part.partition(":")
        keys.append((int(user_id), int(event_id)))
    return int(head), keys


async def _notify(engine: AsyncEngine, payloads: list[str]) -> None:
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            await conn.execute(NOTIFY, {"channel": CHANNEL, "payloads": payloads})
    except (OSError, SQLAlchemyError) as error:  # stored all the same; live streams miss them
        log.warning("live events: could not announce stored events: %s", error)


async def _tell_local(url: str, environment_id: int, keys: list[EventKey]) -> None:
    for hub in list(_LOCAL.get(url, ())):
        hub.stored(environment_id, keys)


def _url_of(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


class Hearing:
    """A hub hearing of stored events: LISTEN on PostgreSQL, in-process on SQLite."""

    def __init__(self, hub: LiveHub):
        self.hub = hub
        self.url = _url_of(hub.db.write_engine)
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def start(self) -> None:
        """Start hearing: LISTEN (waiting a little for it), or join this process's hubs."""
        if self.hub.db.is_sqlite:
            _LOCAL.setdefault(self.url, weakref.WeakSet()).add(self.hub)
            return
        self._task = asyncio.create_task(self._listen())
        try:  # a server that answers has its listener up before it serves; one that doesn't
            await asyncio.wait_for(self._listening.wait(), RETRY_SECONDS)
        except TimeoutError:  # ... starts anyway and keeps trying (an outage at start)
            log.warning("live events: not listening yet; retrying in the background")

    async def close(self) -> None:
        """Stop hearing."""
        hubs = _LOCAL.get(self.url)
        if hubs is not None:
            hubs.discard(self.hub)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _listen(self) -> None:
        dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        heard_before = False
        while True:
            try:
                conn = await asyncpg.connect(dsn, timeout=RETRY_SECONDS)
            except (OSError, TimeoutError, asyncpg.PostgresError) as error:
                log.warning("live events: cannot listen (%s); retrying", error)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            try:
                await conn.add_listener(CHANNEL, self._heard)
                if heard_before:
                    self.hub.lost()
                heard_before = True
                self._listening.set()
                while True:  # a connection lost without a word shows at the next ping
                    await asyncio.sleep(PING_SECONDS)
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), RETRY_SECONDS)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning(
                    "live events: the listening connection failed (%s); reconnecting", error
                )
            finally:
                conn.terminate()

    def _heard(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            environment_id, keys = decode(payload)
        except ValueError:
            log.warning("live events: an unreadable notification: %.100r", payload)
            return
        self.hub.stored(environment_id, keys)
