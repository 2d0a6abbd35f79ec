"""Segments: saved, named user filters. Membership is evaluated when queried (always current).

A STATIC segment is a fixed list of users instead (services/static_segments.py makes and
changes one; services/segment_members.py holds its list): here it is a row of kind STATIC
with an empty filter, named by other filters like any segment (`members_of`).

A segment's filter may name other segments (`segmentId`); cycles are refused, and so is
deleting a segment that another one uses. A named segment is inlined where it is named
when a filter compiles, so saving refuses a filter whose expanded size passes the limits of
services/limits.py (MAX_FILTER_CONDITIONS, MAX_FILTER_VALUES, MAX_SEGMENT_DEPTH), and an
update also one that would make a segment naming this one pass them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from models.db import Database
from models.segment import Segment
from services import segment_members
from services.clock import now_us, to_datetime, to_micros
from services.conditions import PropertyCondition
from services.errors import Conflict, InvalidInput, NotFound
from services.filter_size import FilterSize, SizeMeasure, within_limits
from services.filters import EventCondition, EventMatch, TimeRange, UserFilter
from services.limits import MAX_SEGMENT_DEPTH

T = Segment.__table__
DYNAMIC, STATIC = "DYNAMIC", "STATIC"
MAX_NAME = 255
MAX_DESCRIPTION = 4096


# ---------------------------------------------------------------- the saved form


def _range_document(time: TimeRange | None) -> dict[str, Any] | None:
    if time is None:
        return None
    found: dict[str, Any] = {}
    if time.last_days is not None:
        found["lastDays"] = time.last_days
    if time.from_us is not None:
        found["from"] = to_datetime(time.from_us).isoformat()
    if time.to_us is not None:
        found["to"] = to_datetime(time.to_us).isoformat()
    return found


def _conditions_document(conditions: tuple[PropertyCondition, ...]) -> list[dict[str, Any]]:
    return [{"property": c.property, "op": c.op, "value": c.document_value()} for c in conditions]


def to_document(user_filter: UserFilter) -> dict[str, Any]:
    """The filter in the contract's UserFilter shape (ids as numbers)."""
    document: dict[str, Any] = {}
    if user_filter.seen is not None:
        document["seen"] = _range_document(user_filter.seen)
    if user_filter.properties:
        document["properties"] = _conditions_document(user_filter.properties)
    if user_filter.events:
        document["events"] = [
            {
                "event": {
                    "definitionId": c.event.definition_id,
                    "type": c.event.type,
                    "where": _conditions_document(c.event.where),
                },
                "did": c.did,
                "atLeast": c.at_least,
                "time": _range_document(c.time),
            }
            for c in user_filter.events
        ]
    if user_filter.any_of:
        document["anyOf"] = [to_document(nested) for nested in user_filter.any_of]
    if user_filter.segment_id is not None:
        document["segmentId"] = user_filter.segment_id
    return document


def _range(value: dict[str, Any] | None) -> TimeRange | None:
    if not value:
        return None
    return TimeRange(
        last_days=value.get("lastDays"),
        from_us=to_micros_iso(value["from"]) if value.get("from") else None,
        to_us=to_micros_iso(value["to"]) if value.get("to") else None,
    )


def to_micros_iso(text: str) -> int:
    from datetime import datetime

    return to_micros(datetime.fromisoformat(text))


def _conditions(values: list[dict[str, Any]] | None) -> tuple[PropertyCondition, ...]:
    return tuple(PropertyCondition(v["property"], v["op"], v.get("value")) for v in values or [])


def from_document(document: dict[str, Any]) -> UserFilter:
    """The filter a saved document describes."""
    return UserFilter(
        seen=_range(document.get("seen")),
        properties=_conditions(document.get("properties")),
        events=tuple(
            EventCondition(
                event=EventMatch(
                    definition_id=c["event"].get("definitionId"),
                    type=c["event"].get("type"),
                    where=_conditions(c["event"].get("where")),
                ),
                did=c.get("did", True),
                at_least=c.get("atLeast", 1),
                time=_range(c.get("time")),
            )
            for c in document.get("events") or []
        ),
        any_of=tuple(from_document(nested) for nested in document.get("anyOf") or []),
        segment_id=document.get("segmentId"),
    )


def referenced(user_filter: UserFilter) -> Iterator[int]:
    """Ids of the segments a filter names, at any depth of anyOf."""
    if user_filter.segment_id is not None:
        yield user_filter.segment_id
    for nested in user_filter.any_of:
        yield from referenced(nested)


# ---------------------------------------------------------------- reading


async def list_(conn: AsyncConnection, *, environment_id: int) -> list[Any]:
    """The environment's segments, oldest first."""
    rows = await conn.execute(
        select(T).where(T.c.environment_id == environment_id).order_by(T.c.created_us, T.c.id)
    )
    return list(rows)


async def get(conn: AsyncConnection, *, environment_id: int, segment_id: int) -> Any:
    """One segment of the environment, or None (also for another environment's segment)."""
    rows = await conn.execute(
        select(T).where(T.c.environment_id == environment_id, T.c.id == segment_id)
    )
    return rows.first()


async def resolve_filters(
    conn: AsyncConnection,
    *,
    environment_id: int,
    user_filter: UserFilter,
    field: str = "filter.segmentId",
) -> dict[int, UserFilter]:
    """Every segment `user_filter` names, transitively, by id; unknown ids are refused.

    Read one level of references per statement; a segment first named more than
    MAX_SEGMENT_DEPTH levels down is refused (FILTER_TOO_COMPLEX) without reading further.
    """
    found: dict[int, UserFilter] = {}
    level = list(dict.fromkeys(referenced(user_filter)))
    depth = 0
    while level:
        depth += 1
        if depth > MAX_SEGMENT_DEPTH:
            within_limits(FilterSize(segment_depth=depth), field.removesuffix(".segmentId"))
        wanted = [T.c.environment_id == environment_id, T.c.id.in_(level)]
        rows = await conn.execute(select(T.c.id, T.c.kind, T.c.filter).where(*wanted))
        for row in rows:
            found[row.id] = (
                UserFilter(members_of=row.id) if row.kind == STATIC else from_document(row.filter)
            )
        missing = next((segment_id for segment_id in level if segment_id not in found), None)
        if missing is not None:
            raise InvalidInput(
                f"no segment with id {missing} in this environment",
                field=field,
                code="UNKNOWN_SEGMENT",
            )
        named = (n for segment_id in level for n in referenced(found[segment_id]))
        level = [n for n in dict.fromkeys(named) if n not in found]
    return found


# ---------------------------------------------------------------- writing


def _checked_text(name: Any, description: Any) -> tuple[str, str | None]:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name must not be blank", field="input.name", code="INVALID_NAME")
    if len(name) > MAX_NAME:
        raise InvalidInput(
            f"name is longer than {MAX_NAME} characters", field="input.name", code="INVALID_NAME"
        )
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"description is longer than {MAX_DESCRIPTION} characters",
            field="input.description",
            code="INVALID_DESCRIPTION",
        )
    return name.strip(), description


def _as_named(size: FilterSize) -> FilterSize:
    """The size of naming a segment of this filter's size (one level deeper)."""
    return FilterSize(size.conditions, size.values, size.segment_depth + 1)


async def _check_references(
    conn: AsyncConnection, environment_id: int, segment_id: int | None, user_filter: UserFilter
) -> None:
    """Named segments exist, saving this filter under `segment_id` makes no cycle, and the
    filter, named as a segment, keeps within the size limits (and so do the segments that
    name it, for an update)."""
    graph = await resolve_filters(
        conn, environment_id=environment_id, user_filter=user_filter, field="input.filter.segmentId"
    )
    # Checked as `{segmentId: <this one>}` will compile: a saved segment can always be named.
    within_limits(_as_named(SizeMeasure(graph).of(user_filter)), "input.filter")
    if segment_id is None:
        return
    graph[segment_id] = user_filter
    path: list[int] = []

    def visit(node: int) -> None:
        if node in path:
            names = " → ".join(str(n) for n in [*path[path.index(node) :], node])
            raise InvalidInput(
                f"segments would refer to each other in a cycle ({names})",
                field="input.filter.segmentId",
                code="SEGMENT_CYCLE",
            )
        path.append(node)
        for child in referenced(graph.get(node, UserFilter())):
            visit(child)
        path.pop()

    visit(segment_id)
    await _check_namers(conn, environment_id, segment_id, user_filter)


async def _check_namers(
    conn: AsyncConnection, environment_id: int, segment_id: int, user_filter: UserFilter
) -> None:
    """Refuse an update that makes a segment naming this one (at any depth) too large."""
    saved = {row.id: row for row in await list_(conn, environment_id=environment_id)}
    filters = {key: from_document(row.filter) for key, row in saved.items()}
    filters[segment_id] = user_filter
    named_by: dict[int, list[int]] = {}
    for key, saved_filter in filters.items():
        for named in set(referenced(saved_filter)):
            named_by.setdefault(named, []).append(key)
    namers: list[int] = []
    pending = list(named_by.get(segment_id, []))
    while pending:
        key = pending.pop()
        if key not in namers and key != segment_id:
            namers.append(key)
            pending += named_by.get(key, [])
    measure = SizeMeasure(filters)
    for key in namers:
        subject = f"segment {saved[key].name!r} (which names this one) once updated"
        within_limits(measure.segment(key), "input.filter", subject)


async def _write(db: Database, work: Any) -> Any:
    try:
        return await db.write(work)
    except IntegrityError:
        raise Conflict(
            "a segment with this name already exists", field="input.name", code="NAME_TAKEN"
        ) from None


async def _name_free(
    conn: AsyncConnection, environment_id: int, name: str, segment_id: int | None
) -> None:
    clash = await conn.scalar(
        select(T.c.id).where(T.c.environment_id == environment_id, T.c.name_key == name.lower())
    )
    if clash is not None and clash != segment_id:
        raise Conflict(
            f"a segment named {name!r} already exists", field="input.name", code="NAME_TAKEN"
        )


# Fills a new static segment's list, in the transaction that creates it: (conn, segment id).
Fill = Callable[[AsyncConnection, int], Awaitable[None]]


async def create(
    db: Database,
    *,
    environment_id: int,
    name: Any,
    description: Any,
    user_filter: UserFilter,
    fill: Fill | None = None,
) -> Any:
    """Save a new segment: dynamic, or static when `fill` lists its users."""
    name, description = _checked_text(name, description)
    user_filter.checked("input.filter")

    async def work(conn: AsyncConnection) -> Any:
        await _name_free(conn, environment_id, name, None)
        await _check_references(conn, environment_id, None, user_filter)
        moment = now_us()
        result = await conn.execute(
            insert(T)
            .values(
                environment_id=environment_id,
                name=name,
                name_key=name.lower(),
                description=description,
                kind=DYNAMIC if fill is None else STATIC,
                filter=to_document(user_filter),
                created_us=moment,
                updated_us=moment,
            )
            .returning(T.c.id)
        )
        segment_id = result.scalar_one()
        if fill is not None:
            await fill(conn, segment_id)
        return await get(conn, environment_id=environment_id, segment_id=segment_id)

    return await _write(db, work)


async def update(
    db: Database,
    *,
    environment_id: int,
    segment_id: int,
    name: Any,
    description: Any,
    user_filter: UserFilter,
) -> Any:
    """Replace a segment's name, description and filter (a static segment: name and
    description; its filter stays `{}`, its list changes through services/static_segments.py)."""
    name, description = _checked_text(name, description)
    user_filter.checked("input.filter")

    async def work(conn: AsyncConnection) -> Any:
        saved = await get(conn, environment_id=environment_id, segment_id=segment_id)
        if saved is None:
            raise NotFound("no such segment", field="id", code="UNKNOWN_SEGMENT")
        if saved.kind == STATIC and user_filter != UserFilter():
            raise InvalidInput(
                "a static segment has no filter: send `filter: {}`, and change its users with "
                "addSegmentMembers / removeSegmentMembers",
                field="input.filter",
                code="STATIC_SEGMENT",
            )
        await _name_free(conn, environment_id, name, segment_id)
        await _check_references(conn, environment_id, segment_id, user_filter)
        await conn.execute(
            sql_update(T)
            .where(T.c.environment_id == environment_id, T.c.id == segment_id)
            .values(
                name=name,
                name_key=name.lower(),
                description=description,
                filter=to_document(user_filter),
                updated_us=now_us(),
            )
        )
        return await get(conn, environment_id=environment_id, segment_id=segment_id)

    return await _write(db, work)


async def delete(db: Database, *, environment_id: int, segment_id: int) -> None:
    """Delete a segment that no other segment uses."""

    async def work(conn: AsyncConnection) -> None:
        if await get(conn, environment_id=environment_id, segment_id=segment_id) is None:
            raise NotFound("no such segment", field="id", code="UNKNOWN_SEGMENT")
        users = [
            row.name
            for row in await list_(conn, environment_id=environment_id)
            if segment_id in set(referenced(from_document(row.filter)))
        ]
        if users:
            raise Conflict(
                f"segment is used by {', '.join(repr(n) for n in users)}; change those first",
                field="id",
                code="SEGMENT_IN_USE",
            )
        await segment_members.clear(conn, environment_id=environment_id, segment_id=segment_id)
        await conn.execute(
            sql_delete(T).where(T.c.environment_id == environment_id, T.c.id == segment_id)
        )

    await db.write(work)
