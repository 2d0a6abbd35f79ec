"""Exports of users, sessions and events: rows read in keyset pages, in the lists' order.

Users come in the users list's order (services/listing.py `users_page`, with the filter
compiled as for the list), sessions in the Sessions page's, events newest first. Each page
is read on a connection of its own and turned into plain rows (dicts of JSON values) before
the next is read, so an export holds one page at a time whatever its size, and a slow
client holds no connection between pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from models.db import Database
from services import definitions, ids, listing, reading, segments
from services.clock import now_us, to_datetime
from services.filter_json import EventFilter
from services.filter_size import expanded_size, within_limits
from services.filters import Compiler, SessionFilter, UserFilter
from services.identity import UserKey, resolve_existing
from services.users import display_name

PAGE = 1000
E = listing.E
U = listing.U

USER_COLUMNS = (
    "userId", "identity", "email", "displayName", "firstSeen", "lastSeen",
    "sessionCount", "eventCount", "properties",
)  # fmt: skip
SESSION_COLUMNS = (
    "id", "userId", "identity", "source", "startTime", "endTime", "durationSeconds",
    "eventCount", "browser", "platform", "deviceType", "landingPage", "referrer",
    "country", "region", "city",
)  # fmt: skip
EVENT_COLUMNS = (
    "id", "userId", "sessionId", "type", "time", "source", "serverSide", "properties",
)  # fmt: skip

Row = dict[str, Any]
T = TypeVar("T")
# Page reads finishing after their export was cancelled (strong references: see `_read`).
_finishing: set[asyncio.Task[Any]] = set()


@dataclass(slots=True)
class Export:
    """One export: its columns and an iterator of its rows (first page already read)."""

    columns: tuple[str, ...]
    rows: AsyncIterator[Row]


def _time(micros: int) -> str:
    return to_datetime(micros).isoformat()


def _compiler(db: Database, environment_id: int) -> Compiler:
    return Compiler(
        environment_id, db.dialect, now_us(), definition_condition=definitions.matched_by
    )


async def _read(
    db: Database, read: Callable[[AsyncConnection, Any], Awaitable[T]], after: Any
) -> T:
    """`read(conn, after)` on a connection of its own, run to its end even when the export is
    cancelled meanwhile (its client left): a statement cut short makes the driver drop the
    connection instead of returning it to the pool. The export then stops after this page."""

    async def run() -> T:
        async with db.read() as conn:
            return await read(conn, after)

    task = asyncio.ensure_future(run())
    _finishing.add(task)
    task.add_done_callback(_finished)
    return await asyncio.shield(task)


def _finished(task: asyncio.Task[Any]) -> None:
    _finishing.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a page nobody waits for any more fails quietly


async def _primed(pages: AsyncIterator[list[Row]]) -> AsyncIterator[Row]:
    """The rows of `pages`, with the first page read before this returns.

    A filter naming an unknown segment, or a database that is down, then fails before the
    response has started, where it can still be an HTTP error.
    """
    first: list[Row] = await anext(pages, [])

    async def rows() -> AsyncIterator[Row]:
        for row in first:
            yield row
        async for page in pages:
            for row in page:
                yield row

    return rows()


async def users(db: Database, environment_id: int, wanted: UserFilter) -> Export:
    """Users matching `wanted`, in the users list's order; InvalidInput for a bad segment."""
    compiler = _compiler(db, environment_id)
    async with db.read() as conn:
        found = await segments.resolve_filters(
            conn, environment_id=environment_id, user_filter=wanted
        )
    within_limits(expanded_size(wanted, found), "filter")
    compiler.segments = found
    conditions = compiler.users(wanted)

    async def page(conn: AsyncConnection, after: listing.UsersCursor | None) -> Any:
        listed = await listing.users_page(
            conn,
            environment_id=environment_id,
            conditions=conditions,
            limit=PAGE,
            after=after,
            now_us=compiler.now_us,
        )
        return listed

    async def pages() -> AsyncIterator[list[Row]]:
        after: listing.UsersCursor | None = None
        while True:
            listed = await _read(db, page, after)
            yield [_user_row(item.row) for item in listed]
            if len(listed) < PAGE:
                return
            after = listed[-1].cursor

    return Export(USER_COLUMNS, await _primed(pages()))


def _user_row(row: Any) -> Row:
    """A user's line; its counts as the SortKeys projection keeps them on the row."""
    return {
        "userId": str(row.user_id),
        "identity": row.identity,
        "email": row.email,
        "displayName": display_name(row),
        "firstSeen": _time(row.first_seen_us),
        "lastSeen": _time(row.last_seen_us),
        "sessionCount": row.session_count,
        "eventCount": row.event_count,
        "properties": {**(row.properties or {}), **(row.autocaptured or {})},
    }


async def _named_user(
    db: Database, environment_id: int, user_id: str | None, identity: str | None
) -> int | None:
    key = (
        UserKey("user_id", user_id) if user_id is not None else UserKey("identity", identity or "")
    )
    async with db.read() as conn:
        return await resolve_existing(conn, environment_id=environment_id, key=key)


async def sessions(
    db: Database, environment_id: int, wanted: SessionFilter, user_id: str | None
) -> Export:
    """Sessions matching `wanted` (and of the user `user_id` or its identity names), newest
    first as on the Sessions page."""
    named = user_id is not None or wanted.identity is not None
    owner = await _named_user(db, environment_id, user_id, wanted.identity) if named else None
    conditions = _compiler(db, environment_id).sessions(wanted, user_id=owner)

    async def page(conn: AsyncConnection, cursor: tuple[int, ...] | None) -> Any:
        rows = await listing.sessions_page(
            conn, environment_id=environment_id, conditions=conditions, limit=PAGE, cursor=cursor
        )
        return rows, await _identities(conn, environment_id, [r.user_id for r in rows])

    async def pages() -> AsyncIterator[list[Row]]:
        if named and owner is None:
            return
        cursor: tuple[int, ...] | None = None
        while True:
            rows, people = await _read(db, page, cursor)
            yield [_session_row(r, people.get(r.user_id)) for r in rows]
            if len(rows) < PAGE:
                return
            cursor = (rows[-1].start_us, rows[-1].user_id, rows[-1].id)

    return Export(SESSION_COLUMNS, await _primed(pages()))


async def _identities(
    conn: AsyncConnection, environment_id: int, user_ids: Sequence[int]
) -> dict[int, Any]:
    found = await reading.users_by_id(conn, environment_id=environment_id, user_ids=user_ids)
    return {user: row.identity for user, row in found.items()}


def _session_row(row: Any, identity: str | None) -> Row:
    return {
        "id": ids.encode("Session", row.user_id, row.id),
        "userId": str(row.user_id),
        "identity": identity,
        "source": row.source,
        "startTime": _time(row.start_us),
        "endTime": _time(row.end_us),
        "durationSeconds": (row.end_us - row.start_us) // 1_000_000,
        "eventCount": row.event_count,
        "browser": row.browser,
        "platform": row.platform,
        "deviceType": row.device_type,
        "landingPage": row.landing_page,
        "referrer": row.referrer,
        "country": row.country,
        "region": row.region,
        "city": row.city,
    }


async def events(db: Database, environment_id: int, wanted: EventFilter) -> Export:
    """Events matching `wanted`, newest first (time, then user and id, descending)."""
    named = wanted.user_id is not None or wanted.identity is not None
    owner = (
        await _named_user(db, environment_id, wanted.user_id, wanted.identity) if named else None
    )
    compiler = _compiler(db, environment_id)
    conditions = [E.c.environment_id == environment_id, *compiler.within(E.c.time_us, wanted.time)]
    if owner is not None:
        conditions.append(E.c.user_id == owner)
    if wanted.type is not None:
        conditions.append(E.c.type == wanted.type)
    keyset = (E.c.time_us, E.c.user_id, E.c.id)
    order = tuple(column.desc() for column in keyset)

    async def page(conn: AsyncConnection, cursor: tuple[int, int, int] | None) -> list[Any]:
        where = [*conditions, *([tuple_(*keyset) < cursor] if cursor is not None else [])]
        return list(await conn.execute(select(E).where(*where).order_by(*order).limit(PAGE)))

    async def pages() -> AsyncIterator[list[Row]]:
        if named and owner is None:
            return
        cursor: tuple[int, int, int] | None = None
        while True:
            rows = await _read(db, page, cursor)
            yield [_event_row(r) for r in rows]
            if len(rows) < PAGE:
                return
            cursor = (rows[-1].time_us, rows[-1].user_id, rows[-1].id)

    return Export(EVENT_COLUMNS, await _primed(pages()))


def _event_row(row: Any) -> Row:
    return {
        "id": ids.encode("Event", row.user_id, row.id),
        "userId": str(row.user_id),
        "sessionId": ids.encode("Session", row.user_id, row.session_id),
        "type": row.type,
        "time": _time(row.time_us),
        "source": row.source,
        "serverSide": row.source == "SERVER",
        "properties": row.properties or {},
    }
