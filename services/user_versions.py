"""Users' sort keys as they were before each change, for users lists sorted as of a snapshot.

A users list in an order other than last seen (services/user_order.py) places every user by
its sort key as of the list's first page. A write that may change a user's first seen,
counts or properties first keeps the user's row as it is (`keep`) in `user_versions`, valid
until the write's time, and marks the user changed then (`users.sorted_us`). A later page
reads a user changed since the snapshot from the first version valid past it: the value the
first page saw.

Several writes at one time keep the first version (the state before all of them). A listing's
cursors last `KEPT_FOR_US` (services/user_order.py refuses older ones), so each write also
drops the users' versions older than that: none of them can be read any more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Table, bindparam, delete, func, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Event, Session, User, UserVersion
from services.clock import DAY_US, now_us
from services.identity import ONE_USER, update_users
from services.sql import chunks, insert_ignoring_duplicates

U = User.__table__
V = UserVersion.__table__
E = Event.__table__
S = Session.__table__
KEPT_FOR_US = DAY_US
KEPT = ("identity", "email", "properties", "autocaptured")
COUNTED = ("first_seen_us", "event_count", "session_count")


async def keep(
    conn: AsyncConnection,
    *,
    environment_id: int,
    user_ids: Sequence[int],
    at_us: int | None = None,
) -> None:
    """Keep the users' current sort keys as their version until `at_us` (now), and mark
    them changed then. Call before changing any of them."""
    at = now_us() if at_us is None else at_us
    columns = [*KEPT, *COUNTED]
    for chunk in chunks(sorted(set(user_ids))):
        mine = (U.c.environment_id == environment_id, U.c.user_id.in_(chunk))
        current = select(
            U.c.environment_id,
            U.c.user_id,
            literal(at, BigInteger).label("until_us"),
            *[U.c[c] for c in columns],
        ).where(*mine)
        await conn.execute(
            insert_ignoring_duplicates(
                conn, V, ["environment_id", "user_id", "until_us"]
            ).from_select(["environment_id", "user_id", "until_us", *columns], current)
        )
        await conn.execute(update(U).where(*mine).values(sorted_us=at))
        await conn.execute(
            delete(V).where(
                V.c.environment_id == environment_id,
                V.c.user_id.in_(chunk),
                V.c.until_us < at - KEPT_FOR_US,
            )
        )


async def count(
    conn: AsyncConnection,
    *,
    environment_id: int,
    added: dict[int, int],
    at_us: int,
) -> None:
    """Add `added[user]` events to each user's event count and recount their sessions (the
    sessionizer may have joined or split some), marking them changed at `at_us`."""
    sessions: dict[int, int] = {}
    for chunk in chunks(sorted(added)):
        rows = await conn.execute(
            select(S.c.user_id, func.count())
            .where(S.c.environment_id == environment_id, S.c.user_id.in_(chunk))
            .group_by(S.c.user_id)
        )
        sessions.update({user: n for user, n in rows})
    await update_users(
        conn,
        _COUNT,
        environment_id=environment_id,
        rows=[
            {"user_id": user, "added": n, "sessions": sessions.get(user, 0)}
            for user, n in added.items()
        ],
        now=at_us,
    )


_COUNT = (
    update(U)
    .where(*ONE_USER)
    .values(
        event_count=U.c.event_count + bindparam("b_added"),
        session_count=bindparam("b_sessions"),
        sorted_us=bindparam("b_now"),
    ),
    text(
        """UPDATE users AS u SET event_count = u.event_count + v.added,
  session_count = v.sessions, sorted_us = :now
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(user_id bigint, added int, sessions int)
WHERE u.environment_id = :env AND u.user_id = v.user_id
  AND u.user_id = ANY(CAST(:users AS bigint[]))"""
    ),
)


async def recount(conn: AsyncConnection, *, environment_id: int, user_id: int, at_us: int) -> None:
    """Count one user's events and sessions afresh (after a merge), marking it changed."""
    await conn.execute(
        update(U)
        .where(U.c.environment_id == environment_id, U.c.user_id == user_id)
        .values(
            event_count=_rows_of(E, environment_id, user_id),
            session_count=_rows_of(S, environment_id, user_id),
            sorted_us=at_us,
        )
    )


def _rows_of(table: Table, environment_id: int, user_id: int) -> Any:
    """How many rows of a per-user table one user has, as a scalar subquery."""
    return (
        select(func.count())
        .select_from(table)
        .where(table.c.environment_id == environment_id, table.c.user_id == user_id)
        .scalar_subquery()
    )


async def forget(conn: AsyncConnection, *, environment_id: int, user_id: int) -> None:
    """Drop a user's versions (the user is gone)."""
    await conn.execute(
        delete(V).where(V.c.environment_id == environment_id, V.c.user_id == user_id)
    )
