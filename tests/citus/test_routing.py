"""On Citus, one user's reads and writes are router queries to that user's shard (EXPLAIN);
lists and filters read every shard.

Each test runs a real request against a server over a Citus database, captures the
statements the server sent, and EXPLAINs each on the coordinator: `Task Count: 1` and the
node of the user's shard for a router query, `Task Count: <shards>` for a multi-shard one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.citus.explain import PER_USER, Route, captured, routes, shard_count, shard_node
from tests.conftest import CITUS_URL, RunningServer
from tests.support import USER_TIMELINE, Api

pytestmark = pytest.mark.skipif(
    not CITUS_URL, reason="set USERTRAIL_TEST_CITUS_URL to a Citus coordinator to run these"
)

USER = 4242
NOW = datetime.now(UTC).replace(microsecond=0)


def _events(user: int, count: int, *, keys: bool = False) -> list[dict]:
    return [
        {
            "event": "click" if i % 3 == 0 else "pageview",
            "userId": str(user),
            "source": "WEB",
            "timestamp": (NOW - timedelta(minutes=count - i)).isoformat(),
            "properties": {"k": f"{user}-{i}", "path": "/pricing"},
            **({"idempotencyKey": f"key-{user}-{i}"} if keys else {}),
        }
        for i in range(count)
    ]


def _on_user_tables(found: list[Route]) -> list[Route]:
    return [r for r in found if r.statement.tables & PER_USER]


def _show(found: list[Route]) -> str:
    return "\n\n".join(f"{r.statement.sql}\n{r.plan}" for r in found)


async def test_a_users_ingestion_is_router_queries_to_its_shard(
    server: RunningServer, api: Api, database_url: str
) -> None:
    await api.track_batch(_events(USER, 3))  # the user exists: the next batch is the usual one
    with captured(server.db) as statements:
        result = await api.track_batch(_events(USER, 12, keys=True))
    assert result["accepted"] == 12
    found = await routes(database_url, statements)
    node = await shard_node(database_url, "users", USER)
    per_user = _on_user_tables(found)
    assert {"users", "sessions"} <= {t for r in per_user for t in r.statement.tables}
    # Every statement on users, sessions, events and their side tables: one task, on the
    # worker holding the user's shard (events themselves arrive by COPY, routed row by row
    # on user_id: all to that shard).
    assert all(r.tasks == 1 and r.ports == {node} for r in per_user), _show(per_user)
    # Idempotency keys are distributed by key (unique across the cluster): the batch's
    # twelve keys go to their own shards, at most one task each.
    keyed = [r for r in found if "idempotency_keys" in r.statement.tables]
    assert keyed and all(1 <= r.tasks <= 12 for r in keyed), _show(keyed)


async def test_the_timeline_is_router_queries_to_the_users_shard(
    server: RunningServer, api: Api, database_url: str
) -> None:
    await api.track_batch(_events(USER, 20))
    with captured(server.db) as statements:
        user = (await api.gql(USER_TIMELINE, userId=str(USER)))["user"]
    assert user["eventCount"] == 20 and user["sessions"]["edges"]
    found = await routes(database_url, statements)
    node = await shard_node(database_url, "users", USER)
    per_user = _on_user_tables(found)
    # The user, its session and event counts, its sessions page and each session's events
    # page (LATERAL joins on user_id, one statement per level).
    assert len(per_user) >= 3, _show(found)
    assert all(r.tasks == 1 and r.ports == {node} for r in per_user), _show(per_user)
    # The userId routes through user_aliases (merged userIds), by alias: one shard as well.
    assert all(r.tasks == 1 for r in found), _show(found)


USERS = """
query($filter: UserFilter) {
  users(filter: $filter, first: 10) {
    totalCount edges { node { userId sessions(first: 2) { edges { node { eventCount } } } } }
  }
}"""
SESSIONS = """
query { sessions(first: 10) { totalCount edges { node { user { userId } } } } }"""


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (USERS, {}),
        (USERS, {"filter": {"seen": {"lastDays": 7}, "events": [{"event": {"type": "click"}}]}}),
        (
            USERS,
            {
                "filter": {
                    "seen": {"lastDays": 7},
                    "properties": [{"property": "plan", "op": "IS_SET"}],
                }
            },
        ),
        (SESSIONS, {}),
    ],
    ids=["users page", "users filtered by event", "users filtered by property", "sessions page"],
)
async def test_lists_and_filters_read_every_shard(
    server: RunningServer, api: Api, database_url: str, query: str, variables: dict
) -> None:
    for user in range(5001, 5021):
        await api.track_batch(_events(user, 3))
    with captured(server.db) as statements:
        body = await api.gql(query, **variables)
    assert body
    found = await routes(database_url, statements)
    shards = await shard_count(database_url, "users")
    # A page of users (or sessions) across the environment: a multi-shard query, one task
    # per shard, merged and ordered on the coordinator.
    assert any(r.tasks == shards for r in _on_user_tables(found)), _show(found)


NESTED = """
query { users(first: 20) { edges { node { userId
  sessions(first: 5) { edges { node { events(first: 10) { edges { node { type } } } } } } } } } }"""


async def test_nested_pages_are_one_pushed_down_statement_per_level(
    server: RunningServer, api: Api, database_url: str
) -> None:
    for user in range(6001, 6021):
        await api.track_batch(_events(user, 3))
    with captured(server.db) as statements:
        users = (await api.gql(NESTED))["users"]["edges"]
    assert len(users) == 20
    found = _on_user_tables(await routes(database_url, statements))
    shards = await shard_count(database_url, "users")
    # The users page, their sessions pages, those sessions' events pages: three statements
    # for twenty users, each run shard by shard on the workers (LATERAL joins on user_id),
    # none planned in steps through the coordinator (no subplans, no intermediate results).
    assert len(found) == 3, _show(found)
    assert all(1 <= r.tasks <= shards for r in found), _show(found)
    assert not any("Subplan" in r.plan or "intermediate" in r.plan for r in found), _show(found)


async def test_server_connections_keep_worker_connections_for_the_next_statement(
    server: RunningServer,
) -> None:
    # models/distribution.SESSION_SETTINGS: without them each multi-shard statement opened
    # new worker backends for all but one of its connections per worker; now it opens no
    # more than it keeps.
    async with server.db.read() as conn:
        kept = await conn.exec_driver_sql("SHOW citus.max_cached_conns_per_worker")
        used = await conn.exec_driver_sql("SHOW citus.max_adaptive_executor_pool_size")
        assert 1 < int(used.scalar_one()) <= int(kept.scalar_one())
