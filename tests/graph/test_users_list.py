"""The Users page over a realistic population: every operator, event conditions, anyOf.

Expected answers are computed in plain Python from what the population did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests import population
from tests.population import PUser, holds
from tests.support import Api

USERS = """
query($filter: UserFilter, $first: Int, $after: String) {
  users(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { userId lastSeen } }
  }
}"""
NOW = datetime.now(UTC).replace(microsecond=0)
MONTH = {"lastDays": 30}


@pytest.fixture(scope="module")
async def loaded(module_server: Any) -> AsyncIterator[tuple[Api, list[PUser]]]:
    users = population.build(seed=11, count=240, now=NOW)
    async with Api(module_server.url) as api:
        await population.load(api, users)
        yield api, users


async def list_all(api: Api, filter: dict[str, Any], page: int = 100) -> list[str]:
    """Every userId of a listing, walking all pages."""
    found: list[str] = []
    after = None
    while True:
        data = (await api.gql(USERS, filter=filter, first=page, after=after))["users"]
        found += [e["node"]["userId"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            assert len(found) == data["totalCount"]
            return found
        after = data["pageInfo"]["endCursor"]


def seen_in(user: PUser, low: datetime, high: datetime | None = None) -> bool:
    return any(e.time >= low and (high is None or e.time <= high) for e in user.events)


def ids(users: list[PUser]) -> set[str]:
    return {str(u.user_id) for u in users}


async def test_default_listing_is_last_7_days_newest_first(loaded: tuple) -> None:
    api, users = loaded
    listed = await list_all(api, None)  # type: ignore[arg-type]
    week = NOW - timedelta(days=7)
    expected = sorted(
        (u for u in users if seen_in(u, week)), key=lambda u: (u.last_seen, u.user_id), reverse=True
    )
    assert listed == [str(u.user_id) for u in expected]
    assert 0 < len(listed) < len(users)


PROPERTY_CASES = [
    ("plan", "EQUALS", "pro"),
    ("plan", "EQUALS", "Pro"),
    ("plan", "NOT_EQUALS", "free"),
    ("company", "CONTAINS", "acme"),
    ("company", "NOT_CONTAINS", "ACME"),
    ("company", "STARTS_WITH", "Acme"),
    ("company", "ENDS_WITH", "Labs"),
    ("company", "MATCHES", "*me*"),
    ("company", "MATCHES", "Glo*x"),
    ("plan", "IS_SET", None),
    ("plan", "IS_NOT_SET", None),
    ("seats", "GREATER_THAN", 9),
    ("seats", "GREATER_OR_EQUAL", 10),
    ("seats", "LESS_THAN", 10),
    ("seats", "LESS_OR_EQUAL", 3),
    ("seats", "EQUALS", 25),
    ("seats_text", "GREATER_THAN", 9),
    ("seats_text", "LESS_THAN", 10),
    ("plan", "IN", ["pro", "enterprise"]),
    ("plan", "NOT_IN", ["pro", "enterprise"]),
    ("seats", "IN", [1, 3]),
    ("beta", "EQUALS", True),
    ("beta", "EQUALS", False),
    ("identity", "CONTAINS", "GLOBEX"),
    ("identity", "STARTS_WITH", "user1"),
    ("identity", "ENDS_WITH", "@acme.test"),
    ("identity", "IS_NOT_SET", None),
    ("userId", "EQUALS", "100007"),
    ("userId", "GREATER_THAN", 100200),
    ("email", "ENDS_WITH", "@corp.io"),
    ("email", "IS_SET", None),
    ("Initial Browser", "EQUALS", "Firefox 132"),
    ("Initial Browser", "CONTAINS", "safari"),
]


@pytest.mark.parametrize(
    ("name", "op", "value"), PROPERTY_CASES, ids=[f"{n} {o} {v}" for n, o, v in PROPERTY_CASES]
)
async def test_property_operator(loaded: tuple, name: str, op: str, value: Any) -> None:
    api, users = loaded
    condition = {"property": name, "op": op, **({"value": value} if value is not None else {})}
    listed = await list_all(api, {"seen": MONTH, "properties": [condition]})
    expected = [u for u in users if holds(u.all_properties(), name, op, value)]
    assert set(listed) == ids(expected)
    assert len(listed) == len(set(listed))


def did(user: PUser, kind: str, where: Any = None, low: datetime | None = None) -> int:
    return sum(
        1
        for e in user.events
        if e.type == kind and (where is None or where(e)) and (low is None or e.time >= low)
    )


EVENT_CASES = [
    ("clicked", {"event": {"type": "click"}}, lambda u: did(u, "click") >= 1),
    ("never clicked", {"event": {"type": "click"}, "did": False}, lambda u: did(u, "click") == 0),
    (
        "paid at least twice",
        {"event": {"type": "Invoice Paid"}, "atLeast": 2},
        lambda u: did(u, "Invoice Paid") >= 2,
    ),
    (
        "paid 99 or more (server-side, property condition)",
        {
            "event": {
                "type": "Invoice Paid",
                "where": [{"property": "amount", "op": "GREATER_OR_EQUAL", "value": 99}],
            }
        },
        lambda u: did(u, "Invoice Paid", lambda e: e.properties["amount"] >= 99) >= 1,
    ),
    (
        "clicked Buy at least 2 times",
        {
            "event": {
                "type": "click",
                "where": [{"property": "target_text", "op": "EQUALS", "value": "Buy"}],
            },
            "atLeast": 2,
        },
        lambda u: did(u, "click", lambda e: e.properties.get("target_text") == "Buy") >= 2,
    ),
    (
        "viewed pricing (path from context.url)",
        {
            "event": {
                "type": "pageview",
                "where": [{"property": "path", "op": "EQUALS", "value": "/pricing"}],
            }
        },
        lambda u: did(u, "pageview", lambda e: (e.url or "").endswith("/pricing")) >= 1,
    ),
    (
        "opened an email in the last 3 days",
        {"event": {"type": "Email Opened"}, "time": {"lastDays": 3}},
        lambda u: did(u, "Email Opened", low=NOW - timedelta(days=3)) >= 1,
    ),
]


@pytest.mark.parametrize(
    ("label", "condition", "expect"), EVENT_CASES, ids=[c[0] for c in EVENT_CASES]
)
async def test_event_condition(loaded: tuple, label: str, condition: dict, expect: Any) -> None:
    api, users = loaded
    listed = await list_all(api, {"seen": MONTH, "events": [condition]})
    assert set(listed) == ids([u for u in users if expect(u)])


async def test_event_condition_defaults_to_the_seen_range(loaded: tuple) -> None:
    api, users = loaded
    listed = await list_all(
        api, {"seen": {"lastDays": 2}, "events": [{"event": {"type": "pageview"}}]}
    )
    low = NOW - timedelta(days=2)
    assert set(listed) == ids([u for u in users if did(u, "pageview", low=low) >= 1])


async def test_any_of_and_everything_else_are_combined(loaded: tuple) -> None:
    api, users = loaded
    listed = await list_all(
        api,
        {
            "seen": MONTH,
            "properties": [{"property": "plan", "op": "IS_SET"}],
            "anyOf": [
                {"properties": [{"property": "seats", "op": "GREATER_THAN", "value": 20}]},
                {
                    "events": [{"event": {"type": "Invoice Paid"}}],
                    "anyOf": [
                        {"properties": [{"property": "beta", "op": "EQUALS", "value": True}]},
                        {
                            "properties": [
                                {"property": "company", "op": "CONTAINS", "value": "acme"}
                            ]
                        },
                    ],
                },
            ],
        },
    )
    expected = [
        u
        for u in users
        if holds(u.all_properties(), "plan", "IS_SET")
        and (
            holds(u.all_properties(), "seats", "GREATER_THAN", 20)
            or (
                did(u, "Invoice Paid") >= 1
                and (
                    holds(u.all_properties(), "beta", "EQUALS", True)
                    or holds(u.all_properties(), "company", "CONTAINS", "acme")
                )
            )
        )
    ]
    assert set(listed) == ids(expected)
    assert expected


async def test_seen_from_to(loaded: tuple) -> None:
    api, users = loaded
    low, high = NOW - timedelta(days=9), NOW - timedelta(days=5)
    listed = await list_all(api, {"seen": {"from": low.isoformat(), "to": high.isoformat()}})
    assert set(listed) == ids([u for u in users if seen_in(u, low, high)])


async def test_merged_users_are_listed_once_with_all_their_events(loaded: tuple) -> None:
    api, users = loaded
    merged = [u for u in users if u.anonymous_id is not None]
    assert merged
    listed = await list_all(api, {"seen": MONTH})
    for user in merged:
        assert str(user.anonymous_id) not in listed
        assert listed.count(str(user.user_id)) == 1
    query = "query($id: String) { user(userId: $id) { userId eventCount } }"
    for user in merged[:5]:
        found = (await api.gql(query, id=str(user.anonymous_id)))["user"]
        assert found == {"userId": str(user.user_id), "eventCount": len(user.events)}


@pytest.mark.parametrize(
    ("filter", "first", "field"),
    [
        (
            {"properties": [{"property": "seats", "op": "GREATER_THAN", "value": "ten"}]},
            10,
            "filter.properties[0].value",
        ),
        (
            {"properties": [{"property": "plan", "op": "IN", "value": "pro"}]},
            10,
            "filter.properties[0].value",
        ),
        (
            {"properties": [{"property": "plan", "op": "IS_SET", "value": "x"}]},
            10,
            "filter.properties[0].value",
        ),
        (
            {"seen": {"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}},
            10,
            "filter.seen.from",
        ),
        ({"seen": {"lastDays": 7, "from": "2026-03-01T00:00:00Z"}}, 10, "filter.seen"),
        (
            {"events": [{"event": {"type": "click", "definitionId": "RXZlbnREZWZpbml0aW9uOjE"}}]},
            10,
            "filter.events[0].event",
        ),
        ({"events": [{"event": {"type": "click"}, "atLeast": 0}]}, 10, "filter.events[0].atLeast"),
        (None, 1000, "first"),
    ],
)
async def test_invalid_filters_name_the_field(
    loaded: tuple, filter: Any, first: int, field: str
) -> None:
    api, _ = loaded
    body = await api.raw(USERS, filter=filter, first=first)
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["field"] == field, error
    assert field in error["message"] or "first" in error["message"]


async def test_unknown_operator_is_a_validation_error(loaded: tuple) -> None:
    api, _ = loaded
    body = await api.raw(USERS, filter={"properties": [{"property": "plan", "op": "LIKE"}]})
    assert body["data"] is None and "LIKE" in body["errors"][0]["message"]
