"""Nested pages read fast and the same: prefetched events, one connection per query.

A user's sessions prefetch the events page the query asks of each (graph/session.py); a
query's loaders share one connection, given back when the request ends (graph/loaders).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from tests.conftest import RunningServer
from tests.support import Api

NOW = datetime.now(UTC).replace(microsecond=0)
NESTED = """query($first: Int, $events: Int) { users(first: $first) { edges { node { userId
  sessions(first: 5) { edges { node { id startTime
    events(first: $events) { edges { cursor node { id type time properties } }
      pageInfo { hasNextPage endCursor } } } } } } } } }"""
ONE_SESSION = """query($id: ID!, $events: Int) { node(id: $id) { ... on Session {
  events(first: $events) { edges { cursor node { id type time properties } }
    pageInfo { hasNextPage endCursor } } } } }"""


def _event(user: int, minutes_ago: float, step: int) -> dict:
    return {
        "event": "click" if step % 2 else "pageview",
        "userId": str(user),
        "source": "WEB",
        "timestamp": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
        "properties": {"step": step, "title": "Trail gear — ünïcode"},
    }


async def _track_sessions(api: Api) -> None:
    events = [
        _event(user, 60 * 24 * session + user + step / 10, step)
        for user in range(1, 7)
        for session in range(3)
        for step in range(4)
    ]
    assert (await api.track_batch(events))["errors"] == []


async def test_prefetched_events_are_the_events_of_each_session(api: Api) -> None:
    await _track_sessions(api)
    for page in (2, 10):
        users = (await api.gql(NESTED, first=10, events=page))["users"]["edges"]
        sessions = [s["node"] for u in users for s in u["node"]["sessions"]["edges"]]
        assert len(sessions) == 18
        for session in sessions:
            alone = await api.gql(ONE_SESSION, id=session["id"], events=page)
            assert session["events"] == alone["node"]["events"]


async def test_events_arguments_are_checked_in_every_session(api: Api) -> None:
    await _track_sessions(api)
    body = await api.raw(NESTED, first=2, events=1000)
    paths = [error["path"] for error in body["errors"]]
    assert len(paths) == 1  # non-null all the way up: the first error nulls `users`
    assert paths[0][-1] == "events"
    assert body["errors"][0]["message"] == "`first` must be between 0 and 500; got 1000"


async def test_a_query_reads_through_one_connection_and_gives_it_back(
    api: Api, server: RunningServer
) -> None:
    await _track_sessions(api)
    checkouts = []
    pool = server.db.engine.sync_engine.pool

    def count(*_: object) -> None:
        checkouts.append(1)

    event.listen(pool, "checkout", count)
    try:
        await api.gql(NESTED, first=10, events=3)
    finally:
        event.remove(pool, "checkout", count)
    # One connection for the users page and the loaders' batches (sessions, events).
    assert len(checkouts) == 1
    for _ in range(100):  # given back just after the answer
        if pool.checkedout() == 0:
            break
        await asyncio.sleep(0.01)
    assert pool.checkedout() == 0
