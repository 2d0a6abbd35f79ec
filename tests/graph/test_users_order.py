"""`users(orderBy:)`: every order, both directions, against expectations computed here from the
fixture's events and properties; keyset walks forward and backward; walks while events,
property updates and merges arrive never repeat or skip a user; errors name the field."""

from __future__ import annotations

import asyncio
import base64
import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from alembic import command

from models.migrate import alembic_config
from tests.conftest import RunningServer, start_server
from tests.support import Api

NOW = datetime.now(UTC).replace(microsecond=0)
USERS = """query($order: UserOrder, $first: Int, $after: String, $last: Int, $before: String) {
  users(orderBy: $order, first: $first, after: $after, last: $last, before: $before) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { userId } } } }"""
PROPS = """mutation($users: [UserPropertiesInput!]!) {
  addUserPropertiesBatch(users: $users) { accepted errors { index message } } }"""
IDENTIFY = """mutation($u: String!, $i: String!) {
  identify(input: {userId: $u, identity: $i}) { errors { code message } } }"""
# The sort property's values (SPEC §5a): numbers and numeric strings sort by number, the
# rest by text; users 9, 18, 27, ... have none.
PLANS = [7, "10", " 49 ", "4.9e1", 2.5, -3, "gold", "Gold", "ábc", True, "", "-0.5", 100, "zz"]
NUMERIC = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,4})?\s*")


def event(user: int, at: datetime) -> dict[str, Any]:
    return {"event": "pageview", "userId": str(user), "source": "WEB", "timestamp": at.isoformat()}


def population(rng: random.Random) -> dict[int, list[datetime]]:
    """Users 1..45: 1-4 sessions two hours apart of 1-3 events each, within the last days."""
    times: dict[int, list[datetime]] = {}
    for user in range(1, 46):
        start = NOW - timedelta(hours=rng.randrange(10, 90), minutes=rng.randrange(60))
        times[user] = [
            start + timedelta(hours=2 * s, minutes=e)
            for s in range(rng.randrange(1, 5))
            for e in range(rng.randrange(1, 4))
        ]
    return times


def plan_of(user: int) -> Any:
    return None if user % 9 == 0 else PLANS[user % len(PLANS)]


def property_key(value: Any) -> tuple[int, Decimal, str]:
    """(class, number, text) as the rule reads a value: numeric, text, missing."""
    if value is None:
        return (2, Decimal(0), "")
    if not isinstance(value, bool) and isinstance(value, int | float):
        return (0, Decimal(repr(value)), "")
    if isinstance(value, str) and NUMERIC.fullmatch(value):
        return (0, Decimal(value.strip()), "")
    return (1, Decimal(0), ("true" if value else "false") if isinstance(value, bool) else value)


def sessions(times: list[datetime]) -> int:
    """Client sessions: a new one after 30 minutes without events."""
    ordered = sorted(times)
    return 1 + sum(
        b - a > timedelta(minutes=30) for a, b in zip(ordered, ordered[1:], strict=False)
    )


def expected(times: dict[int, list[datetime]], field: str, direction: str) -> list[str]:
    down = direction == "DESC"
    if field == "PROPERTY":
        # Classes always in order (numbers, texts, missing); the direction within each.
        ordered = sorted(times, key=lambda u: u, reverse=down)
        ordered.sort(key=lambda u: property_key(plan_of(u))[2], reverse=down)
        ordered.sort(key=lambda u: property_key(plan_of(u))[1], reverse=down)
        ordered.sort(key=lambda u: property_key(plan_of(u))[0])
        return [str(u) for u in ordered]
    keys = {
        "LAST_SEEN": lambda u: max(times[u]),
        "FIRST_SEEN": lambda u: min(times[u]),
        "EVENT_COUNT": lambda u: len(times[u]),
        "SESSION_COUNT": lambda u: sessions(times[u]),
    }
    key = keys[field]
    return [str(u) for u in sorted(times, key=lambda u: (key(u), u), reverse=down)]


@pytest.fixture(scope="module")
async def loaded(module_server: RunningServer) -> AsyncIterator[tuple[Api, dict]]:
    times = population(random.Random(11))
    async with Api(module_server.url) as api:
        events = [event(u, t) for u, ts in times.items() for t in ts]
        assert (await api.track_batch(events))["errors"] == []
        users = [
            {"userId": str(u), "properties": {"plan": plan_of(u)}}
            for u in times
            if plan_of(u) is not None
        ]
        assert (await api.gql(PROPS, users=users))["addUserPropertiesBatch"]["errors"] == []
        yield api, times


def order(field: str, direction: str) -> dict[str, Any]:
    found: dict[str, Any] = {"field": field, "direction": direction}
    if field == "PROPERTY":
        found["property"] = "plan"
    return found


async def walk(api: Api, sort: dict[str, Any], size: int, backward: bool = False) -> list[str]:
    listed: list[str] = []
    cursor = None
    while True:
        if backward:
            page = (await api.gql(USERS, order=sort, last=size, before=cursor))["users"]
            listed = [e["node"]["userId"] for e in page["edges"]] + listed
            more, cursor = page["pageInfo"]["hasPreviousPage"], page["pageInfo"]["startCursor"]
        else:
            page = (await api.gql(USERS, order=sort, first=size, after=cursor))["users"]
            listed += [e["node"]["userId"] for e in page["edges"]]
            more, cursor = page["pageInfo"]["hasNextPage"], page["pageInfo"]["endCursor"]
        if not more:
            return listed


FIELDS = ["LAST_SEEN", "FIRST_SEEN", "EVENT_COUNT", "SESSION_COUNT", "PROPERTY"]


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize("field", FIELDS)
async def test_each_order_walks_forward_and_backward(
    loaded: tuple[Api, dict], field: str, direction: str
) -> None:
    api, times = loaded
    wanted = expected(times, field, direction)
    one_page = (await api.gql(USERS, order=order(field, direction), first=100))["users"]
    assert [e["node"]["userId"] for e in one_page["edges"]] == wanted
    assert await walk(api, order(field, direction), 7) == wanted
    assert await walk(api, order(field, direction), 6, backward=True) == wanted


async def test_property_order_puts_numbers_then_texts_then_missing(
    loaded: tuple[Api, dict],
) -> None:
    api, _ = loaded
    page = (await api.gql(USERS, order=order("PROPERTY", "ASC"), first=100))["users"]
    plans = [plan_of(int(e["node"]["userId"])) for e in page["edges"]]
    # " 49 " and "4.9e1" are 49: after 10 and before 100, whatever their text says.
    numbers = [p for p in plans if property_key(p)[0] == 0]
    assert numbers.index("10") < numbers.index(" 49 ") < numbers.index(100)
    assert plans[-1] is None and plans[0] == -3
    texts = [p for p in plans if property_key(p)[0] == 1]
    assert texts == sorted(texts, key=lambda p: property_key(p)[2])


async def test_a_cursor_of_another_order_is_refused(loaded: tuple[Api, dict]) -> None:
    api, _ = loaded
    cursors = {}
    for sort in (None, order("EVENT_COUNT", "ASC"), order("PROPERTY", "DESC")):
        page = await api.gql(USERS, order=sort, first=2)
        cursors[str(sort)] = page["users"]["pageInfo"]["endCursor"]
    for sort in (None, order("EVENT_COUNT", "DESC"), order("PROPERTY", "ASC")):
        for name, cursor in cursors.items():
            if name == str(sort):
                continue
            body = await api.raw(USERS, order=sort, first=2, after=cursor)
            [error] = body["errors"]
            assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
            assert "another order" in error["message"]
    other_property = {"field": "PROPERTY", "property": "age"}
    body = await api.raw(
        USERS, order=other_property, first=2, after=cursors[str(order("PROPERTY", "DESC"))]
    )
    assert body["errors"][0]["extensions"]["field"] == "after"


@pytest.mark.parametrize(
    ("sort", "message"),
    [
        ({"field": "PROPERTY"}, "name it in `property`"),
        ({"field": "EVENT_COUNT", "property": "plan"}, "goes with field PROPERTY only"),
    ],
)
async def test_property_must_go_with_field_property(
    loaded: tuple[Api, dict], sort: dict, message: str
) -> None:
    api, _ = loaded
    [error] = (await api.raw(USERS, order=sort, first=2))["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "orderBy.property"}
    assert message in error["message"]


@pytest.mark.parametrize(
    "sort",
    [
        order("EVENT_COUNT", "DESC"),
        order("SESSION_COUNT", "ASC"),
        order("FIRST_SEEN", "ASC"),
        order("PROPERTY", "DESC"),
        order("LAST_SEEN", "ASC"),
    ],
)
async def test_walks_while_data_arrives_never_repeat_or_skip(api: Api, sort: dict) -> None:
    rng = random.Random(str(sort))
    times = population(rng)
    await api.track_batch([event(u, t) for u, ts in times.items() for t in ts])
    plans = [{"userId": str(u), "properties": {"plan": plan_of(u)}} for u in times if plan_of(u)]
    await api.gql(PROPS, users=plans)
    for owner in (41, 42, 43):
        await api.gql(IDENTIFY, u=str(owner), i=f"person-{owner}")
    merged: set[str] = set()
    listed: list[str] = []
    after = None
    step = 0
    while True:
        data = (await api.gql(USERS, order=sort, first=5, after=after))["users"]
        listed += [e["node"]["userId"] for e in data["edges"]]
        step += 1
        # Between pages: users listed and not yet listed get new events (some backdated
        # before their first, some opening sessions), new values, new users, a merge.
        movers = rng.sample(sorted(times), 6)
        arriving = [event(u, NOW - timedelta(minutes=rng.uniform(0, 5))) for u in movers[:2]]
        arriving += [
            event(u, min(times[u]) - timedelta(hours=rng.uniform(10, 60))) for u in movers[2:4]
        ]
        arriving += [event(u, NOW - timedelta(hours=rng.uniform(1, 9))) for u in movers[4:]]
        arriving += [event(2000 + step, NOW)]
        await api.track_batch(arriving)
        values = [rng.choice([*PLANS, "new", 1e6, -1e6]) for _ in movers]
        await api.gql(
            PROPS,
            users=[
                {"userId": str(u), "properties": {"plan": v}}
                for u, v in zip(movers, values, strict=True)
            ],
        )
        if step in (2, 5):
            source = str(rng.choice([u for u in range(1, 41) if str(u) not in merged]))
            await api.gql(IDENTIFY, u=source, i=f"person-{41 + step % 3}")
            merged.add(source)
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert len(listed) == len(set(listed)), "a user appeared twice"
    missing = {str(u) for u in times} - merged - set(listed)
    assert not missing, f"users present from the start were skipped: {missing}"


STATEMENTS = """query($after: String, $first: Int) {
  users(orderBy: {field: SESSION_COUNT, direction: DESC}, first: $first, after: $after) {
    pageInfo { endCursor } edges { node { userId eventCount lastSeen } } } }"""


async def test_statement_count_per_page_is_constant(api: Api, server: RunningServer) -> None:
    times = population(random.Random(3))
    await api.track_batch([event(u, t) for u, ts in times.items() for t in ts])
    first_page = await api.gql(STATEMENTS, first=3)
    after = first_page["users"]["pageInfo"]["endCursor"]
    await api.track_batch([event(u, NOW) for u in range(1, 46)])
    counts = {}
    for first in (5, 30):
        before = server.db.statement_count
        data = await api.gql(STATEMENTS, first=first, after=after)
        counts[first] = server.db.statement_count - before
        assert len(data["users"]["edges"]) == first
    assert counts[5] == counts[30], counts


async def test_a_cursor_older_than_a_day_is_refused(loaded: tuple[Api, dict]) -> None:
    api, _ = loaded
    page = await api.gql(USERS, order=order("EVENT_COUNT", "DESC"), first=2)
    cursor = page["users"]["pageInfo"]["endCursor"]
    kind, key, user, snapshot = base64.urlsafe_b64decode(cursor + "==").decode().split(":")
    stale = f"{kind}:{key}:{user}:{int(snapshot) - 25 * 3600 * 10**6}"
    forged = base64.urlsafe_b64encode(stale.encode()).decode().rstrip("=")
    for arguments in ({"first": 2, "after": forged}, {"last": 2, "before": forged}):
        sort = order("EVENT_COUNT", "DESC")
        [error] = (await api.raw(USERS, order=sort, **arguments))["errors"]
        field = "after" if "after" in arguments else "before"
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
        assert "start again from the first page" in error["message"]


async def test_the_migration_counts_events_and_sessions_of_stored_users(
    api: Api, database_url: str
) -> None:
    times = population(random.Random(8))
    await api.track_batch([event(u, t) for u, ts in times.items() for t in ts])
    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0008")
    await asyncio.to_thread(command.upgrade, config, "head")
    running, server, task = await start_server(database_url)  # no statement cached before
    try:
        async with Api(running.url) as fresh:
            for field in ("EVENT_COUNT", "SESSION_COUNT"):
                page = await fresh.gql(USERS, order=order(field, "DESC"), first=100)
                listed = [e["node"]["userId"] for e in page["users"]["edges"]]
                assert listed == expected(times, field, "DESC")
    finally:
        server.should_exit = True
        await task


FILTERED = """query($order: UserOrder, $filter: UserFilter, $first: Int, $after: String) {
  users(orderBy: $order, filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { userId } } } }"""


@pytest.mark.parametrize("field", ["LAST_SEEN", "EVENT_COUNT", "PROPERTY"])
async def test_a_filtered_list_in_each_order(loaded: tuple[Api, dict], field: str) -> None:
    api, times = loaded
    busy = {"events": [{"event": {"type": "pageview"}, "atLeast": 4}]}
    wanted = [u for u in expected(times, field, "ASC") if len(times[int(u)]) >= 4]
    listed: list[str] = []
    after = None
    while True:
        page = (
            await api.gql(FILTERED, order=order(field, "ASC"), filter=busy, first=4, after=after)
        )["users"]
        assert page["totalCount"] == len(wanted)
        listed += [e["node"]["userId"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert listed == wanted and wanted


async def test_plain_columns_sort_as_properties_too(loaded: tuple[Api, dict]) -> None:
    api, times = loaded
    sort = {"field": "PROPERTY", "property": "userId", "direction": "DESC"}
    page = (await api.gql(USERS, order=sort, first=100))["users"]
    assert [e["node"]["userId"] for e in page["edges"]] == [str(u) for u in sorted(times)[::-1]]
    # Nobody has an identity: all are missing it, so they go by userId.
    sort = {"field": "PROPERTY", "property": "identity", "direction": "ASC"}
    assert await walk(api, sort, 9) == [str(u) for u in sorted(times)]
