"""Ids read before a merge still resolve after it (GraphQL identify, Heap identify, Segment alias).

What each id promises (schema descriptions of User.id, Session.id, Event.id): a user's id
answers the user it was merged into, with that user's own id; an event's id finds the event
wherever a merge moved it; a session's id answers the session while it exists, and null once
a merge recomputed it (a session of the surviving user that a merge only extended keeps its
id).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import Api

NOW = datetime.now(UTC).replace(microsecond=0)
IDS = """query($userId: String!) { user(userId: $userId) { id userId
  sessions(first: 20) { edges { node { id eventCount
    events(first: 50) { edges { node { id type time properties } } } } } } } }"""
NODE = """query($id: ID!) { node(id: $id) {
  __typename id
  ... on User { userId identity eventCount }
  ... on Session { eventCount user { userId } }
  ... on Event { type time properties user { userId } session { id } } } }"""
IDENTIFY = """mutation($userId: String!, $identity: String!) {
  identify(input: {userId: $userId, identity: $identity}) { merged errors { code } } }"""


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def visit(user: str, minutes_ago: float, key: str) -> dict[str, Any]:
    return {
        "event": "pageview",
        "userId": user,
        "source": "WEB",
        "timestamp": at(minutes_ago),
        "properties": {"k": key},
    }


async def snapshot(api: Api, user_id: str) -> dict[str, Any]:
    """The ids of a user, its sessions and its events, as a client would cache them."""
    user = (await api.gql(IDS, userId=user_id))["user"]
    sessions = [edge["node"] for edge in user["sessions"]["edges"]]
    events = [e["node"] for s in sessions for e in s["events"]["edges"]]
    return {"user": user, "sessions": sessions, "events": events}


async def node(api: Api, id: str) -> dict[str, Any] | None:
    return (await api.gql(NODE, id=id))["node"]


async def assert_survived(api: Api, merged: dict[str, Any], survivor: dict[str, Any]) -> None:
    """Every id read before the merge resolves as promised."""
    found = await node(api, merged["user"]["id"])
    assert found is not None, "the merged user's id answers null"
    # The surviving user, under its own id: the client's cache learns the canonical id.
    assert (found["id"], found["userId"]) == (survivor["user"]["id"], survivor["user"]["userId"])
    assert (await node(api, survivor["user"]["id"]))["id"] == survivor["user"]["id"]
    for before in merged["events"] + survivor["events"]:
        event = await node(api, before["id"])
        assert event is not None, f"event {before} lost its id"
        assert (event["type"], event["time"], event["properties"]) == (
            before["type"],
            before["time"],
            before["properties"],
        )
        assert event["user"]["userId"] == survivor["user"]["userId"]
        # The id it answers now works too (and is the one the user's pages show).
        assert (await node(api, event["id"]))["id"] == event["id"]
    # The merged user's sessions were recomputed under the survivor: their old ids answer null.
    for session in merged["sessions"]:
        assert await node(api, session["id"]) is None


async def test_graphql_identify_keeps_ids(api: Api) -> None:
    await api.track_batch([visit("21", 300, "b1"), visit("21", 295, "b2")])
    await api.gql(IDENTIFY, userId="21", identity="bob")
    # Earlier, on another device: one session long before, one right after bob's visit.
    await api.track_batch([visit("22", 2000, "a1"), visit("22", 290, "a2")])
    survivor, merged = await snapshot(api, "21"), await snapshot(api, "22")
    (kept_session,) = survivor["sessions"]

    assert (await api.gql(IDENTIFY, userId="22", identity="bob"))["identify"]["merged"] is True
    await assert_survived(api, merged, survivor)
    # bob's session, extended by the event 22 sent 5 minutes after it, keeps its id.
    extended = await node(api, kept_session["id"])
    assert extended is not None and extended["eventCount"] == 3
    after = await snapshot(api, "21")
    assert len(after["events"]) == 4
    assert {e["id"] for e in after["events"]} >= {e["id"] for e in survivor["events"]}


async def test_heap_identify_keeps_ids(api: Api) -> None:
    for user_id, minutes in (("501", 600), ("502", 60)):
        response = await api.http.post(
            "/api/track",
            json={"app_id": "11", "user_id": user_id, "event": "Visit", "timestamp": at(minutes)},
        )
        assert response.status_code == 200, response.text
    first = await api.http.post(
        "/api/v1/identify", json={"app_id": "11", "user_id": "501", "identity": "frank"}
    )
    assert first.json()["merged"] is False
    survivor, merged = await snapshot(api, "501"), await snapshot(api, "502")
    second = await api.http.post(
        "/api/v1/identify", json={"app_id": "11", "user_id": "502", "identity": "frank"}
    )
    assert second.json()["merged"] is True
    await assert_survived(api, merged, survivor)


USERS = """{ users(first: 10) { edges { node { userId identity } } } }"""


async def test_segment_alias_keeps_ids(api: Api) -> None:
    async def segment(message: dict[str, Any]) -> None:
        response = await api.http.post(f"/v1/{message['type']}", json=message, auth=("dev-key", ""))
        assert response.status_code == 200, response.text

    await segment({"type": "track", "userId": "gus", "event": "Trial", "timestamp": at(100)})
    await segment(
        {"type": "track", "anonymousId": "phone", "event": "Opened", "timestamp": at(3000)}
    )
    listed = [e["node"] for e in (await api.gql(USERS))["users"]["edges"]]
    gus = next(u["userId"] for u in listed if u["identity"] == "gus")
    phone = next(u["userId"] for u in listed if u["identity"] is None)
    survivor, merged = await snapshot(api, gus), await snapshot(api, phone)
    await segment({"type": "alias", "previousId": "phone", "userId": "gus"})
    assert len((await snapshot(api, gus))["events"]) == 2
    await assert_survived(api, merged, survivor)


async def test_ids_of_a_deleted_user_answer_null(api: Api) -> None:
    await api.track_batch([visit("31", 50, "x")])
    before = await snapshot(api, "31")
    await api.gql('mutation { deleteUser(userId: "31") { deletedId } }')
    for id in [
        before["user"]["id"],
        *(s["id"] for s in before["sessions"]),
        *(e["id"] for e in before["events"]),
    ]:
        assert await node(api, id) is None
