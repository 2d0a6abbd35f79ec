"""Test data: spec cases, random event sets, and readers of what the database stored."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import select

from models import Event, Session
from models.db import Database
from services.clock import to_micros
from services.ingest import TrackItem
from services.sessionize import TimelineEvent, sessionize

CASES_DIR = Path(__file__).parent / "cases"
BASE = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def spec_cases() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(CASES_DIR.glob("*.json"))]


@dataclass(frozen=True)
class RawEvent:
    """A generated event: its key (stored as property `k`), user, source, time, session id."""

    key: str
    user: str
    source: str
    time: datetime
    session_id: str | None = None
    name: str = "pageview"

    def track_item(self) -> TrackItem:
        return TrackItem(
            event=self.name,
            user_id=self.user,
            source=self.source,
            timestamp=self.time,
            session_id=self.session_id,
            properties={"k": self.key},
        )

    def graphql_input(self) -> dict[str, Any]:
        return {
            "event": self.name,
            "userId": self.user,
            "source": self.source,
            "timestamp": self.time.isoformat(),
            "sessionId": self.session_id,
            "properties": {"k": self.key},
        }


def case_events(case: dict[str, Any], user: str = "1001") -> list[RawEvent]:
    return [
        RawEvent(
            e["key"],
            user,
            e["source"],
            datetime.fromisoformat(e["time"].replace("Z", "+00:00")),
            e.get("sessionId"),
            e["event"],
        )
        for e in case["events"]
    ]


# Offsets on a minute grid hit the 5- and 30-minute boundaries exactly; free seconds do not.
offsets = st.one_of(st.integers(0, 8 * 60).map(lambda m: m * 60), st.integers(0, 8 * 3600))
sources = st.sampled_from(["WEB", "WEB", "IOS", "ANDROID", "SERVER", "SERVER"])
session_ids = st.one_of(st.none(), st.none(), st.sampled_from(["s1", "s2"]))


@st.composite
def event_sets(
    draw: st.DrawFn, users: tuple[str, ...] = ("7",), max_size: int = 25
) -> list[RawEvent]:
    count = draw(st.integers(1, max_size))
    return [
        RawEvent(
            f"e{i}",
            draw(st.sampled_from(users)),
            draw(sources),
            BASE + timedelta(seconds=draw(offsets)),
            draw(session_ids),
        )
        for i in range(count)
    ]


def expected_partition(events: Iterable[RawEvent]) -> set[frozenset[str]]:
    """Sessions per the pure rules, as sets of event keys (user-qualified)."""
    by_user: dict[str, list[RawEvent]] = {}
    for event in events:
        by_user.setdefault(event.user, []).append(event)
    found: set[frozenset[str]] = set()
    for group in by_user.values():
        keyed = {i: e for i, e in enumerate(group)}
        timeline = [
            TimelineEvent(
                i, to_micros(e.time), e.source, e.session_id if e.source != "SERVER" else None
            )
            for i, e in keyed.items()
        ]
        for session in sessionize(timeline):
            found.add(frozenset(keyed[e.id].key for e in session.events))
    return found


async def stored_partition(db: Database, environment_id: int) -> set[frozenset[str]]:
    """Sessions as stored, as sets of event keys; checks session rows against their events."""
    E, S = Event.__table__, Session.__table__
    async with db.read() as conn:
        events = (
            await conn.execute(
                select(E.c.user_id, E.c.session_id, E.c.time_us, E.c.properties).where(
                    E.c.environment_id == environment_id
                )
            )
        ).all()
        sessions = (
            (await conn.execute(select(S).where(S.c.environment_id == environment_id)))
            .mappings()
            .all()
        )
    members: dict[tuple[int, int], list[Any]] = {}
    for event in events:
        members.setdefault((event.user_id, event.session_id), []).append(event)
    rows = {(s["user_id"], s["id"]): s for s in sessions}
    assert set(members) == set(rows), "every event has a stored session and no session is empty"
    for key, group in members.items():
        row = rows[key]
        assert row["event_count"] == len(group)
        assert row["start_us"] <= min(e.time_us for e in group)
        assert row["end_us"] == max(e.time_us for e in group)
    return {frozenset(e.properties["k"] for e in group) for group in members.values()}
