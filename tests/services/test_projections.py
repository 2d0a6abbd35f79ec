"""A derived table is added in one place: a projection in the registry hears of every new
batch of events, every merge and every deletion, whichever way it comes, in registry order.

The projections here live in the test only: an in-memory "table" of events per user.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Event, Session, User
from models.db import Database
from services import ingest, links, users
from services.identity import Merge
from services.ingest import TrackItem
from services.projections import PROJECTIONS, NewEvents, Projection

E = Event.__table__
S = Session.__table__
U = User.__table__


class EventsPerUser(Projection):
    """A derived table (events per user) kept by the hooks, and a log of what it heard."""

    def __init__(self, name: str, log: list[tuple[str, str]]) -> None:
        self.name = name
        self.log = log
        self.table: Counter[int] = Counter()
        self.seen: list[dict[str, Any]] = []

    async def prepare_events(self, conn: AsyncConnection, batch: NewEvents) -> None:
        self.log.append((self.name, "prepare_events"))
        self.seen.append({"hook": "prepare", "sessions": [r.get("session_id") for r in batch.rows]})

    async def on_events(self, conn: AsyncConnection, batch: NewEvents) -> None:
        self.log.append((self.name, "on_events"))
        stored = await _count(conn, E, batch.environment_id, [r["id"] for r in batch.rows])
        self.seen.append({"hook": "events", "stored": stored})
        self.table.update({user: len(rows) for user, rows in batch.by_user.items()})

    async def before_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        self.log.append((self.name, "before_merge"))
        self.seen.append({"hook": "before", "source": await _events_of(conn, merge.source_id)})

    async def on_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        self.log.append((self.name, "on_merge"))
        self.seen.append({"hook": "after", "source": await _events_of(conn, merge.source_id)})
        self.table[merge.target_id] += self.table.pop(merge.source_id, 0)

    async def on_user_deleted(
        self, conn: AsyncConnection, *, environment_id: int, user_id: int
    ) -> None:
        self.log.append((self.name, "on_user_deleted"))
        self.seen.append({"hook": "deleted", "events": await _events_of(conn, user_id)})
        self.table.pop(user_id, None)


async def _count(conn: AsyncConnection, table: Any, environment_id: int, ids: list[int]) -> int:
    return int(
        await conn.scalar(
            select(func.count()).where(
                table.c.environment_id == environment_id, table.c.id.in_(ids)
            )
        )
    )


async def _events_of(conn: AsyncConnection, user_id: int) -> int:
    return int(await conn.scalar(select(func.count()).where(E.c.user_id == user_id)))


@pytest.fixture
def registered() -> Iterator[tuple[EventsPerUser, EventsPerUser, list[tuple[str, str]]]]:
    """Two throwaway projections, one first in the registry and one last (the usual place)."""
    log: list[tuple[str, str]] = []
    first, last = EventsPerUser("first", log), EventsPerUser("last", log)
    saved = list(PROJECTIONS.projections)
    PROJECTIONS.projections[:] = [first, *saved, last]
    try:
        yield first, last, log
    finally:
        PROJECTIONS.projections[:] = saved


async def _stored_counts(db: Database, environment_id: int) -> Counter[int]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(E.c.user_id, func.count())
            .where(E.c.environment_id == environment_id)
            .group_by(E.c.user_id)
        )
        return Counter({user: n for user, n in rows})


def _web(event: str, minute: int, **who: Any) -> TrackItem:
    return TrackItem(
        event=event,
        source="WEB",
        session_id="s1",
        timestamp=f"2026-05-01T10:{minute:02d}:00Z",
        context={"url": "https://shop.example/"},
        **who,
    )


async def test_a_registered_projection_follows_events_merges_and_deletions_in_order(
    db: Database,
    environment_id: int,
    registered: tuple[EventsPerUser, EventsPerUser, list[tuple[str, str]]],
) -> None:
    first, last, log = registered
    env = environment_id

    outcome = await ingest.track(
        db,
        environment_id=env,
        items=[_web("view", 1, user_id="500"), _web("click", 2, user_id="500")]
        + [_web("view", minute, user_id="600") for minute in (3, 4, 5)],
    )
    assert outcome.accepted == 5
    assert log == [
        ("first", "prepare_events"),
        ("last", "prepare_events"),
        ("first", "on_events"),
        ("last", "on_events"),
    ]
    # Registry order: the first hears before sessions are assigned, the last after; both
    # hear of the events once they are stored.
    assert first.seen[0] == {"hook": "prepare", "sessions": [None] * 5}
    assert None not in last.seen[0]["sessions"]
    assert first.seen[1] == last.seen[1] == {"hook": "events", "stored": 5}
    assert first.table == last.table == await _stored_counts(db, env) == {500: 2, 600: 3}

    # A merge, from a client login inside a batch of events: 500 joins 600.
    await ingest.identify(db, environment_id=env, user_id="600", identity="ada")
    log.clear()
    await ingest.track(
        db, environment_id=env, items=[_web("buy", 6, user_id="500", identity="ada")]
    )
    assert log == [
        ("first", "before_merge"),
        ("last", "before_merge"),
        ("first", "on_merge"),
        ("last", "on_merge"),
        ("first", "prepare_events"),
        ("last", "prepare_events"),
        ("first", "on_events"),
        ("last", "on_events"),
    ]
    assert [s for s in last.seen if s["hook"] in ("before", "after")] == [
        {"hook": "before", "source": 2},  # before the move the source still has its events
        {"hook": "after", "source": 0},
    ]
    assert first.table == last.table == await _stored_counts(db, env) == {600: 6}

    # A merge through a link (Segment's alias): an anonymous visitor joins ada.
    await ingest.track(db, environment_id=env, items=[_web("view", 7, anonymous_id="visitor")])
    log.clear()
    done = await links.link_anonymous_ids(
        db,
        environment_id=env,
        links=[links.AnonymousLink(anonymous_id="visitor", identity="ada", explicit=True)],
    )
    assert not done.problems, done.problems
    assert log == [
        ("first", "before_merge"),
        ("last", "before_merge"),
        ("first", "on_merge"),
        ("last", "on_merge"),
    ]
    assert first.table == last.table == await _stored_counts(db, env) == {600: 7}

    # A deletion: the hooks run while the user's rows are still there, then all are gone.
    log.clear()
    assert await users.delete_user(db, environment_id=env, identity="ada") == 600
    assert log == [("first", "on_user_deleted"), ("last", "on_user_deleted")]
    assert last.seen[-1] == {"hook": "deleted", "events": 7}
    assert first.table == last.table == await _stored_counts(db, env) == {}
    async with db.read() as conn:
        for table in (S, U):
            assert not await conn.scalar(select(func.count()).where(table.c.environment_id == env))
