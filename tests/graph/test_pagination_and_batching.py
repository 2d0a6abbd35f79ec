"""Keyset pages stay consistent while data arrives; nested queries batch their SQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from tests.conftest import RunningServer
from tests.support import Api

USERS = """query($first: Int, $after: String) {
  users(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor } edges { node { userId } } } }"""
NOW = datetime.now(UTC).replace(microsecond=0)


def visit(user: int, minutes_ago: float) -> dict:
    return {
        "event": "pageview",
        "userId": str(user),
        "source": "WEB",
        "timestamp": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
    }


async def test_walking_pages_while_events_arrive_never_repeats_or_skips(api: Api) -> None:
    rng = random.Random(5)
    original = list(range(1, 121))
    await api.track_batch([visit(u, rng.uniform(60, 5000)) for u in original])
    listed: list[str] = []
    after = None
    while True:
        data = (await api.gql(USERS, first=10, after=after))["users"]
        listed += [e["node"]["userId"] for e in data["edges"]]
        # Between pages: users already listed and users not yet listed come back to the top,
        # and brand-new users appear.
        movers = rng.sample(original, 8)
        newcomers = [1000 + len(listed) + i for i in range(2)]
        await api.track_batch([visit(u, rng.uniform(0, 5)) for u in movers + newcomers])
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert len(listed) == len(set(listed)), "a user appeared twice"
    assert {str(u) for u in original} <= set(listed), "a user present from the start was skipped"


NESTED = """query($first: Int) {
  users(first: $first) { edges { node { displayName sessionCount lastSeen properties
    sessions(first: 5) { edges { node { mostFrequentEvents { name }
      events(first: 20) { edges { node { name } } } } } } } } } }"""


async def test_statement_count_does_not_grow_with_the_page(api: Api, server: RunningServer) -> None:
    events = []
    for user in range(1, 61):
        for session in range(3):
            for step in range(4):
                minutes = 60 * 24 * session + 60 * (user % 7) + step
                events.append(visit(user, minutes))
    for start in range(0, len(events), 500):
        assert (await api.track_batch(events[start : start + 500]))["errors"] == []
    counts = {}
    for first in (5, 50):
        before = server.db.statement_count
        data = await api.gql(NESTED, first=first)
        counts[first] = server.db.statement_count - before
        users = data["users"]["edges"]
        assert len(users) == first
        assert all(len(u["node"]["sessions"]["edges"]) == 3 for u in users)
    assert counts[5] == counts[50], counts
    assert counts[5] <= 8
