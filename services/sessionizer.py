"""Keeps each user's stored sessions equal to `sessionize(all of the user's events)`.

Orchestrates storage (models) and the pure rules (services.sessionize). For the users of a
batch it recomputes only the affected span of each timeline:

* left edge L: the earliest incoming event (or the start of a stored session sharing its
  client session id), moved left to the start of any stored session whose active window
  [start, active_until) straddles it, until none does; nothing left of L can change;
* window: every stored session starting in [L, R) and the incoming events, where R grows
  to the furthest active window end of the recomputed sessions until no untouched stored
  session starts before it (a late client event can shift a whole run of server-only
  sessions; the window follows it and stops where the stored sessions agree again).

Work is batched across users: each round is one query for all users that need it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Event, Session
from services.clock import row_ids
from services.condition_sql import json_operand
from services.sessionize import (
    PlannedSession,
    TimelineEvent,
    event_page,
    is_page_view,
    sessionize,
)
from services.sql import chunks, insert_rows, keys_in
from services.traits import (
    NO_TRAITS,
    SessionTraits,
    TraitSource,
    session_traits,
    traits_of_row,
)

S = Session.__table__
E = Event.__table__

# Stored sessions ending this long before the earliest incoming event are loaded up front,
# so the left-edge walk rarely needs a second round.
LOOKBEHIND_US = 6 * 3600 * 1_000_000
MAX_IN = 500  # bound IN lists well under every driver's parameter limit


def timeline_columns(dialect: str) -> tuple[Any, ...]:
    """The event columns `timeline_event` reads: only the two page properties of documents."""
    pages = []
    for name in ("path", "name"):
        value, is_text = json_operand(E.c.properties, name, dialect).string()
        pages.append(case((is_text, value)).label(f"page_{name}"))
    return (E.c.id, E.c.time_us, E.c.source, E.c.client_session_id, E.c.replay, E.c.type, *pages)


def timeline_event(row: Any) -> TimelineEvent:
    """A stored event as sessionization sees it, from a row of `timeline_columns`."""
    return TimelineEvent(
        row.id,
        row.time_us,
        row.source,
        row.client_session_id,
        row.replay,
        event_page(row.type, row.source, row.page_path, row.page_name),
        is_page_view(row.type, row.source),
    )


@dataclass(slots=True)
class Incoming:
    """An event whose session is to be (re)decided; `stored_session_id` if it is in the table."""

    event: TimelineEvent
    stored_session_id: int | None = None
    traits: SessionTraits | TraitSource | None = None


@dataclass(slots=True)
class _Timeline:
    """One user's part of the work: loaded sessions and events, and the window bounds."""

    user_id: int
    incoming: dict[int, Incoming]
    sessions: dict[int, Mapping[Any, Any]] = field(default_factory=dict)  # stored rows
    loaded_after: int = 0  # every stored session with active_until > loaded_after is loaded
    left: int = 0
    window: set[int] = field(default_factory=set)  # stored session ids inside the window
    events: dict[int, tuple[TimelineEvent, int]] = field(default_factory=dict)  # id -> (event, sid)
    planned: list[PlannedSession] = field(default_factory=list)


@dataclass(slots=True)
class Resequenced:
    """What changed: session ids of the new events, and each user's recomputed sessions."""

    assignments: dict[int, int] = field(default_factory=dict)  # new event id -> session id
    # user id -> the session rows of the window, as stored now (with their traits)
    sessions: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


async def resequence(
    conn: AsyncConnection, *, environment_id: int, incoming: Mapping[int, Iterable[Incoming]]
) -> Resequenced:
    """Recompute the sessions around `incoming` events (by user id) and store the difference."""
    timelines = {
        user_id: _Timeline(user_id, {item.event.id: item for item in items})
        for user_id, items in incoming.items()
    }
    timelines = {u: t for u, t in timelines.items() if t.incoming}
    if not timelines:
        return Resequenced()
    await _load_key_sessions(conn, environment_id, timelines.values())
    for timeline in timelines.values():
        earliest = min(item.event.time_us for item in timeline.incoming.values())
        keyed = [s["start_us"] for s in timeline.sessions.values()]
        timeline.left = min([earliest, *keyed])
        timeline.loaded_after = timeline.left - LOOKBEHIND_US
    await _load_sessions_after(conn, environment_id, timelines.values(), above=None)
    await _walk_left(conn, environment_id, timelines)
    await _grow_windows(conn, environment_id, timelines)
    result = Resequenced()
    await _store(conn, environment_id, timelines.values(), result)
    return result


async def _load_key_sessions(
    conn: AsyncConnection, environment_id: int, timelines: Iterable[_Timeline]
) -> None:
    keys = {
        (t.user_id, *item.event.client_key): t
        for t in timelines
        for item in t.incoming.values()
        if item.event.client_key is not None
    }
    for chunk in chunks(list(keys), MAX_IN):
        rows = await conn.execute(
            select(S).where(
                S.c.environment_id == environment_id,
                keys_in((S.c.user_id, S.c.source, S.c.client_session_id), chunk),
            )
        )
        for row in rows.mappings():
            keys[(row["user_id"], row["source"], row["client_session_id"])].sessions[row["id"]] = (
                row
            )


async def _load_sessions_after(
    conn: AsyncConnection,
    environment_id: int,
    timelines: Iterable[_Timeline],
    above: dict[int, int] | None,
) -> None:
    """Load sessions with active_until > loaded_after (and <= above[user], when given).

    One statement of fixed shape for all users (so its compiled form is cached): it asks
    for the loosest bounds of the group, and rows outside a user's own bounds are dropped.
    """
    by_user = {t.user_id: t for t in timelines}
    for chunk in chunks(sorted(by_user)):
        where = [
            S.c.environment_id == environment_id,
            S.c.user_id.in_(chunk),
            S.c.active_until_us > min(by_user[u].loaded_after for u in chunk),
        ]
        if above is not None:
            where.append(S.c.active_until_us <= max(above[u] for u in chunk))
        rows = await conn.execute(select(S).where(*where))
        for row in rows.mappings():
            timeline = by_user[row["user_id"]]
            until = row["active_until_us"]
            if until > timeline.loaded_after and (
                above is None or until <= above[timeline.user_id]
            ):
                timeline.sessions[row["id"]] = row


async def _walk_left(
    conn: AsyncConnection, environment_id: int, timelines: dict[int, _Timeline]
) -> None:
    pending = list(timelines.values())
    while pending:
        reload: list[_Timeline] = []
        previous_bounds: dict[int, int] = {}
        for t in pending:
            while True:
                straddling = [
                    s["start_us"]
                    for s in t.sessions.values()
                    if s["start_us"] < t.left < s["active_until_us"]
                ]
                if not straddling:
                    break
                t.left = min(straddling)
            if t.left <= t.loaded_after:  # sessions ending in (left, loaded_after] are unknown
                previous_bounds[t.user_id] = t.loaded_after
                t.loaded_after = t.left - LOOKBEHIND_US
                reload.append(t)
        if reload:
            await _load_sessions_after(conn, environment_id, reload, above=previous_bounds)
        pending = reload


async def _grow_windows(
    conn: AsyncConnection, environment_id: int, timelines: dict[int, _Timeline]
) -> None:
    for t in timelines.values():
        right = max(item.event.time_us for item in t.incoming.values())
        keys = {item.event.client_key for item in t.incoming.values()}
        t.window = {
            sid
            for sid, s in t.sessions.items()
            if t.left <= s["start_us"] <= right or (s["source"], s["client_session_id"]) in keys
        }
    pending = list(timelines.values())
    while pending:
        await _load_window_events(conn, environment_id, pending)
        grown: list[_Timeline] = []
        for t in pending:
            timeline = [event for event, _ in t.events.values()]
            timeline += [
                item.event for item in t.incoming.values() if item.event.id not in t.events
            ]
            t.planned = sessionize(timeline)
            reach = max(p.active_until_us for p in t.planned)
            keys = {(p.source, p.client_session_id) for p in t.planned if p.client_session_id}
            extra = {
                sid
                for sid, s in t.sessions.items()
                if sid not in t.window
                and (
                    t.left <= s["start_us"] < reach or (s["source"], s["client_session_id"]) in keys
                )
            }
            if extra:
                t.window |= extra
                grown.append(t)
        pending = grown


async def _load_window_events(
    conn: AsyncConnection, environment_id: int, timelines: list[_Timeline]
) -> None:
    wanted: dict[int, tuple[_Timeline, set[int]]] = {}
    for t in timelines:
        loaded_sessions = {sid for _, sid in t.events.values()}
        missing = t.window - loaded_sessions
        if missing:
            wanted[t.user_id] = (t, missing)
    pairs = [(user_id, sid) for user_id, (_, sids) in wanted.items() for sid in sids]
    for chunk in chunks(pairs, MAX_IN):
        rows = await conn.execute(
            select(*timeline_columns(conn.dialect.name), E.c.session_id, E.c.user_id).where(
                E.c.environment_id == environment_id, keys_in((E.c.user_id, E.c.session_id), chunk)
            )
        )
        for row in rows:
            event = timeline_event(row)
            wanted[row.user_id][0].events[row.id] = (event, row.session_id)


async def _store(
    conn: AsyncConnection, environment_id: int, timelines: Iterable[_Timeline], result: Resequenced
) -> None:
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    deletes: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    needs_traits: list[tuple[dict[str, Any], int]] = []
    for t in timelines:
        stored_of = {eid: sid for eid, (_, sid) in t.events.items()}
        for item in t.incoming.values():
            if item.stored_session_id is not None:
                stored_of.setdefault(item.event.id, item.stored_session_id)
        by_first_event = {
            s["first_event_id"]: s for sid, s in t.sessions.items() if sid in t.window
        }
        claimed: set[int] = set()
        written = result.sessions[t.user_id] = []
        for planned in t.planned:
            session_id = next(
                (
                    stored_of[e.id]
                    for e in planned.events
                    if e.id in stored_of
                    and stored_of[e.id] in t.window
                    and stored_of[e.id] not in claimed
                ),
                None,
            )
            if session_id is None:
                session_id = row_ids.next()
            claimed.add(session_id)
            row = _session_row(environment_id, t.user_id, session_id, planned)
            written.append(row)
            first = planned.first_event
            traits = _known_traits(planned, t.incoming.get(first.id), by_first_event.get(first.id))
            if traits is None:
                needs_traits.append((row, first.id))
            else:
                row.update(traits.columns())
            old = t.sessions.get(session_id)
            if old is None:
                inserts.append(row)
            elif traits is None or any(old[k] != v for k, v in row.items()):
                updates.append(row)
            for event in planned.events:
                previous = stored_of.get(event.id)
                if previous is None:
                    result.assignments[event.id] = session_id
                elif previous != session_id:
                    moves.append({"b_user": t.user_id, "b_id": event.id, "b_session": session_id})
        deletes += [{"b_user": t.user_id, "b_id": sid} for sid in t.window - claimed]
    await _fill_traits(conn, environment_id, needs_traits)
    if deletes:
        await conn.execute(_DELETE_SESSION, [{"b_env": environment_id, **d} for d in deletes])
    if updates:
        await conn.execute(
            _UPDATE_SESSION,
            [
                {"b_env": environment_id, "b_user": r["user_id"], "b_id": r["id"]}
                | {f"b_{c}": r[c] for c in UPDATED_COLUMNS}
                for r in updates
            ],
        )
    if inserts:
        await insert_rows(conn, S, inserts)
    if moves:
        await conn.execute(_MOVE_EVENT, [{"b_env": environment_id, **m} for m in moves])


# The statements of `_store`, built once.
UPDATED_COLUMNS = [c.name for c in S.columns if c.name not in ("environment_id", "user_id", "id")]


def _one_row(table: Any) -> tuple[Any, ...]:
    """A row of a user table by its key, from the parameters b_env, b_user and b_id."""
    return (
        table.c.environment_id == bindparam("b_env"),
        table.c.user_id == bindparam("b_user"),
        table.c.id == bindparam("b_id"),
    )


_DELETE_SESSION = delete(S).where(*_one_row(S))
_UPDATE_SESSION = (
    update(S).where(*_one_row(S)).values({c: bindparam(f"b_{c}") for c in UPDATED_COLUMNS})
)
_MOVE_EVENT = update(E).where(*_one_row(E)).values(session_id=bindparam("b_session"))


def _known_traits(
    planned: PlannedSession, incoming: Incoming | None, stored: Mapping[Any, Any] | None
) -> SessionTraits | None:
    if planned.origin == "SERVER":
        return NO_TRAITS
    if incoming is not None and incoming.traits is not None:
        traits = incoming.traits
        return traits.traits() if isinstance(traits, TraitSource) else traits
    if stored is not None and stored["origin"] == "CLIENT":
        return traits_of_row(stored)
    return None


async def _fill_traits(
    conn: AsyncConnection, environment_id: int, rows: list[tuple[dict[str, Any], int]]
) -> None:
    """Derive traits from the stored first event where no session row carried them."""
    by_event = {(row["user_id"], event_id): row for row, event_id in rows}
    for chunk in chunks(list(by_event), MAX_IN):
        found = await conn.execute(
            select(E.c.user_id, E.c.id, E.c.source, E.c.properties, E.c.context).where(
                E.c.environment_id == environment_id, keys_in((E.c.user_id, E.c.id), chunk)
            )
        )
        for event in found:
            by_event[(event.user_id, event.id)].update(
                session_traits(event.source, event.properties, event.context).columns()
            )
    for row, _ in rows:  # an incoming event not stored yet and given without traits
        for name, value in NO_TRAITS.columns().items():
            row.setdefault(name, value)


def _session_row(
    environment_id: int, user_id: int, session_id: int, planned: PlannedSession
) -> dict[str, Any]:
    return {
        "environment_id": environment_id,
        "user_id": user_id,
        "id": session_id,
        "origin": planned.origin,
        "source": planned.source,
        "client_session_id": planned.client_session_id,
        "start_us": planned.start_us,
        "end_us": planned.end_us,
        "active_until_us": planned.active_until_us,
        "first_event_id": planned.first_event.id,
        "event_count": len(planned.events),
        "pageview_count": planned.pageview_count,
        "entry_page": planned.entry_page,
        "exit_page": planned.exit_page,
        "replay_available": planned.replay_available,
    }
