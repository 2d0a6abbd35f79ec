"""Batched reads of users, sessions and events, shaped for per-request dataloaders.

Each function answers many keys with one query (chunked under the parameter limit) and
returns rows grouped by key; pages are keyset pages ordered as the contract says.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Event, Session, User
from services.sql import chunks, keys_in

U = User.__table__
S = Session.__table__
E = Event.__table__


async def users_by_id(
    conn: AsyncConnection, *, environment_id: int, user_ids: Sequence[int]
) -> dict[int, Any]:
    found: dict[int, Any] = {}
    for chunk in chunks(list(set(user_ids))):
        rows = await conn.execute(
            select(U).where(U.c.environment_id == environment_id, U.c.user_id.in_(chunk))
        )
        found.update({row.user_id: row for row in rows})
    return found


async def session_counts(
    conn: AsyncConnection, *, environment_id: int, user_ids: Sequence[int], extra: Sequence[Any]
) -> dict[int, int]:
    """Number of sessions per user that satisfy `extra` conditions."""
    found: dict[int, int] = {}
    for chunk in chunks(list(set(user_ids))):
        rows = await conn.execute(
            select(S.c.user_id, func.count())
            .where(S.c.environment_id == environment_id, S.c.user_id.in_(chunk), *extra)
            .group_by(S.c.user_id)
        )
        found.update({user: n for user, n in rows})
    return found


async def sessions_by_id(
    conn: AsyncConnection, *, environment_id: int, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], Any]:
    """Session rows by (user id, session id)."""
    found: dict[tuple[int, int], Any] = {}
    for chunk in chunks(list(set(keys))):
        rows = await conn.execute(
            select(S).where(
                S.c.environment_id == environment_id, keys_in((S.c.user_id, S.c.id), chunk)
            )
        )
        found.update({(row.user_id, row.id): row for row in rows})
    return found


async def events_by_id(
    conn: AsyncConnection, *, environment_id: int, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], Any]:
    """Event rows by (user id, event id)."""
    found: dict[tuple[int, int], Any] = {}
    for chunk in chunks(list(set(keys))):
        rows = await conn.execute(
            select(E).where(
                E.c.environment_id == environment_id, keys_in((E.c.user_id, E.c.id), chunk)
            )
        )
        found.update({(row.user_id, row.id): row for row in rows})
    return found


async def edge_sessions(
    conn: AsyncConnection, *, environment_id: int, user_ids: Sequence[int], last: bool
) -> dict[int, Any]:
    """Each user's first (or last) session."""
    order = (S.c.start_us.desc(), S.c.id.desc()) if last else (S.c.start_us, S.c.id)
    found: dict[int, Any] = {}
    for chunk in chunks(list(set(user_ids))):
        ranked = (
            select(
                S, func.row_number().over(partition_by=S.c.user_id, order_by=order).label("rank")
            )
            .where(S.c.environment_id == environment_id, S.c.user_id.in_(chunk))
            .subquery()
        )
        rows = await conn.execute(
            select(*[ranked.c[c.name] for c in S.c]).where(ranked.c.rank == 1)
        )
        found.update({row.user_id: row for row in rows})
    return found


async def session_pages(
    conn: AsyncConnection,
    *,
    environment_id: int,
    user_ids: Sequence[int],
    limit: int,
    cursor: tuple[int, int] | None,
    backward: bool = False,
    extra: Sequence[Any] = (),
) -> dict[int, list[Any]]:
    """Up to `limit` sessions per user, newest first, strictly older than `cursor` (start, id);
    `backward`: strictly newer, nearest first (oldest first)."""
    conditions = [S.c.environment_id == environment_id, *extra]
    keyset = (S.c.start_us, S.c.id)
    if cursor is not None:
        conditions.append(_beyond(keyset, cursor, descending=not backward))
    return await _ranked_pages(
        conn, S, S.c.user_id, user_ids, conditions, _sort(keyset, not backward), limit
    )


async def event_pages(
    conn: AsyncConnection,
    *,
    environment_id: int,
    sessions: Sequence[tuple[int, int]],
    limit: int,
    cursor: tuple[int, int] | None,
    backward: bool = False,
) -> dict[tuple[int, int], list[Any]]:
    """Up to `limit` events per (user, session), oldest first, strictly after `cursor` (time,
    id); `backward`: strictly before, nearest first (latest first)."""
    conditions = [E.c.environment_id == environment_id]
    keyset = (E.c.time_us, E.c.id)
    if cursor is not None:
        conditions.append(_beyond(keyset, cursor, descending=backward))
    pages = await _ranked_pages(
        conn,
        E,
        tuple_(E.c.user_id, E.c.session_id),
        sessions,
        conditions,
        _sort(keyset, backward),
        limit,
    )
    return pages


def _beyond(keyset: tuple[Any, ...], cursor: tuple[int, ...], *, descending: bool) -> Any:
    """Rows past `cursor` in a keyset order (descending or not)."""
    return tuple_(*keyset) < tuple_(*cursor) if descending else tuple_(*keyset) > tuple_(*cursor)


def _sort(keyset: tuple[Any, ...], descending: bool) -> tuple[Any, ...]:
    return tuple(column.desc() for column in keyset) if descending else keyset


async def _ranked_pages(
    conn: AsyncConnection,
    table: Any,
    key: Any,
    keys: Sequence[Any],
    conditions: list[Any],
    order: tuple[Any, ...],
    limit: int,
) -> dict[Any, list[Any]]:
    pages: dict[Any, list[Any]] = defaultdict(list)
    partition = list(key.clauses) if hasattr(key, "clauses") else [key]
    for chunk in chunks(list(set(keys))):
        owned = keys_in(partition, chunk) if len(partition) > 1 else key.in_(chunk)
        ranked = (
            select(
                table, func.row_number().over(partition_by=partition, order_by=order).label("rank")
            )
            .where(*conditions, owned)
            .subquery()
        )
        rows = await conn.execute(
            select(*[ranked.c[c.name] for c in table.c])
            .where(ranked.c.rank <= limit)
            .order_by(*[ranked.c[c.name] for c in partition], ranked.c.rank)
        )
        for row in rows.all():  # one fetch, not one per row
            group = tuple(getattr(row, c.name) for c in partition)
            pages[group if len(group) > 1 else group[0]].append(row)
    return pages
