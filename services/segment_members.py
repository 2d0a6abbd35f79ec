"""The users a static segment lists (segment_members): adding, removing, counting, and
following a user through a merge or a deletion.

A member row is one user's row (on Citus it lives on the user's shard), so a merge moves the
merged user's memberships to the survivor (copy, then delete, as every per-user row) and a
user's erasure erases them. Members are counted through the users table, so a row whose user
went away in a race with a snapshot never counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import BigInteger, ColumnElement, delete, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from models import SegmentMember, User
from services.errors import InvalidInput
from services.limits import MAX_STATIC_SEGMENT_MEMBERS
from services.sql import chunks, insert_ignoring_duplicates

M = SegmentMember.__table__
U = User.__table__
KEY = ["environment_id", "segment_id", "user_id"]


def listed(environment_id: int, segment_id: int) -> ColumnElement[bool]:
    """Users (rows of `users`) the static segment lists."""
    members = select(M.c.user_id).where(
        M.c.environment_id == environment_id, M.c.segment_id == segment_id
    )
    return U.c.user_id.in_(members)


async def count(conn: AsyncConnection, *, environment_id: int, segment_id: int) -> int:
    """How many users the static segment lists."""
    found = await conn.scalar(
        select(func.count())
        .select_from(U)
        .where(U.c.environment_id == environment_id, listed(environment_id, segment_id))
    )
    return int(found or 0)


async def add(
    conn: AsyncConnection,
    *,
    environment_id: int,
    segment_id: int,
    user_ids: Iterable[int],
    now_us: int,
) -> None:
    """List these (existing, resolved) users; those listed already stay as they were."""
    wanted = sorted(set(user_ids))
    if wanted:
        await conn.execute(
            insert_ignoring_duplicates(conn, M, KEY),
            [
                {
                    "environment_id": environment_id,
                    "segment_id": segment_id,
                    "user_id": user,
                    "added_us": now_us,
                }
                for user in wanted
            ],
        )


async def add_selected(
    conn: AsyncConnection,
    *,
    environment_id: int,
    segment_id: int,
    conditions: Sequence[ColumnElement[bool]],
    now_us: int,
) -> None:
    """List every user the compiled users-filter `conditions` select now, in one statement."""
    chosen = select(
        U.c.environment_id,
        literal(segment_id).label("segment_id"),
        U.c.user_id,
        literal(now_us, BigInteger).label("added_us"),
    ).where(U.c.environment_id == environment_id, *conditions)
    await conn.execute(
        insert_ignoring_duplicates(conn, M, KEY).from_select(
            ["environment_id", "segment_id", "user_id", "added_us"], chosen
        )
    )


async def remove(
    conn: AsyncConnection, *, environment_id: int, segment_id: int, user_ids: Iterable[int]
) -> None:
    """Unlist these users; those not listed are ignored."""
    for chunk in chunks(sorted(set(user_ids))):
        await conn.execute(
            delete(M).where(
                M.c.environment_id == environment_id,
                M.c.segment_id == segment_id,
                M.c.user_id.in_(chunk),
            )
        )


async def clear(conn: AsyncConnection, *, environment_id: int, segment_id: int) -> None:
    """Unlist everyone (the segment is being deleted)."""
    await conn.execute(
        delete(M).where(M.c.environment_id == environment_id, M.c.segment_id == segment_id)
    )


async def within_limit(
    conn: AsyncConnection, *, environment_id: int, segment_id: int, field: str
) -> None:
    """InvalidInput (TOO_MANY_MEMBERS) when the segment lists more than the limit."""
    found = await count(conn, environment_id=environment_id, segment_id=segment_id)
    if found > MAX_STATIC_SEGMENT_MEMBERS:
        raise InvalidInput(
            f"a static segment lists at most {MAX_STATIC_SEGMENT_MEMBERS:,} users; this would "
            f"list {found:,}: narrow the filter, or use a dynamic segment",
            field=field,
            code="TOO_MANY_MEMBERS",
        )


async def on_merge(
    conn: AsyncConnection, *, environment_id: int, source_id: int, target_id: int
) -> None:
    """The merged user's memberships become the survivor's (a segment listing both keeps one)."""
    owned = (M.c.environment_id == environment_id) & (M.c.user_id == source_id)
    moved = select(
        M.c.environment_id,
        M.c.segment_id,
        literal(target_id, BigInteger).label("user_id"),
        M.c.added_us,
    ).where(owned)
    # Copy then delete, never an UPDATE of user_id: on Citus that is the distribution column.
    await conn.execute(
        insert_ignoring_duplicates(conn, M, KEY).from_select(
            ["environment_id", "segment_id", "user_id", "added_us"], moved
        )
    )
    await conn.execute(delete(M).where(owned))


async def on_user_deleted(conn: AsyncConnection, *, environment_id: int, user_id: int) -> None:
    """Forget an erased user's memberships."""
    await conn.execute(
        delete(M).where(M.c.environment_id == environment_id, M.c.user_id == user_id)
    )
