"""Static segments: a fixed list of users, made from a filter's members now and/or from ids,
then changed by adding and removing users.

Orchestrates services/segments.py (the segment row, its name and its place among segments),
services/segment_members.py (its list) and services/identity.py (which user an id names:
a userId merged away names the user it was merged into). Every change is all or nothing:
an id that names no user refuses the call, with an error per such id at its index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from models.db import Database
from services import definitions, identity, listing, segment_members, segments, users
from services.clock import now_us
from services.errors import Conflict, InvalidInput, InvalidItems, NotFound, Problem
from services.filter_size import expanded_size, within_limits
from services.filters import Compiler, UserFilter
from services.identity import UserKey
from services.limits import MAX_SEGMENT_MEMBER_IDS, MAX_STATIC_SEGMENT_MEMBERS


def user_keys(values: Sequence[Any], field: str) -> list[UserKey]:
    """The user each id names, as a routing key: a global User id or a userId (numeric).

    InvalidItems with a problem per unreadable id (`field[index]`); InvalidInput when there
    are more than MAX_SEGMENT_MEMBER_IDS.
    """
    if len(values) > MAX_SEGMENT_MEMBER_IDS:
        raise InvalidInput(
            f"at most {MAX_SEGMENT_MEMBER_IDS} ids per call, got {len(values)}: send them in "
            "several calls",
            field=field,
            code="TOO_MANY_IDS",
        )
    keys: list[UserKey] = []
    problems: list[Problem] = []
    for index, value in enumerate(values):
        try:
            keys.append(users.user_key(value, f"{field}[{index}]"))
        except InvalidInput as error:
            problems.append(error.problem.at(index))
    if problems:
        raise InvalidItems(problems)
    return keys


async def _users(
    conn: AsyncConnection, environment_id: int, keys: list[UserKey], field: str
) -> set[int]:
    """The users the keys name, locked; InvalidItems naming each key that names no user."""
    routes = await identity.resolve(
        conn, environment_id=environment_id, keys=keys, now_us=now_us(), create=False
    )
    problems = [
        Problem(
            "UNKNOWN_USER",
            f"no user with userId {key.value} in this environment",
            f"{field}[{index}]",
            index,
        )
        for index, key in enumerate(keys)
        if key not in routes
    ]
    if problems:
        raise InvalidItems(problems)
    return {routes[key] for key in keys}


async def _snapshot(
    conn: AsyncConnection, environment_id: int, segment_id: int, wanted: UserFilter
) -> None:
    """List the users `wanted` selects now: those a dynamic segment of it would hold (its
    `seen` range defaults to 7 days)."""
    found = await segments.resolve_filters(
        conn, environment_id=environment_id, user_filter=wanted, field="input.filter.segmentId"
    )
    within_limits(expanded_size(wanted, found), "input.filter")
    moment = now_us()
    compiler = Compiler(
        environment_id,
        conn.dialect.name,
        moment,
        definition_condition=definitions.matched_by,
        segments=found,
    )
    conditions = compiler.users(wanted)
    selected = await listing.count(
        conn, listing.U, [listing.U.c.environment_id == environment_id, *conditions]
    )
    if selected > MAX_STATIC_SEGMENT_MEMBERS:
        raise InvalidInput(
            f"the filter selects {selected:,} users; a static segment lists at most "
            f"{MAX_STATIC_SEGMENT_MEMBERS:,}: narrow the filter, or save it as a dynamic segment",
            field="input.filter",
            code="TOO_MANY_MEMBERS",
        )
    await segment_members.add_selected(
        conn,
        environment_id=environment_id,
        segment_id=segment_id,
        conditions=conditions,
        now_us=moment,
    )


async def create(
    db: Database,
    *,
    environment_id: int,
    name: Any,
    description: Any,
    user_filter: UserFilter | None,
    user_ids: Sequence[Any] | None,
) -> Any:
    """Save a static segment listing the users `user_filter` selects now and those `user_ids`
    name (either or both; duplicates count once)."""
    if user_filter is None and user_ids is None:
        raise InvalidInput(
            "a static segment is made from a `filter` (its users now), from `userIds`, or both",
            field="input.userIds",
            code="MISSING_MEMBERS",
        )
    if user_filter is not None:
        user_filter.checked("input.filter")
    keys = user_keys(user_ids or [], "input.userIds")

    async def fill(conn: AsyncConnection, segment_id: int) -> None:
        if user_filter is not None:
            await _snapshot(conn, environment_id, segment_id, user_filter)
        if keys:
            await segment_members.add(
                conn,
                environment_id=environment_id,
                segment_id=segment_id,
                user_ids=await _users(conn, environment_id, keys, "input.userIds"),
                now_us=now_us(),
            )
            await segment_members.within_limit(
                conn, environment_id=environment_id, segment_id=segment_id, field="input.userIds"
            )

    return await segments.create(
        db,
        environment_id=environment_id,
        name=name,
        description=description,
        user_filter=UserFilter(),
        fill=fill,
    )


async def _static(conn: AsyncConnection, environment_id: int, segment_id: int) -> Any:
    saved = await segments.get(conn, environment_id=environment_id, segment_id=segment_id)
    if saved is None:
        raise NotFound("no such segment", field="id", code="UNKNOWN_SEGMENT")
    if saved.kind != segments.STATIC:
        raise Conflict(
            "this segment is dynamic: its filter decides who belongs; change the filter with "
            "updateSegment, or make a static segment",
            field="id",
            code="NOT_STATIC",
        )
    return saved


async def add_members(
    db: Database, *, environment_id: int, segment_id: int, user_ids: Sequence[Any]
) -> Any:
    """List more users in a static segment (those listed already are ignored); the segment."""
    keys = user_keys(user_ids, "userIds")

    async def work(conn: AsyncConnection) -> Any:
        saved = await _static(conn, environment_id, segment_id)
        chosen = await _users(conn, environment_id, keys, "userIds")
        await segment_members.add(
            conn,
            environment_id=environment_id,
            segment_id=segment_id,
            user_ids=chosen,
            now_us=now_us(),
        )
        await segment_members.within_limit(
            conn, environment_id=environment_id, segment_id=segment_id, field="userIds"
        )
        return saved

    return await db.write(work)


async def remove_members(
    db: Database, *, environment_id: int, segment_id: int, user_ids: Sequence[Any]
) -> Any:
    """Unlist users from a static segment (those not listed are ignored); the segment."""
    keys = user_keys(user_ids, "userIds")

    async def work(conn: AsyncConnection) -> Any:
        saved = await _static(conn, environment_id, segment_id)
        chosen = await _users(conn, environment_id, keys, "userIds")
        await segment_members.remove(
            conn, environment_id=environment_id, segment_id=segment_id, user_ids=chosen
        )
        return saved

    return await db.write(work)
