"""Rage clicks (SPEC §3): bursts of three or more clicks on one element, at most 1 s apart.

The rule is a pure function of a user's clicks (`rage_click_ids`). Stored, it is the table
`rage_clicks` of the clicks in bursts, kept by `update_rage_clicks` as clicks arrive: a new
click can only grow the burst it joins (never split one), so recomputing the bursts that
contain new clicks, from the stored clicks around them, and inserting their members keeps
the table equal to the rule whatever order the clicks arrive in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Event, RageClick
from models.distribution import move_user_rows
from services.sql import chunks, insert_ignoring_duplicates, keys_in

E = Event.__table__
R = RageClick.__table__

CLICK = "click"
MAX_GAP_US = 1_000_000
MIN_BURST = 3
KEY = ["environment_id", "user_id", "event_id"]


@dataclass(frozen=True, slots=True)
class Click:
    id: int
    time_us: int
    element: str


def element_of(properties: Mapping[str, Any]) -> str | None:
    """What was clicked: the hierarchy, else path and target text; None when neither is known."""
    hierarchy = properties.get("hierarchy")
    if isinstance(hierarchy, str) and hierarchy:
        return "h" + hierarchy
    path, target_text = properties.get("path"), properties.get("target_text")
    if path is None and target_text is None:
        return None
    return "t" + orjson.dumps([path, target_text]).decode()


def bursts(clicks: Iterable[Click]) -> list[list[Click]]:
    """Maximal runs of clicks on one element with at most MAX_GAP_US between neighbours."""
    by_element: dict[str, list[Click]] = defaultdict(list)
    for click in clicks:
        by_element[click.element].append(click)
    runs: list[list[Click]] = []
    for group in by_element.values():
        group.sort(key=lambda c: (c.time_us, c.id))
        run = [group[0]]
        for click in group[1:]:
            if click.time_us - run[-1].time_us <= MAX_GAP_US:
                run.append(click)
            else:
                runs.append(run)
                run = [click]
        runs.append(run)
    return runs


def rage_clicks_among(clicks: Iterable[Click]) -> list[Click]:
    """The clicks of `clicks` in bursts of at least MIN_BURST clicks."""
    return [c for run in bursts(clicks) if len(run) >= MIN_BURST for c in run]


def rage_click_ids(clicks: Iterable[Click]) -> set[int]:
    """The pure rule: ids of the clicks in bursts of at least MIN_BURST clicks."""
    return {c.id for c in rage_clicks_among(clicks)}


def _click(row: Mapping[Any, Any]) -> Click | None:
    if row["type"] != CLICK:
        return None
    element = element_of(row.get("properties") or {})
    return None if element is None else Click(row["id"], row["time_us"], element)


async def update_rage_clicks(
    conn: AsyncConnection,
    *,
    environment_id: int,
    rows: Sequence[Mapping[str, Any]],
    stored_spans: Mapping[int, tuple[int, int] | None] | None = None,
) -> None:
    """Record the rage clicks that events being ingested (row dicts) complete.

    Call it inside the ingest transaction, with the user locks held; idempotent, and
    indifferent to whether the rows are inserted yet. `stored_spans` may give, per user, the
    span (first, last) of the times of the user's events stored before these rows, or None
    when there were none: a user whose new clicks are more than MAX_GAP_US away from that
    span has no stored click a burst of new clicks could reach, so nothing is read for it.
    """
    new: dict[int, list[Click]] = defaultdict(list)
    for row in rows:
        click = _click(row)
        if click is not None:
            new[row["user_id"]].append(click)
    spans = stored_spans or {}
    alone = {
        user_id: clicks
        for user_id, clicks in new.items()
        if user_id in spans and _apart(spans[user_id], clicks)
    }
    rage = [
        {"environment_id": environment_id, "user_id": user_id, "event_id": c.id}
        for user_id, clicks in alone.items()
        for c in rage_clicks_among(clicks)
    ]
    await _settle(conn, environment_id, {u: c for u, c in new.items() if u not in alone}, rage)


def _apart(stored: tuple[int, int] | None, clicks: Sequence[Click]) -> bool:
    """Whether no stored event time (within `stored`) is within MAX_GAP_US of a new click."""
    if stored is None:
        return True
    first, last = stored
    return (
        last < min(c.time_us for c in clicks) - MAX_GAP_US
        or first > max(c.time_us for c in clicks) + MAX_GAP_US
    )


@dataclass(slots=True)
class _Pending:
    """One user's new clicks and the span of stored clicks to read around them."""

    new: list[Click]
    low: int
    high: int


async def _settle(
    conn: AsyncConnection,
    environment_id: int,
    new: Mapping[int, list[Click]],
    rage: list[dict[str, int]] | None = None,
) -> None:
    """Recompute the bursts holding `new` clicks (by user) from the stored clicks around them,
    and store their members (with the `rage` rows already known).

    One statement reads the stored clicks of every user's span; a user whose burst reaches
    the edge of what was read is read again, wider, in the next round.
    """
    pending = {
        user_id: _Pending(
            clicks,
            min(c.time_us for c in clicks) - MAX_GAP_US,
            max(c.time_us for c in clicks) + MAX_GAP_US,
        )
        for user_id, clicks in new.items()
        if clicks
    }
    rage = list(rage or [])
    while pending:
        stored = await _clicks_between(conn, environment_id, pending)
        wider: dict[int, _Pending] = {}
        for user_id, span in pending.items():
            elements = {c.element for c in span.new}
            new_ids = {c.id for c in span.new}
            known = {c.id: c for c in stored.get(user_id, ()) if c.element in elements}
            known |= {c.id: c for c in span.new}
            affected = [run for run in bursts(known.values()) if any(c.id in new_ids for c in run)]
            # A burst reaching the edge of what was read may go on beyond it: read wider.
            first = min(run[0].time_us for run in affected)
            last = max(run[-1].time_us for run in affected)
            if first - MAX_GAP_US < span.low or last + MAX_GAP_US > span.high:
                width = span.high - span.low
                span.low = min(span.low, first - MAX_GAP_US - width)
                span.high = max(span.high, last + MAX_GAP_US + width)
                wider[user_id] = span
                continue
            rage += [
                {"environment_id": environment_id, "user_id": user_id, "event_id": c.id}
                for run in affected
                if len(run) >= MIN_BURST
                for c in run
            ]
        pending = wider
    statement = insert_ignoring_duplicates(conn, R, KEY)
    for chunk in chunks(rage, 1000):
        await conn.execute(statement, list(chunk))


SPANS_PER_STATEMENT = 300  # (user, low, high) triples: 900 parameters


async def _clicks_between(
    conn: AsyncConnection, environment_id: int, spans: Mapping[int, _Pending]
) -> dict[int, list[Click]]:
    """Each user's stored clicks within the user's span, by a join on a VALUES list of spans."""
    found: dict[int, list[Click]] = defaultdict(list)
    items = sorted(spans.items())
    for chunk in chunks(items, SPANS_PER_STATEMENT):
        values = ", ".join(
            f"(CAST(:u{n} AS BIGINT), CAST(:l{n} AS BIGINT), CAST(:h{n} AS BIGINT))"
            for n in range(len(chunk))
        )
        params: dict[str, Any] = {"environment_id": environment_id, "click": CLICK}
        for n, (user_id, span) in enumerate(chunk):
            params |= {f"u{n}": user_id, f"l{n}": span.low, f"h{n}": span.high}
        rows = await conn.execute(
            text(
                f"WITH spans(user_id, low, high) AS (VALUES {values}) "
                "SELECT e.user_id, e.id, e.time_us, e.properties FROM spans "
                "JOIN events AS e ON e.environment_id = :environment_id "
                "AND e.user_id = spans.user_id "
                "AND e.time_us >= spans.low AND e.time_us <= spans.high "
                "WHERE e.type = :click"
            ).columns(E.c.user_id, E.c.id, E.c.time_us, E.c.properties),
            params,
        )
        for row in rows:
            element = element_of(row.properties or {})
            if element is not None:
                found[row.user_id].append(Click(row.id, row.time_us, element))
    return found


async def rage_click_events(
    conn: AsyncConnection, *, environment_id: int, keys: Sequence[tuple[int, int]]
) -> set[tuple[int, int]]:
    """The (user id, event id) keys among `keys` that are rage clicks."""
    found: set[tuple[int, int]] = set()
    for chunk in chunks(list(set(keys))):
        rows = await conn.execute(
            select(R.c.user_id, R.c.event_id).where(
                R.c.environment_id == environment_id, keys_in((R.c.user_id, R.c.event_id), chunk)
            )
        )
        found.update((row.user_id, row.event_id) for row in rows)
    return found


async def sessions_with_rage_clicks(
    conn: AsyncConnection, *, environment_id: int, session_keys: Sequence[tuple[int, int]]
) -> set[tuple[int, int]]:
    """The (user id, session id) keys among `session_keys` whose sessions hold a rage click."""
    found: set[tuple[int, int]] = set()
    for chunk in chunks(list(set(session_keys))):
        rows = await conn.execute(
            select(E.c.user_id, E.c.session_id)
            .join(
                R,
                (R.c.environment_id == E.c.environment_id)
                & (R.c.user_id == E.c.user_id)
                & (R.c.event_id == E.c.id),
            )
            .where(
                E.c.environment_id == environment_id,
                keys_in((E.c.user_id, E.c.session_id), chunk),
            )
            .distinct()
        )
        found.update((row.user_id, row.session_id) for row in rows)
    return found


async def on_merge(
    conn: AsyncConnection, *, environment_id: int, source_id: int, target_id: int
) -> None:
    """Carry `source_id`'s rage clicks to `target_id` and find the bursts the merge completes.

    Call it before a merge moves the source's events (it reads its clicks): see
    services/projections.py.
    """
    rows = await conn.execute(
        select(E.c.id, E.c.type, E.c.time_us, E.c.properties).where(
            E.c.environment_id == environment_id, E.c.user_id == source_id, E.c.type == CLICK
        )
    )
    moved = [c for c in (_click(row._mapping) for row in rows) if c is not None]
    await move_user_rows(
        conn, R, environment_id=environment_id, source_id=source_id, target_id=target_id
    )
    if moved:
        await _settle(conn, environment_id, {target_id: moved})


async def on_user_deleted(conn: AsyncConnection, *, environment_id: int, user_id: int) -> None:
    """Forget the rage clicks of a deleted user."""
    await conn.execute(
        delete(R).where(R.c.environment_id == environment_id, R.c.user_id == user_id)
    )
