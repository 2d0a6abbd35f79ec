"""Per-request dataloaders: each batch is one query, answered in key order.

A batch reads on its own short-lived connection, except in a query operation (read-only,
graph/extensions.SharedReads): its batches then take turns on one connection, opened by the
first and given back by `release()` once the request has answered, instead of checking one
out of the pool (and pinging it) per batch. Mutations keep a connection per batch, so that
a read after a write sees it (a SQLite transaction reads a snapshot).

Pages are keyed by (owner, limit, cursor, direction, ...); keys that share all but the owner
are answered together, so the statement count of a nested query depends on its shape, not on
the number of users or sessions in it. A user's sessions page may ask for its sessions'
events page as well (graph/session.wanted_events): the batch reads both, back to back.

On PostgreSQL a page batch is a LATERAL join from the owners' rows, chosen by ids passed
as arrays (`LateralPages`): each owner's page is one index-ordered LIMIT, where the window
function of services/reading.py ranks every row of every owner, and the statement text is
the same for any number of owners. On Citus the join is on the distribution column, so it
is pushed down to the shards (a router query for one user's pages). Page rows are named
tuples (`records`): the graph types read them field by field, ten times faster than
SQLAlchemy Rows.

Length: one loader per (model, key) beside the shared connection and the page-reading
statements they share (LATERAL on PostgreSQL and Citus, window functions on SQLite); split by
entity (users, sessions, events) when it grows again.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict, namedtuple
from collections.abc import Awaitable, Callable, Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import BigInteger, any_, bindparam, select, true, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Event, Session, User
from models.db import Database
from services import definitions, listing, rage_clicks, reading, session_neighbours
from services.clock import now_us
from services.filters import Compiler, EventMatch, UserSessionFilter
from services.identity import UserKey, find_users

K = TypeVar("K", bound=Hashable)
MAX_BATCH = 2000


class LoaderOf:
    """A DataLoader over one batch method, created on first use (a request uses a few)."""

    def __init__(self, batch: str):
        self.batch = batch
        self.name = batch

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, loaders: Any, owner: type | None = None) -> DataLoader:
        if loaders is None:
            return self  # type: ignore[return-value]
        loader = DataLoader(getattr(loaders, self.batch), max_batch_size=MAX_BATCH)
        loaders.__dict__[self.name] = loader  # the instance's from now on
        return loader


class Loaders:
    """The loaders of one request, bound to its environment."""

    user = LoaderOf("_users")
    user_by_key = LoaderOf("_users_by_key")
    session = LoaderOf("_sessions")
    event = LoaderOf("_events")
    first_session = LoaderOf("_first_sessions")
    last_session = LoaderOf("_last_sessions")
    session_page = LoaderOf("_session_pages")
    event_page = LoaderOf("_event_pages")
    highlighted = LoaderOf("_highlighted")
    session_count = LoaderOf("_session_counts")
    definition = LoaderOf("_definitions")
    definition_event_count = LoaderOf("_definition_event_counts")
    event_definitions = LoaderOf("_event_definitions")
    rage_click = LoaderOf("_rage_clicks")
    session_has_rage_click = LoaderOf("_sessions_with_rage_clicks")
    event_type_counts = LoaderOf("_event_type_counts")
    session_neighbours = LoaderOf("_session_neighbours")

    def __init__(self, db: Database, environment_id: int, at_us: int | None = None):
        self.db = db
        self.environment_id = environment_id
        self.now_us = at_us if at_us is not None else now_us()
        self.shared = False
        self._turns = asyncio.Lock()
        self._opened: AbstractAsyncContextManager[AsyncConnection] | None = None
        self._conn: AsyncConnection | None = None
        self._opening: asyncio.Future[None] | None = None

    def compiler(self) -> Compiler:
        """A filter compiler for this request's environment, dialect and moment."""
        return Compiler(
            self.environment_id,
            self.db.dialect,
            self.now_us,
            definition_condition=definitions.matched_by,
        )

    def share_connection(self) -> None:
        """Read every batch through one connection until `release()` (read-only requests).

        The connection is opened right away, in the background: its checkout (a ping, on
        PostgreSQL) overlaps what the query does before its first batch.
        """
        self.shared = True
        self._opening = asyncio.ensure_future(self._open_shared())

    async def _open_shared(self) -> None:
        async with self._turns:
            if self.shared and self._conn is None:
                await self._connect()

    async def release(self) -> None:
        """Give the shared connection back to the pool, if one was opened (after the batch
        using it); later batches, if any, take connections of their own."""
        self.shared = False
        if self._opening is not None:
            # Opening failed (the database is down, say): the batches reported it already.
            await asyncio.gather(self._opening, return_exceptions=True)
        async with self._turns:
            opened, self._opened, self._conn = self._opened, None, None
            if opened is not None:
                await opened.__aexit__(None, None, None)

    async def read(self, query: Callable[..., Awaitable[Any]]) -> Any:
        """`await query(conn, environment_id=…)` on this request's reading connection: the
        shared one in a query (no checkout of its own), else a connection of its own."""
        return await self._read(query)

    async def _read(self, query: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        if self.shared:
            async with self._turns:
                if self.shared:  # still: not released while this batch waited its turn
                    return await self._read_shared(query, **kwargs)
        async with self.db.read() as conn:
            return await query(conn, environment_id=self.environment_id, **kwargs)

    async def _connect(self) -> AsyncConnection:
        opened = self.db.read()
        conn = self._conn = await opened.__aenter__()
        self._opened = opened
        if self.db.dialect == "postgresql":
            # Batches of a query only read, and each PostgreSQL statement sees what was
            # committed before it, in a transaction (READ COMMITTED) or not: no BEGIN.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        return conn

    async def _read_shared(self, query: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        conn = self._conn if self._conn is not None else await self._connect()
        try:
            return await query(conn, environment_id=self.environment_id, **kwargs)
        except BaseException as error:
            # As `async with db.read()` would: the connection is closed, and the error comes
            # out classified (DatabaseUnavailable for outages).
            opened, self._opened, self._conn = self._opened, None, None
            if opened is not None:
                await opened.__aexit__(type(error), error, error.__traceback__)
            raise

    async def _users(self, keys: list[int]) -> list[Any]:
        found = await self._read(reading.users_by_id, user_ids=keys)
        return [found.get(k) for k in keys]

    async def _users_by_key(self, keys: list[UserKey]) -> list[Any]:
        return await users_by_key(self, keys)

    async def _sessions(self, keys: list[tuple[int, int]]) -> list[Any]:
        found = await self._read(reading.sessions_by_id, keys=keys)
        return [found.get(k) for k in keys]

    async def _session_neighbours(self, keys: list[tuple[int, int]]) -> list[tuple[Any, Any]]:
        found = await self._read(session_neighbours.neighbours, keys=keys)
        return [found.get(k, (None, None)) for k in keys]

    async def _events(self, keys: list[tuple[int, int]]) -> list[Any]:
        found = await self._read(reading.events_by_id, keys=keys)
        return [found.get(k) for k in keys]

    async def _first_sessions(self, keys: list[int]) -> list[Any]:
        found = await self._read(reading.edge_sessions, user_ids=keys, last=False)
        return [found.get(k) for k in keys]

    async def _last_sessions(self, keys: list[int]) -> list[Any]:
        found = await self._read(reading.edge_sessions, user_ids=keys, last=True)
        return [found.get(k) for k in keys]

    async def _session_pages(
        self, keys: list[tuple[int, int, Any, bool, UserSessionFilter | None, Any]]
    ) -> list[list[Any]]:
        """keys: (user id, limit, cursor, backward, filter, events page).

        Rows come nearest the cursor first (backward: newest last). The events page, (limit,
        cursor, backward) or None, is the one the query asks of each session shown (all but
        the extra row): read right after, into `event_page`.
        """

        async def fetch(
            owners: list[Any], limit: int, cursor: Any, backward: bool, narrowing: Any, events: Any
        ) -> dict[Any, list[Any]]:
            extra = self.compiler().user_sessions(narrowing)
            if self.db.dialect == "postgresql":
                pages = await self._read(
                    SESSION_PAGES.read,
                    owners=owners,
                    limit=limit,
                    after=cursor,
                    backward=backward,
                    conditions=extra,
                )
            else:
                pages = records(
                    await self._read(
                        reading.session_pages,
                        user_ids=owners,
                        limit=limit,
                        cursor=cursor,
                        backward=backward,
                        extra=extra,
                    )
                )
            if events is not None:  # pages are read with one extra row: not shown
                shown = [(r.user_id, r.id) for rows in pages.values() for r in rows[: limit - 1]]
                await self._prime_event_pages(shown, *events)
            return pages

        return await _grouped(keys, fetch)

    async def _prime_event_pages(
        self, sessions: list[Any], limit: int, cursor: Any, backward: bool
    ) -> None:
        """Read these sessions' event pages into `event_page`, failures included (raised by
        whoever loads one, as if read by its own batch)."""
        keys = [(session, limit, cursor, backward) for session in sessions]
        try:
            found = await self._fetch_event_pages(sessions, limit, cursor, backward)
        except Exception as error:  # any failure: each page's reader raises it
            for key in keys:
                self.event_page.prime(key, error)
            return
        for key in keys:
            self.event_page.prime(key, found.get(key[0], []))

    async def _session_counts(self, keys: list[tuple[int, UserSessionFilter]]) -> list[int]:
        """keys: (user id, filter) -> number of the user's sessions the filter keeps."""
        groups: dict[UserSessionFilter, list[int]] = defaultdict(list)
        for user_id, narrowing in keys:
            groups[narrowing].append(user_id)
        counts: dict[tuple[int, UserSessionFilter], int] = {}
        for narrowing, users in groups.items():
            extra = self.compiler().user_sessions(narrowing)
            found = await self._read(reading.session_counts, user_ids=users, extra=extra)
            counts.update({(u, narrowing): found.get(u, 0) for u in users})
        return [counts[key] for key in keys]

    async def _highlighted(self, keys: list[tuple[tuple[int, int], EventMatch]]) -> list[bool]:
        """keys: ((user id, session id), event match) -> does the session hold such an event."""
        groups: dict[EventMatch, list[tuple[int, int]]] = defaultdict(list)
        for session, match in keys:
            groups[match].append(session)
        found: set[tuple[tuple[int, int], EventMatch]] = set()
        events = Event.__table__
        for match, sessions in groups.items():
            conditions = self.compiler().event_match(match, events)
            hits = await self._read(
                listing.sessions_containing, sessions=sessions, match=conditions, events=events
            )
            found.update((session, match) for session in hits)
        return [key in found for key in keys]

    async def _event_type_counts(self, keys: list[tuple[int, int]]) -> list[Any]:
        """(user, session) -> [(raw type, shown definition id, count)]."""
        found = await self._read(
            listing.event_type_counts,
            sessions=keys,
            shown_definition=definitions.best_definition_id,
        )
        return [found.get(k, []) for k in keys]

    async def _definitions(self, keys: list[int]) -> list[Any]:
        found = await self._read(definitions.get_many, definition_ids=keys)
        return [found.get(k) for k in keys]

    async def _definition_event_counts(
        self, keys: list[tuple[int, int | None, int | None]]
    ) -> list[int]:
        """keys: (definition id, from µs, to µs exclusive)."""
        groups: dict[tuple[int | None, int | None], list[int]] = defaultdict(list)
        for definition_id, low, high in keys:
            groups[(low, high)].append(definition_id)
        counts: dict[tuple[int, int | None, int | None], int] = {}
        for (low, high), wanted in groups.items():
            found = await self._read(
                definitions.event_counts, definition_ids=wanted, from_us=low, to_us=high
            )
            counts.update({(d, low, high): found.get(d, 0) for d in wanted})
        return [counts[key] for key in keys]

    async def _event_definitions(self, keys: list[tuple[int, int]]) -> list[list[Any]]:
        """(user, event) -> matching definitions, the one shown first."""
        found = await self._read(definitions.definitions_of_events, keys=keys)
        return [found.get(k, []) for k in keys]

    async def _rage_clicks(self, keys: list[tuple[int, int]]) -> list[bool]:
        found = await self._read(rage_clicks.rage_click_events, keys=keys)
        return [k in found for k in keys]

    async def _sessions_with_rage_clicks(self, keys: list[tuple[int, int]]) -> list[bool]:
        found = await self._read(rage_clicks.sessions_with_rage_clicks, session_keys=keys)
        return [k in found for k in keys]

    async def _event_pages(
        self, keys: list[tuple[tuple[int, int], int, Any, bool]]
    ) -> list[list[Any]]:
        """keys: ((user id, session id), limit, cursor, backward); rows nearest the cursor
        first (backward: latest first)."""
        return await _grouped(keys, self._fetch_event_pages)

    async def _fetch_event_pages(
        self, sessions: list[Any], limit: int, cursor: Any, backward: bool
    ) -> dict[Any, list[Any]]:
        if self.db.dialect == "postgresql":
            return await self._read(
                EVENT_PAGES.read, owners=sessions, limit=limit, after=cursor, backward=backward
            )
        return records(
            await self._read(
                reading.event_pages,
                sessions=sessions,
                limit=limit,
                cursor=cursor,
                backward=backward,
            )
        )


S = Session.__table__
E = Event.__table__


@dataclass(frozen=True)
class LateralPages:
    """PostgreSQL keyset pages of `table`, one per owner, read by a LATERAL join.

    The owners are rows of `parent` (users, or sessions), chosen by their ids passed as
    arrays (`= ANY`), so the statement is the same for any number of owners; without extra
    conditions it is built once. Each owner's page is a LATERAL subquery on `table` joined
    on the owner's key: on Citus, where `parent` and `table` are co-located by user_id, that
    join is on the distribution column, so the statement is pushed down to the shards (one
    shard, a router query, when the owners are one user's), which a LATERAL over `unnest`
    of the arrays is not ("cannot push down this subquery"). `order` is the keyset:
    (column, descending) pairs in one direction, the cursor being the previous page's last
    values. Read `backward`, every comparison and order turns round: the rows before the
    cursor, nearest first, each owner's page still one index-ordered LIMIT.
    """

    table: Any
    columns: tuple[str, ...]
    owners: tuple[str, ...]
    order: tuple[tuple[str, bool], ...]
    parent: Any
    # The columns of `parent` that `owners` name, in the same order.
    parent_key: tuple[str, ...]

    @functools.cache  # noqa: B019 (a few module-level instances, kept for the process anyway)
    def cached(self, *, after: bool, backward: bool = False) -> Any:
        """The statement without extra conditions."""
        return self.statement(after=after, backward=backward, conditions=())

    def statement(self, *, after: bool, conditions: Sequence[Any], backward: bool = False) -> Any:
        """The statement; parameters as `parameters` names them."""
        table = self.table
        owner = self.parent.alias("owner")
        keyset = [table.c[name] for name, _ in self.order]
        descending = self.order[0][1] != backward
        owner_ids = {
            name: bindparam(f"owner_{name}", type_=ARRAY(BigInteger)) for name in self.owners
        }
        where = [
            table.c.environment_id == owner.c.environment_id,
            *[
                table.c[name] == owner.c[key]
                for name, key in zip(self.owners, self.parent_key, strict=True)
            ],
            # Said again of the page's own rows: Citus prunes each table's shards by its
            # own conditions, and routes the statement to one shard only when both are.
            table.c.user_id == any_(owner_ids["user_id"]),
            *conditions,
        ]
        if after:
            cursor = tuple_(*[bindparam(f"after_{i}") for i in range(len(keyset))])
            where.append(tuple_(*keyset) < cursor if descending else tuple_(*keyset) > cursor)

        def sort(columns: Any) -> list[Any]:
            return [
                columns[name].desc() if down != backward else columns[name]
                for name, down in self.order
            ]

        page = (
            select(*[table.c[name] for name in self.columns])
            .where(*where)
            .order_by(*sort(table.c))
            .limit(bindparam("limit"))
            .lateral("page")
        )
        owned = [
            owner.c[key] == any_(owner_ids[name])
            for name, key in zip(self.owners, self.parent_key, strict=True)
        ]
        return (
            select(page)
            .select_from(owner.join(page, true()))
            .where(owner.c.environment_id == bindparam("environment_id"), *owned)
            .order_by(*[page.c[name] for name in self.owners], *sort(page.c))
        )

    async def read(
        self,
        conn: AsyncConnection,
        *,
        environment_id: int,
        owners: Sequence[Any],
        limit: int,
        after: tuple[int, ...] | None,
        backward: bool = False,
        conditions: Sequence[Any] = (),
    ) -> dict[Any, list[Any]]:
        """Up to `limit` rows per owner (keys as services/reading.py: a value, or a tuple),
        nearest the cursor `after` first (backward: the rows before it)."""
        single = len(self.owners) == 1
        parameters: dict[str, Any] = {"environment_id": environment_id, "limit": limit}
        for i, name in enumerate(self.owners):
            values = list(owners) if single else list({o[i] for o in owners})
            parameters[f"owner_{name}"] = values
        if after is not None:
            parameters.update({f"after_{i}": value for i, value in enumerate(after)})
        statement = (
            self.statement(after=after is not None, backward=backward, conditions=conditions)
            if conditions
            else self.cached(after=after is not None, backward=backward)
        )
        result = await conn.execute(statement, parameters)
        record = record_of(tuple(result.keys()))
        owner_of = attrgetter(*self.owners)
        # Composite owners are chosen column by column: keep the pairs asked for.
        wanted = None if single else set(owners)
        pages: dict[Any, list[Any]] = defaultdict(list)
        new = tuple.__new__
        for row in result.all():  # one fetch, not one per row
            found = new(record, row)
            key = owner_of(found)
            if wanted is None or key in wanted:
                pages[key].append(found)
        return pages


@functools.cache
def record_of(columns: tuple[str, ...]) -> type:
    """A named tuple of these columns: the rows pages hold, read field by field by the graph
    types (an attribute of a Row takes 0.4 µs, of a named tuple 0.07 µs)."""
    return namedtuple("Record", columns)  # type: ignore[misc]


def records(pages: dict[Any, list[Any]]) -> dict[Any, list[Any]]:
    """The pages of Rows (services/reading.py) as pages of records."""
    converted: dict[Any, list[Any]] = {}
    for owner, rows in pages.items():
        if rows:
            record = record_of(tuple(rows[0]._fields))
            converted[owner] = [tuple.__new__(record, row) for row in rows]
        else:
            converted[owner] = rows
    return converted


# The columns graph/event.py reads: not `context`, twice the size of `properties`.
EVENT_FIELDS = ("user_id", "id", "session_id", "type", "time_us", "source", "properties")
EVENT_PAGES = LateralPages(
    E,
    EVENT_FIELDS,
    owners=("user_id", "session_id"),
    order=(("time_us", False), ("id", False)),
    parent=S,
    parent_key=("user_id", "id"),
)
SESSION_PAGES = LateralPages(
    S,
    tuple(column.name for column in S.c),
    owners=("user_id",),
    order=(("start_us", True), ("id", True)),
    parent=User.__table__,
    parent_key=("user_id",),
)


async def _grouped(
    keys: Sequence[tuple[Any, ...]],
    fetch: Callable[..., Awaitable[dict[Any, list[Any]]]],
) -> list[list[Any]]:
    """Answer (owner, *shape) keys with one fetch per distinct shape (limit, cursor, ...)."""
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for owner, *shape in keys:
        groups[tuple(shape)].append(owner)
    pages: dict[tuple[Any, ...], list[Any]] = {}
    for shape, owners in groups.items():
        found = await fetch(owners, *shape)
        pages.update({(owner, *shape): found.get(owner, []) for owner in owners})
    return [pages[tuple(key)] for key in keys]


async def users_by_key(loaders: Loaders, keys: Sequence[UserKey]) -> list[Any]:
    """The user rows userIds and identities route to, merges followed (None: nobody).

    One batch for every `user(userId:|identity:)` and `node(id:)` of a request, whatever
    their number: two statements (aliases, then plain userIds). The rows found are primed
    into `loaders.user`, so fields reading a user by its id do not read it again.
    """
    found = await loaders.read(functools.partial(find_users, keys=keys))
    for row in found.values():
        loaders.user.prime(row.user_id, row)
    return [found.get(key) for key in keys]
