"""Event definitions (SPEC §4): named ORs of criteria, retroactive and live.

Matches live in `definition_matches`, one row per (event, definition) with the weight of
the most specific criterion that matched. Creating or editing a definition fills it from
stored events (a backfill of set-based SQL statements, the selector evaluated once per
distinct hierarchy); ingestion adds the matches of new events through `match_new_events`,
in Python. Both use the one implementation of property conditions (services/conditions.py),
so they agree (services/matching.py).
Selector matching and compiling run in a worker thread past a little work, so that a
large batch or backfill never holds the event loop (issue 17).

On PostgreSQL, changes to an environment's definitions take an exclusive advisory lock and
the writers of matches (ingestion, merges) a shared one, so that a backfill never misses
events committed while it runs nor a batch a definition committed meanwhile.

Length: one concept, a definition's life (validate, save, backfill, match live, follow
merges); split along those lines once it grows again (issue 18).
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import and_, case, exists, func, insert, literal, or_, select, text, true
from sqlalchemy import delete as delete_rows
from sqlalchemy import update as update_rows
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from models import DefinitionMatch, Event, EventDefinition
from models.db import Database
from models.distribution import move_user_rows
from services import limits, locks, matching
from services.clock import now_us
from services.errors import Conflict, InvalidInput, NotFound
from services.matching import Criterion, StringMatch
from services.selectors import Selector, most_specific_selector
from services.sql import chunks, insert_ignoring_duplicates, keys_in

D = EventDefinition.__table__
M = DefinitionMatch.__table__
E = Event.__table__

MATCH_KEY = ["environment_id", "user_id", "event_id", "definition_id"]
PALETTE = (
    "#4f46e5",
    "#0ea5e9",
    "#10b981",
    "#f59e0b",
    "#ef4444",
    "#8b5cf6",
    "#ec4899",
    "#14b8a6",
    "#f97316",
    "#64748b",
)
MAX_NAME = 255
MAX_DESCRIPTION = 4096
# (event, criterion) tests a batch runs on the event loop; more go to a worker thread.
LIVE_INLINE_TESTS = 200
# Distinct hierarchies a backfill matches on the event loop; more go to a worker thread.
BACKFILL_INLINE_HIERARCHIES = 200
BACKFILL_CACHE_KIB = -32768  # negative: KiB, as PRAGMA cache_size reads it
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")

_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:key)")
_SHARED = text("SELECT pg_advisory_xact_lock_shared(:key)")


# ---------------------------------------------------------------- reading


async def get(conn: AsyncConnection, *, environment_id: int, definition_id: int) -> Any:
    """The definition row, or None."""
    result = await conn.execute(
        select(D).where(D.c.environment_id == environment_id, D.c.id == definition_id)
    )
    return result.first()


async def get_many(
    conn: AsyncConnection, *, environment_id: int, definition_ids: Sequence[int]
) -> dict[int, Any]:
    """Definition rows by id (for dataloaders); unknown ids are absent."""
    found: dict[int, Any] = {}
    for chunk in chunks(sorted(set(definition_ids))):
        rows = await conn.execute(
            select(D).where(D.c.environment_id == environment_id, D.c.id.in_(chunk))
        )
        found.update({row.id: row for row in rows})
    return found


async def list_(conn: AsyncConnection, *, environment_id: int) -> list[Any]:
    """The environment's definitions, oldest first."""
    rows = await conn.execute(
        select(D).where(D.c.environment_id == environment_id).order_by(D.c.created_us, D.c.id)
    )
    return list(rows)


def criteria_of(definition: Any) -> list[Criterion]:
    """The criteria of a definition row."""
    return [Criterion.from_json(document) for document in definition.criteria]


async def event_counts(
    conn: AsyncConnection,
    *,
    environment_id: int,
    definition_ids: Sequence[int],
    from_us: int | None = None,
    to_us: int | None = None,
) -> dict[int, int]:
    """Matching events per definition with from_us <= time < to_us (bounds optional)."""
    conditions = [M.c.environment_id == environment_id]
    if from_us is not None:
        conditions.append(M.c.time_us >= from_us)
    if to_us is not None:
        conditions.append(M.c.time_us < to_us)
    counts = dict.fromkeys(definition_ids, 0)
    for chunk in chunks(sorted(set(definition_ids))):
        rows = await conn.execute(
            select(M.c.definition_id, func.count())
            .where(*conditions, M.c.definition_id.in_(chunk))
            .group_by(M.c.definition_id)
        )
        counts.update({definition_id: count for definition_id, count in rows})
    return counts


async def event_count(
    conn: AsyncConnection,
    *,
    environment_id: int,
    definition_id: int,
    from_us: int | None = None,
    to_us: int | None = None,
) -> int:
    """How many events the definition matches with from_us <= time < to_us (bounds optional)."""
    counts = await event_counts(
        conn,
        environment_id=environment_id,
        definition_ids=[definition_id],
        from_us=from_us,
        to_us=to_us,
    )
    return counts[definition_id]


def matched_by(events: Any, environment_id: int, definition_id: int) -> ColumnElement[bool]:
    """SQL: the row of `events` (the table or an alias) is matched by the definition.

    The `DefinitionCondition` of services/filters.py: users and sessions filters use it.
    """
    return exists().where(
        M.c.environment_id == environment_id,
        M.c.user_id == events.c.user_id,
        M.c.event_id == events.c.id,
        M.c.definition_id == definition_id,
    )


def best_definition_id(events: Any, environment_id: int) -> Any:
    """SQL: the id of the definition shown for a row of `events` (precedence of SPEC §4), or NULL.

    For grouping events by display name in SQL (mostFrequentEvents).
    """
    return (
        select(M.c.definition_id)
        .join(D, D.c.id == M.c.definition_id)
        .where(
            M.c.environment_id == environment_id,
            M.c.user_id == events.c.user_id,
            M.c.event_id == events.c.id,
        )
        .order_by(M.c.conditions.desc(), D.c.created_us, D.c.id)
        .limit(1)
        .scalar_subquery()
    )


async def definitions_of_events(
    conn: AsyncConnection, *, environment_id: int, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], list[Any]]:
    """The definitions matching each (user id, event id), the one to show first.

    Precedence (SPEC §4): most conditions on the criterion that matched, then the oldest.
    Every key is in the answer; events without a match have an empty list.
    """
    found: dict[tuple[int, int], list[tuple[int, int]]] = {key: [] for key in keys}
    for chunk in chunks(list(found)):
        rows = await conn.execute(
            select(M.c.user_id, M.c.event_id, M.c.definition_id, M.c.conditions).where(
                M.c.environment_id == environment_id,
                keys_in((M.c.user_id, M.c.event_id), chunk),
            )
        )
        for row in rows:
            found[(row.user_id, row.event_id)].append((row.definition_id, row.conditions))
    wanted = {definition_id for matches in found.values() for definition_id, _ in matches}
    definitions = await get_many(conn, environment_id=environment_id, definition_ids=list(wanted))

    def precedence(match: tuple[int, int]) -> tuple[int, int, int]:
        definition_id, conditions = match
        return (-conditions, definitions[definition_id].created_us, definition_id)

    return {
        key: [definitions[d] for d, _ in sorted(matches, key=precedence) if d in definitions]
        for key, matches in found.items()
    }


async def criterion_from_event(
    conn: AsyncConnection, *, environment_id: int, user_id: int, event_id: int
) -> Criterion:
    """A criterion for events like a stored one: type, path, target text, target's selector."""
    row = (
        await conn.execute(
            select(E.c.type, E.c.properties).where(
                E.c.environment_id == environment_id, E.c.user_id == user_id, E.c.id == event_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("no such event", field="fromEventId", code="UNKNOWN_EVENT")
    properties = row.properties or {}

    def equals(name: str) -> StringMatch | None:
        value = properties.get(name)
        if not isinstance(value, str) or len(value) > matching.MAX_CONDITION_VALUE:
            return None
        return StringMatch("EQUALS", value)

    hierarchy = properties.get("hierarchy")
    selector = most_specific_selector(hierarchy) if isinstance(hierarchy, str) else None
    if selector is not None and len(selector) > matching.MAX_SELECTOR:
        selector = None
    return Criterion(
        type=row.type, selector=selector, target_text=equals("target_text"), path=equals("path")
    )


# ---------------------------------------------------------------- writing


async def create(
    db: Database,
    *,
    environment_id: int,
    name: str,
    color: str | None = None,
    description: str | None = None,
    criteria: Sequence[Criterion] = (),
    from_event: tuple[int, int] | None = None,
) -> Any:
    """Define an event and match it against every stored event; returns the definition row.

    `from_event` (user id, event id) adds, first, the criterion `criterion_from_event` builds.
    """
    clean_name, clean_color, clean_description = _attributes(name, color, description)
    given = matching.validate_criteria(criteria, allow_empty=from_event is not None)

    async def work(conn: AsyncConnection) -> Any:
        await _lock(conn, environment_id, _EXCLUSIVE)
        await _check_name_free(conn, environment_id, clean_name, None)
        chosen = await _with_event_criterion(conn, environment_id, given, from_event)
        count = await conn.scalar(
            select(func.count()).select_from(D).where(D.c.environment_id == environment_id)
        )
        if (count or 0) >= limits.MAX_DEFINITIONS:
            raise InvalidInput(
                f"an environment has at most {limits.MAX_DEFINITIONS} event definitions; "
                "delete one before defining another",
                code="TOO_MANY_DEFINITIONS",
            )
        stamp = now_us()
        definition_id = await conn.scalar(
            insert(D)
            .values(
                environment_id=environment_id,
                name=clean_name,
                name_key=_name_key(clean_name),
                color=clean_color or PALETTE[(count or 0) % len(PALETTE)],
                description=clean_description,
                criteria=[c.to_json() for c in chosen],
                created_us=stamp,
                updated_us=stamp,
            )
            .returning(D.c.id)
        )
        assert definition_id is not None
        await _backfill(conn, environment_id, definition_id, chosen)
        return await get(conn, environment_id=environment_id, definition_id=definition_id)

    return await db.write(work)


async def update(
    db: Database,
    *,
    environment_id: int,
    definition_id: int,
    name: str,
    color: str | None = None,
    description: str | None = None,
    criteria: Sequence[Criterion] = (),
    from_event: tuple[int, int] | None = None,
) -> Any:
    """Replace a definition (no colour keeps the current one); re-match if criteria changed."""
    clean_name, clean_color, clean_description = _attributes(name, color, description)
    given = matching.validate_criteria(criteria, allow_empty=from_event is not None)

    async def work(conn: AsyncConnection) -> Any:
        await _lock(conn, environment_id, _EXCLUSIVE)
        current = await _existing(conn, environment_id, definition_id)
        await _check_name_free(conn, environment_id, clean_name, definition_id)
        chosen = await _with_event_criterion(conn, environment_id, given, from_event)
        stored = [c.to_json() for c in chosen]
        await conn.execute(
            update_rows(D)
            .where(D.c.environment_id == environment_id, D.c.id == definition_id)
            .values(
                name=clean_name,
                name_key=_name_key(clean_name),
                color=clean_color or current.color,
                description=clean_description,
                criteria=stored,
                updated_us=max(now_us(), current.updated_us + 1),
            )
        )
        if stored != list(current.criteria):
            await _delete_matches(conn, environment_id, definition_id)
            await _backfill(conn, environment_id, definition_id, chosen)
        return await get(conn, environment_id=environment_id, definition_id=definition_id)

    return await db.write(work)


async def delete(db: Database, *, environment_id: int, definition_id: int) -> int:
    """Delete a definition and its matches; returns its id."""

    async def work(conn: AsyncConnection) -> int:
        await _lock(conn, environment_id, _EXCLUSIVE)
        await _existing(conn, environment_id, definition_id)
        await _delete_matches(conn, environment_id, definition_id)
        await conn.execute(
            delete_rows(D).where(D.c.environment_id == environment_id, D.c.id == definition_id)
        )
        return definition_id

    return await db.write(work)


def _attributes(name: Any, color: Any, description: Any) -> tuple[str, str | None, str | None]:
    # The case-folded key must fit too: folding can lengthen a name ("ß" becomes "ss").
    if (
        not isinstance(name, str)
        or not name.strip()
        or max(len(name.strip()), len(_name_key(name.strip()))) > MAX_NAME
    ):
        raise InvalidInput(
            f"a definition's name is 1 to {MAX_NAME} characters", field="name", code="INVALID_NAME"
        )
    if color is not None and (not isinstance(color, str) or not _COLOR.fullmatch(color)):
        raise InvalidInput(
            "a colour is written #rrggbb, e.g. #4f46e5", field="color", code="INVALID_COLOR"
        )
    if description is not None and (
        not isinstance(description, str) or len(description) > MAX_DESCRIPTION
    ):
        raise InvalidInput(
            f"a description is a string of at most {MAX_DESCRIPTION} characters",
            field="description",
            code="INVALID_DESCRIPTION",
        )
    return name.strip(), color.lower() if color else None, description


def _name_key(name: str) -> str:
    return name.casefold()


async def _lock(conn: AsyncConnection, environment_id: int, statement: Any) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(statement, {"key": locks.lock_id("definitions", environment_id)})


async def _check_name_free(
    conn: AsyncConnection, environment_id: int, name: str, definition_id: int | None
) -> None:
    query = select(D.c.id).where(
        D.c.environment_id == environment_id, D.c.name_key == _name_key(name)
    )
    if definition_id is not None:
        query = query.where(D.c.id != definition_id)
    if await conn.scalar(query) is not None:
        raise Conflict(
            f"a definition called {name!r} exists already (names ignore case)",
            field="name",
            code="NAME_TAKEN",
        )


async def _existing(conn: AsyncConnection, environment_id: int, definition_id: int) -> Any:
    row = await get(conn, environment_id=environment_id, definition_id=definition_id)
    if row is None:
        raise NotFound(
            f"no event definition with id {definition_id}", field="id", code="UNKNOWN_DEFINITION"
        )
    return row


async def _with_event_criterion(
    conn: AsyncConnection,
    environment_id: int,
    given: tuple[Criterion, ...],
    from_event: tuple[int, int] | None,
) -> tuple[Criterion, ...]:
    if from_event is None:
        return given
    user_id, event_id = from_event
    derived = await criterion_from_event(
        conn, environment_id=environment_id, user_id=user_id, event_id=event_id
    )
    chosen = (derived, *(c for c in given if c != derived))
    return matching.validate_criteria(chosen)


async def _delete_matches(conn: AsyncConnection, environment_id: int, definition_id: int) -> None:
    await conn.execute(
        delete_rows(M).where(
            M.c.environment_id == environment_id, M.c.definition_id == definition_id
        )
    )


# ---------------------------------------------------------------- matching stored events


async def _backfill(
    conn: AsyncConnection,
    environment_id: int,
    definition_id: int,
    criteria: Sequence[Criterion],
) -> None:
    """Insert the definition's matches among stored events.

    Selectors are first turned into the set of stored hierarchies they match (each distinct
    hierarchy tested once); then one INSERT … SELECT takes every event any criterion matches,
    weighted by the most specific criterion that matched it (CASE tries them in that order).
    """
    by_weight = sorted(criteria, key=lambda c: -c.condition_count)
    alternatives: list[tuple[Criterion, Any]] = []
    for criterion in by_weight:
        condition = await _sql_alternative(conn, environment_id, criterion)
        if condition is not None:
            alternatives.append((criterion, condition))
    if alternatives:
        await _insert_matches(conn, environment_id, definition_id, alternatives)


async def _sql_alternative(
    conn: AsyncConnection, environment_id: int, criterion: Criterion
) -> Any | None:
    """The criterion as an SQL condition on events; None when no stored event can match."""
    dialect = conn.dialect.name
    condition = and_(
        E.c.type == criterion.type,
        matching.sql_condition(criterion, E.c.properties, dialect=dialect),
    )
    selector = matching.compiled_selector(criterion)
    if selector is None:
        return condition
    hierarchy, has_hierarchy = matching.hierarchy(E.c.properties, dialect=dialect)
    condition = and_(condition, has_hierarchy)
    seen = await conn.execute(
        select(hierarchy).where(E.c.environment_id == environment_id, condition).distinct()
    )
    values = [value for (value,) in seen]
    # Each distinct hierarchy is parsed and matched once; over many the work runs in a
    # worker thread, so that defining an event never stalls the event loop.
    if len(values) > BACKFILL_INLINE_HIERARCHIES:
        found = await asyncio.to_thread(_matching_texts, selector, values)
    else:
        found = _matching_texts(selector, values)
    every = len(found) == len(values)
    if not found:
        return None
    return (
        condition
        if every
        else and_(condition, matching.in_texts(hierarchy, found, dialect=dialect))
    )


def _matching_texts(selector: Selector, hierarchies: Sequence[str]) -> list[str]:
    return [value for value in hierarchies if selector.matches(value)]


async def _insert_matches(
    conn: AsyncConnection,
    environment_id: int,
    definition_id: int,
    alternatives: list[tuple[Criterion, Any]],
) -> None:
    if len(alternatives) == 1:
        weight: Any = literal(alternatives[0][0].condition_count)
    else:
        weight = case(*[(condition, c.condition_count) for c, condition in alternatives])
    found = select(
        E.c.environment_id,
        E.c.user_id,
        E.c.id.label("event_id"),
        literal(definition_id).label("definition_id"),
        weight.label("conditions"),
        E.c.time_us,
    ).where(
        E.c.environment_id == environment_id,
        E.c.type.in_(sorted({c.type for c, _ in alternatives})),
        or_(*[condition for _, condition in alternatives]),
    )
    columns = [*MATCH_KEY, "conditions", "time_us"]
    statement = insert_ignoring_duplicates(conn, M, MATCH_KEY)
    if conn.dialect.name != "sqlite":
        await conn.execute(statement.from_select(columns, found))
        return
    # SQLite fills the match table's B-trees several times faster in key order, and with a
    # page cache that holds the index pages being filled than with its 2 MB default.
    ordered = found.cte("found").prefix_with("MATERIALIZED")
    in_key_order = select(ordered).where(true()).order_by(ordered.c.user_id, ordered.c.event_id)
    previous = await conn.scalar(text("PRAGMA cache_size"))
    await conn.execute(text(f"PRAGMA cache_size = {BACKFILL_CACHE_KIB}"))
    try:
        await conn.execute(statement.from_select(columns, in_key_order))
    finally:
        await conn.execute(text(f"PRAGMA cache_size = {int(previous)}"))


def _match_row(
    environment_id: int,
    user_id: int,
    event_id: int,
    definition_id: int,
    criterion: Criterion,
    time_us: int,
) -> dict[str, int]:
    return {
        "environment_id": environment_id,
        "user_id": user_id,
        "event_id": event_id,
        "definition_id": definition_id,
        "conditions": criterion.condition_count,
        "time_us": time_us,
    }


# ---------------------------------------------------------------- hooks for ingestion and merges

_Matcher = tuple[int, Criterion, Callable[[str, Mapping[str, Any]], bool]]
# Compiled criteria by (dialect, stored criteria): selectors and patterns are built once.
_compiled: dict[tuple[str, bytes], list[tuple[Criterion, Any]]] = {}
_COMPILED_LIMIT = 4096  # more than MAX_DEFINITIONS: one environment's always fit


async def match_new_events(
    conn: AsyncConnection, *, environment_id: int, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Record the matches of events being ingested (event row dicts), in the ingest transaction.

    Idempotent, and indifferent to whether the rows are inserted yet.
    """
    if not rows:
        return
    await _lock(conn, environment_id, _SHARED)
    by_type = await _live_matchers(conn, environment_id)
    if not by_type:
        return
    # Selectors cost time linear in selector and hierarchy, but a batch multiplies that by
    # up to MAX_BATCH events and every criterion of their type: past a small amount of work
    # the batch is matched in a worker thread, so the event loop keeps serving requests.
    tests = sum(len(by_type.get(row["type"], ())) for row in rows)
    if tests > LIVE_INLINE_TESTS:
        found = await asyncio.to_thread(_live_matches, environment_id, by_type, rows)
    else:
        found = _live_matches(environment_id, by_type, rows)
    statement = insert_ignoring_duplicates(conn, M, MATCH_KEY)
    for chunk in chunks(found, 1000):
        await conn.execute(statement, list(chunk))


def _live_matches(
    environment_id: int,
    by_type: Mapping[str, list[_Matcher]],
    rows: Sequence[Mapping[str, Any]],
) -> list[dict[str, int]]:
    """The match rows of `rows`: for each event, the most specific criterion per definition."""
    found: list[dict[str, int]] = []
    for row in rows:
        candidates = by_type.get(row["type"])
        if not candidates:
            continue
        properties = row.get("properties") or {}
        matched: set[int] = set()
        for definition_id, criterion, test in candidates:
            if definition_id not in matched and test(row["type"], properties):
                matched.add(definition_id)
                found.append(
                    _match_row(
                        environment_id,
                        row["user_id"],
                        row["id"],
                        definition_id,
                        criterion,
                        row["time_us"],
                    )
                )
    return found


async def _live_matchers(conn: AsyncConnection, environment_id: int) -> dict[str, list[_Matcher]]:
    """The environment's criteria by event type, most specific first, compiled once per edit."""
    dialect = conn.dialect.name
    rows = await conn.execute(
        select(D.c.id, D.c.criteria).where(D.c.environment_id == environment_id)
    )
    keyed = [
        (definition_id, criteria, (dialect, orjson.dumps(criteria, option=orjson.OPT_SORT_KEYS)))
        for definition_id, criteria in rows
    ]
    known = {key: _compiled[key] for _, _, key in keyed if key in _compiled}
    missing = {key: criteria for _, criteria, key in keyed if key not in known}
    if missing:
        # Parsing a long selector takes milliseconds (cssselect), and after a restart every
        # definition is compiled at once: a worker thread does it, off the event loop.
        fresh = await asyncio.to_thread(_compile_criteria, missing, dialect)
        if len(_compiled) + len(fresh) > _COMPILED_LIMIT:
            _compiled.clear()
        _compiled.update(fresh)
        known.update(fresh)
    by_type: dict[str, list[_Matcher]] = defaultdict(list)
    for definition_id, _, key in keyed:
        for criterion, test in known[key]:
            by_type[criterion.type].append((definition_id, criterion, test))
    for matchers in by_type.values():
        matchers.sort(key=lambda m: -m[1].condition_count)
    return by_type


def _compile_criteria(
    missing: Mapping[tuple[str, bytes], Any], dialect: str
) -> dict[tuple[str, bytes], list[tuple[Criterion, Any]]]:
    compiled: dict[tuple[str, bytes], list[tuple[Criterion, Any]]] = {}
    for key, criteria in missing.items():
        parsed = [Criterion.from_json(document) for document in criteria]
        compiled[key] = [(c, matching.python_matcher(c)) for c in parsed]
    return compiled


async def on_merge(
    conn: AsyncConnection, *, environment_id: int, source_id: int, target_id: int
) -> None:
    """Move the matches of `source_id`'s events to `target_id` (services/projections.py)."""
    await _lock(conn, environment_id, _SHARED)
    await move_user_rows(
        conn, M, environment_id=environment_id, source_id=source_id, target_id=target_id
    )


async def on_user_deleted(conn: AsyncConnection, *, environment_id: int, user_id: int) -> None:
    """Forget the matches of a deleted user's events."""
    await _lock(conn, environment_id, _SHARED)
    await conn.execute(
        delete_rows(M).where(M.c.environment_id == environment_id, M.c.user_id == user_id)
    )
