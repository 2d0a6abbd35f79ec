"""The Sessions page rules (SPEC §6), highlights, event names and session summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import Api

SESSIONS = """
query($filter: SessionFilter, $first: Int, $after: String) {
  sessions(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { origin source user { userId } events(first: 50) {
      edges { node { properties } } } } }
  }
}"""
NOW = datetime.now(UTC).replace(microsecond=0)


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def web(user: str, minutes_ago: float, key: str, kind: str = "pageview") -> dict:
    return {
        "event": kind,
        "userId": user,
        "source": "WEB",
        "timestamp": at(minutes_ago),
        "properties": {"k": key},
    }


def server(user: str, minutes_ago: float, key: str, kind: str = "Invoice Paid") -> dict:
    return {
        "event": kind,
        "userId": user,
        "source": "SERVER",
        "timestamp": at(minutes_ago),
        "properties": {"k": key},
    }


@pytest.fixture
async def shop(api: Api) -> Api:
    """Two users: each has a web session holding an Invoice Paid, and a server-only session."""
    await api.track_batch(
        [
            web("1", 300, "a1"),
            server("1", 295, "a2"),  # client session with server event
            server("1", 100, "a3"),  # server-only session
            web("2", 200, "b1"),
            web("2", 190, "b2", "click"),
            server("2", 185, "b3"),
            server("2", 50, "b4", "Email Opened"),  # server-only
            {
                "event": "pageview",
                "userId": "3",
                "source": "IOS",
                "timestamp": at(10),
                "properties": {"k": "c1"},
            },
        ]
    )
    await api.gql("""mutation { addUserProperties(input: {userId: "2",
      properties: {plan: "pro"}}) { errors { code } } }""")
    return api


def keys(data: dict[str, Any]) -> list[list[str]]:
    return [
        [e["node"]["properties"]["k"] for e in s["node"]["events"]["edges"]]
        for s in data["sessions"]["edges"]
    ]


async def test_all_sessions_newest_first(shop: Api) -> None:
    data = await shop.gql(SESSIONS)
    assert keys(data) == [["c1"], ["b4"], ["a3"], ["b1", "b2", "b3"], ["a1", "a2"]]
    assert data["sessions"]["totalCount"] == 5


async def test_event_filter_lists_only_client_originated_sessions(shop: Api) -> None:
    data = await shop.gql(SESSIONS, filter={"event": {"type": "Invoice Paid"}})
    assert keys(data) == [["b1", "b2", "b3"], ["a1", "a2"]]
    data = await shop.gql(SESSIONS, filter={"event": {"type": "Email Opened"}})
    assert keys(data) == []


async def test_include_server_only_lifts_the_limitation(shop: Api) -> None:
    data = await shop.gql(
        SESSIONS, filter={"event": {"type": "Invoice Paid"}, "includeServerOnly": True}
    )
    assert keys(data) == [["a3"], ["b1", "b2", "b3"], ["a1", "a2"]]
    data = await shop.gql(
        SESSIONS,
        filter={
            "userProperties": [{"property": "plan", "op": "EQUALS", "value": "pro"}],
            "includeServerOnly": True,
        },
    )
    assert keys(data) == [["b4"], ["b1", "b2", "b3"]]


async def test_user_property_filter_lists_only_client_sessions(shop: Api) -> None:
    data = await shop.gql(
        SESSIONS, filter={"userProperties": [{"property": "plan", "op": "EQUALS", "value": "pro"}]}
    )
    assert keys(data) == [["b1", "b2", "b3"]]


async def test_one_user_lists_all_of_that_users_sessions(shop: Api) -> None:
    data = await shop.gql(SESSIONS, filter={"userId": "1"})
    assert keys(data) == [["a3"], ["a1", "a2"]]
    data = await shop.gql(SESSIONS, filter={"userId": "1", "event": {"type": "Invoice Paid"}})
    assert keys(data) == [["a3"], ["a1", "a2"]]
    assert (await shop.gql(SESSIONS, filter={"identity": "nobody"}))["sessions"]["edges"] == []


async def test_sources_and_time(shop: Api) -> None:
    data = await shop.gql(SESSIONS, filter={"sources": ["IOS", "SERVER"]})
    assert keys(data) == [["c1"], ["b4"], ["a3"]]
    data = await shop.gql(SESSIONS, filter={"time": {"from": at(250), "to": at(60)}})
    assert keys(data) == [["a3"], ["b1", "b2", "b3"]]


async def test_pages_walk_every_session_once(shop: Api) -> None:
    seen: list[list[str]] = []
    after = None
    while True:
        data = await shop.gql(SESSIONS, first=2, after=after)
        seen += keys(data)
        if not data["sessions"]["pageInfo"]["hasNextPage"]:
            break
        after = data["sessions"]["pageInfo"]["endCursor"]
    assert seen == keys(await shop.gql(SESSIONS))


USER_SESSIONS = """
query($highlight: EventMatch, $filter: UserSessionFilter) {
  user(userId: "2") {
    sessions(highlight: $highlight, filter: $filter) {
      totalCount
      edges { node { highlighted origin eventCount mostFrequentEvents(limit: 2) { name count } } }
    }
  }
}"""


async def test_highlight_marks_sessions_with_a_matching_event(shop: Api) -> None:
    data = await shop.gql(USER_SESSIONS, highlight={"type": "click"})
    sessions = data["user"]["sessions"]["edges"]
    assert [(s["node"]["origin"], s["node"]["highlighted"]) for s in sessions] == [
        ("SERVER", False),
        ("CLIENT", True),
    ]
    plain = await shop.gql(USER_SESSIONS)
    assert [s["node"]["highlighted"] for s in plain["user"]["sessions"]["edges"]] == [False, False]


async def test_user_session_filter_and_most_frequent_events(shop: Api) -> None:
    await shop.track_batch(
        [web("2", 180, "b5"), web("2", 175, "b6", "click"), web("2", 170, "b7", "click")]
    )
    data = await shop.gql(USER_SESSIONS, filter={"sources": ["WEB"]})
    sessions = data["user"]["sessions"]
    assert sessions["totalCount"] == 1
    node = sessions["edges"][0]["node"]
    assert node["eventCount"] == 6
    assert node["mostFrequentEvents"] == [
        {"name": "click", "count": 3},
        {"name": "pageview", "count": 2},
    ]
    data = await shop.gql(USER_SESSIONS, filter={"event": {"type": "Email Opened"}})
    assert data["user"]["sessions"]["totalCount"] == 1


async def test_event_names_mark_server_side_events(shop: Api) -> None:
    data = await shop.gql("{ eventNames { type serverSide count } }")
    assert sorted((n["type"], n["serverSide"], n["count"]) for n in data["eventNames"]) == [
        ("Email Opened", True, 1),
        ("Invoice Paid", True, 3),
        ("click", False, 1),
        ("pageview", False, 3),
    ]
    recent = await shop.gql(
        "query($t: TimeRange) { eventNames(time: $t) { type } }", t={"from": at(60)}
    )
    assert sorted(n["type"] for n in recent["eventNames"]) == ["Email Opened", "pageview"]


DELETE = """mutation($userId: String, $identity: String) {
  deleteUser(userId: $userId, identity: $identity) { deletedId errors { code field } } }"""


async def test_delete_user_erases_everything_of_that_user(shop: Api) -> None:
    await shop.gql("""mutation { identify(input: {userId: "2", identity: "bo"}) {
      errors { code } } }""")
    done = (await shop.gql(DELETE, identity="bo"))["deleteUser"]
    assert done["errors"] == [] and done["deletedId"]
    assert (await shop.gql('{ user(userId: "2") { userId } }'))["user"] is None
    assert (await shop.gql('{ user(identity: "bo") { userId } }'))["user"] is None
    assert (await shop.gql(await_node(done["deletedId"])))["node"] is None
    remaining = keys(await shop.gql(SESSIONS))
    assert remaining == [["c1"], ["a3"], ["a1", "a2"]]
    again = (await shop.gql(DELETE, userId="2"))["deleteUser"]
    assert [e["code"] for e in again["errors"]] == ["UNKNOWN_USER"]


def await_node(node_id: str) -> str:
    return f'{{ node(id: "{node_id}") {{ id }} }}'
