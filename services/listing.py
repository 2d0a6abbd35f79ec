"""The Users and Sessions pages: keyset-paginated listings over compiled filters.

Users are listed newest activity first as of a snapshot: the first page fixes a moment
S; later pages order users whose activity changed after S by their last-seen as of S
(recomputed from the events received by then), so new data arriving between pages never
repeats or skips a user that was there from the start. Pages read backward (Relay's
`last`/`before`) keep the same snapshot order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from models import Event, Session, User
from services.sql import chunks, keys_in

U = User.__table__
S = Session.__table__
E = Event.__table__
# Users probed one by one per row of a users page before the set-wise plan runs instead:
# a filter matching fewer than one in this many users (in list order) is found set-wise.
PROBED_PER_ROW = 64


@dataclass(frozen=True, slots=True)
class UsersCursor:
    last_seen_us: int
    user_id: int
    snapshot_us: int


@dataclass(frozen=True, slots=True)
class ListedUser:
    row: Any
    cursor: UsersCursor


async def users_page(
    conn: AsyncConnection,
    *,
    environment_id: int,
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    after: UsersCursor | None,
    now_us: int,
    per_user: Sequence[ColumnElement[bool]] | None = None,
    backward: bool = False,
) -> list[ListedUser]:
    """Up to `limit` users matching `conditions`, newest activity first, after the cursor;
    `backward`: the users before it (before the list's end without one), nearest first.

    Both directions order users as of the cursor's snapshot, so a page read backward holds
    exactly the users a forward walk of that listing holds there.

    `per_user` is the same filter with its event conditions compiled as probes of each
    user's events (`Compiler.users(per_user=True)`). When given, the page is first looked
    for among the next PROBED_PER_ROW × `limit` users of the list only, probing each in
    order; only when they hold fewer than `limit` matches does the set-wise plan run.
    """
    key = (after.last_seen_us, after.user_id) if after is not None else None
    snapshot = after.snapshot_us if after is not None else now_us
    unchanged = [U.c.environment_id == environment_id]
    if key is not None:
        unchanged += [
            U.c.activity_us <= snapshot,
            _past((U.c.last_seen_us, U.c.user_id), key, backward),
        ]
    rows: list[Any] = []
    if per_user is not None:
        window = _probe_window(environment_id, key, PROBED_PER_ROW * limit, backward)
        rows = await _in_order(conn, [*unchanged, *per_user, window], limit, backward)
    if len(rows) < limit:
        rows = await _in_order(conn, [*unchanged, *conditions], limit, backward)
    listed = [ListedUser(r, UsersCursor(r.last_seen_us, r.user_id, snapshot)) for r in rows]
    if key is None:
        return listed
    # Users whose activity changed after the snapshot: few, so probed one by one if possible.
    changed = per_user if per_user is not None else conditions
    as_of = func.coalesce(
        select(func.max(E.c.time_us))
        .where(
            E.c.environment_id == environment_id,
            E.c.user_id == U.c.user_id,
            E.c.received_us <= snapshot,
        )
        .scalar_subquery(),
        U.c.created_us,
    )
    movers = (
        select(U, as_of.label("as_of"))
        .where(
            U.c.environment_id == environment_id,
            *changed,
            U.c.activity_us > snapshot,
            U.c.created_us <= snapshot,
        )
        .subquery()
    )
    moved = await conn.execute(
        select(movers)
        .where(_past((movers.c.as_of, movers.c.user_id), key, backward))
        .order_by(*_users_order(movers.c.as_of, movers.c.user_id, backward))
        .limit(limit)
    )
    listed += [ListedUser(r, UsersCursor(r.as_of, r.user_id, snapshot)) for r in moved]
    listed.sort(
        key=lambda item: (item.cursor.last_seen_us, item.cursor.user_id), reverse=not backward
    )
    return listed[:limit]


def _past(keyset: tuple[Any, Any], key: tuple[int, int], backward: bool) -> ColumnElement[bool]:
    """Users past `key` in the direction of travel (list order: descending)."""
    return tuple_(*keyset) > key if backward else tuple_(*keyset) < key


def _users_order(last_seen: Any, user_id: Any, backward: bool) -> tuple[Any, ...]:
    """The list's order (newest activity first), or its reverse when reading backward."""
    return (last_seen, user_id) if backward else (last_seen.desc(), user_id.desc())


async def _in_order(
    conn: AsyncConnection, where: Sequence[ColumnElement[bool]], limit: int, backward: bool
) -> list[Any]:
    """The first `limit` users matching `where`, newest activity first (backward: oldest)."""
    order = _users_order(U.c.last_seen_us, U.c.user_id, backward)
    rows = await conn.execute(select(U).where(*where).order_by(*order).limit(limit))
    return list(rows)


def _probe_window(
    environment_id: int, key: tuple[int, int] | None, size: int, backward: bool
) -> ColumnElement[bool]:
    """Users among the first `size` of the list past `key` in the direction of travel (ties
    on last-seen included).

    An index condition: probing stops at the window's end, even when the page is not full.
    """
    scanned = select(U.c.last_seen_us).where(U.c.environment_id == environment_id)
    if key is not None:
        scanned = scanned.where(_past((U.c.last_seen_us, U.c.user_id), key, backward))
    order = _users_order(U.c.last_seen_us, U.c.user_id, backward)
    first = scanned.order_by(*order).limit(size).subquery()
    if backward:
        return U.c.last_seen_us <= select(func.max(first.c.last_seen_us)).scalar_subquery()
    return U.c.last_seen_us >= select(func.min(first.c.last_seen_us)).scalar_subquery()


async def count(
    conn: AsyncConnection, table: Any, conditions: Sequence[ColumnElement[bool]]
) -> int:
    """How many rows of `table` match."""
    return int(await conn.scalar(select(func.count()).select_from(table).where(*conditions)) or 0)


async def sessions_page(
    conn: AsyncConnection,
    *,
    environment_id: int,
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    cursor: tuple[int, ...] | None,
    backward: bool = False,
) -> list[Any]:
    """Up to `limit` sessions, newest first, strictly older than `cursor` (start, user id, id);
    `backward`: strictly newer, nearest first (oldest first)."""
    where = [S.c.environment_id == environment_id, *conditions]
    keyset = (S.c.start_us, S.c.user_id, S.c.id)
    if cursor is not None:
        past = tuple_(*keyset) > cursor if backward else tuple_(*keyset) < cursor
        where.append(past)
    order = keyset if backward else tuple(column.desc() for column in keyset)
    rows = await conn.execute(select(S).where(*where).order_by(*order).limit(limit))
    return list(rows)


async def event_names(
    conn: AsyncConnection, *, environment_id: int, low: int | None, high: int | None
) -> list[tuple[str, bool, int]]:
    """(raw type, server side, count) of every event type seen in the range."""
    server_side = (E.c.source == "SERVER").label("server_side")
    where = [E.c.environment_id == environment_id]
    if low is not None:
        where.append(E.c.time_us >= low)
    if high is not None:
        where.append(E.c.time_us <= high)
    rows = await conn.execute(
        select(E.c.type, server_side, func.count())
        .where(*where)
        .group_by(E.c.type, server_side)
        .order_by(func.count().desc(), E.c.type)
    )
    return [(t, bool(s), n) for t, s, n in rows]


async def event_type_counts(
    conn: AsyncConnection,
    *,
    environment_id: int,
    sessions: Sequence[tuple[int, int]],
    shown_definition: Callable[[Any, int], Any],
) -> dict[tuple[int, int], list[tuple[str, int | None, int]]]:
    """Per (user, session): (raw type, shown definition id or None, count), grouped by what
    the timeline displays (a defined event's name, else the raw type)."""
    found: dict[tuple[int, int], list[tuple[str, int | None, int]]] = defaultdict(list)
    definition = shown_definition(E, environment_id).label("definition_id")
    for chunk in chunks(list(set(sessions))):
        shown = (
            select(E.c.user_id, E.c.session_id, E.c.type, definition)
            .where(
                E.c.environment_id == environment_id, keys_in((E.c.user_id, E.c.session_id), chunk)
            )
            .subquery()
        )
        rows = await conn.execute(
            select(
                shown.c.user_id,
                shown.c.session_id,
                shown.c.type,
                shown.c.definition_id,
                func.count(),
            ).group_by(shown.c.user_id, shown.c.session_id, shown.c.type, shown.c.definition_id)
        )
        for user_id, session_id, kind, definition_id, n in rows:
            found[(user_id, session_id)].append((kind, definition_id, n))
    return found


async def sessions_containing(
    conn: AsyncConnection,
    *,
    environment_id: int,
    sessions: Sequence[tuple[int, int]],
    match: Sequence[ColumnElement[bool]],
    events: Any,
) -> set[tuple[int, int]]:
    """Which of the (user, session) pairs hold an event matching `match` (over `events`)."""
    found: set[tuple[int, int]] = set()
    for chunk in chunks(list(set(sessions))):
        rows = await conn.execute(
            select(events.c.user_id, events.c.session_id)
            .distinct()
            .where(
                events.c.environment_id == environment_id,
                keys_in((events.c.user_id, events.c.session_id), chunk),
                *match,
            )
        )
        found.update((u, s) for u, s in rows)
    return found
