"""A session's neighbours: the same user's previous and next session, in list order.

A user's sessions are ordered by (start, id), as every session list orders them; the
previous session of the first one and the next of the last one are None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Session
from services.sql import chunks, keys_in

S = Session.__table__
# Keys per statement: its two halves bind each key three times, under every driver's limit.
MAX_KEYS = 2000


def _neighbour_of(environment_id: int, chunk: Sequence[tuple[int, int]], *, after: bool) -> Any:
    """Rows of the neighbours of the sessions in `chunk`, labelled with whose they are."""
    of = S.alias("of")
    near = S.alias("near")
    if after:
        beyond = or_(
            near.c.start_us > of.c.start_us,
            and_(near.c.start_us == of.c.start_us, near.c.id > of.c.id),
        )
        order: tuple[Any, ...] = (near.c.start_us, near.c.id)
    else:
        beyond = or_(
            near.c.start_us < of.c.start_us,
            and_(near.c.start_us == of.c.start_us, near.c.id < of.c.id),
        )
        order = (near.c.start_us.desc(), near.c.id.desc())
    # The (environment, user, start) index walks from the session to its neighbour.
    nearest = (
        select(near.c.id)
        .where(near.c.environment_id == environment_id, near.c.user_id == of.c.user_id, beyond)
        .order_by(*order)
        .limit(1)
        .correlate(of)
        .scalar_subquery()
    )
    found = S.alias("found")
    return (
        select(
            *found.c,
            of.c.user_id.label("of_user_id"),
            of.c.id.label("of_id"),
            literal(after).label("after"),
        )
        .select_from(of)
        .join(
            found,
            and_(
                found.c.environment_id == environment_id,
                found.c.user_id == of.c.user_id,
                found.c.id == nearest,
            ),
        )
        .where(of.c.environment_id == environment_id, keys_in((of.c.user_id, of.c.id), chunk))
    )


async def neighbours(
    conn: AsyncConnection, *, environment_id: int, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], tuple[Any, Any]]:
    """(previous row, next row) of each session (user id, session id); None at the ends."""
    found: dict[tuple[int, int], tuple[Any, Any]] = {}
    for chunk in chunks(list(set(keys)), MAX_KEYS):
        statement = union_all(
            _neighbour_of(environment_id, chunk, after=False),
            _neighbour_of(environment_id, chunk, after=True),
        )
        for row in await conn.execute(statement):
            key = (row.of_user_id, row.of_id)
            previous, following = found.get(key, (None, None))
            found[key] = (previous, row) if row.after else (row, following)
    return found
