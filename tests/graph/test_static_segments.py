"""Static segments: a fixed list of users, usable wherever a segment is, kept through merges.

Expectations are the userIds each step should leave, written out by hand from the events
the test sends.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from services import ids, segment_members, static_segments
from tests.graph.test_users_list import list_all
from tests.support import Api

NOW = datetime.now(UTC).replace(microsecond=0)
SEGMENT = "segment { id name kind filter memberCount userCount }"
CREATE_STATIC = f"""mutation($input: StaticSegmentInput!) {{
  createStaticSegment(input: $input) {{ {SEGMENT} errors {{ index code field message }} }} }}"""
CREATE = f"""mutation($input: SegmentInput!) {{
  createSegment(input: $input) {{ {SEGMENT} errors {{ code field message }} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: SegmentInput!) {{
  updateSegment(id: $id, input: $input) {{ {SEGMENT} errors {{ code field message }} }} }}"""
ADD = f"""mutation($id: ID!, $users: [ID!]!) {{
  addSegmentMembers(id: $id, userIds: $users) {{ {SEGMENT} errors {{ index code field }} }} }}"""
REMOVE = f"""mutation($id: ID!, $users: [ID!]!) {{
  removeSegmentMembers(id: $id, userIds: $users) {{ {SEGMENT} errors {{ index code field }} }} }}"""
SEGMENTS = "{ segments { name kind memberCount } }"
IDENTIFY = """mutation($userId: String!, $identity: String!) {
  identify(input: {userId: $userId, identity: $identity}) { merged errors { code } } }"""
MERGE = """mutation($into: ID!, $from: ID!) { mergeUsers(into: $into, from: $from) {
  merged errors { code } } }"""
SIGNUP = {"events": [{"event": {"type": "Signup"}}]}


def event(user: str, kind: str, ago: timedelta) -> dict[str, Any]:
    return {"event": kind, "userId": user, "timestamp": (NOW - ago).isoformat()}


async def send(api: Api, *events: dict[str, Any]) -> None:
    assert (await api.track_batch(list(events)))["errors"] == []


async def create_static(api: Api, **input: Any) -> dict[str, Any]:
    done = (await api.gql(CREATE_STATIC, input=input))["createStaticSegment"]
    assert done["errors"] == [], done["errors"]
    return done["segment"]


async def members(api: Api, segment: dict[str, Any], **extra: Any) -> set[str]:
    """The users a users list shows for `{segmentId}` (seen in the last 30 days by default
    here, so that listed users last seen a week ago show too)."""
    return set(await list_all(api, {"seen": {"lastDays": 30}, "segmentId": segment["id"], **extra}))


async def test_a_snapshot_keeps_its_members_while_new_users_match(api: Api) -> None:
    hour, fortnight = timedelta(hours=1), timedelta(days=14)
    await send(
        api,
        *(event(u, "Signup", hour) for u in ("101", "102", "103")),
        event("104", "Visit", hour),
        event("105", "Signup", fortnight),  # outside the filter's default 7 days
    )
    snapshot = await create_static(api, name="Launch signups", filter=SIGNUP)
    dynamic = (await api.gql(CREATE, input={"name": "Signups", "filter": SIGNUP}))["createSegment"]
    assert snapshot["kind"] == "STATIC" and snapshot["filter"] == {}
    assert snapshot["memberCount"] == snapshot["userCount"] == 3
    assert dynamic["segment"]["kind"] == "DYNAMIC" and dynamic["segment"]["memberCount"] is None

    # New users who match the filter join the dynamic segment, not the snapshot.
    await send(api, event("104", "Signup", hour), event("106", "Signup", hour))
    assert await members(api, snapshot) == {"101", "102", "103"}
    assert await members(api, dynamic["segment"]) == {"101", "102", "103", "104", "106"}
    listed = {s["name"]: s for s in (await api.gql(SEGMENTS))["segments"]}
    assert listed["Launch signups"] == {
        "name": "Launch signups",
        "kind": "STATIC",
        "memberCount": 3,
    }
    # ANDed with the rest of a users filter, and inside anyOf.
    narrowed = {"properties": [{"property": "userId", "op": "IN", "value": ["101", "104"]}]}
    assert await members(api, snapshot, **narrowed) == {"101"}
    either = {"anyOf": [{"segmentId": snapshot["id"]}, {"events": [{"event": {"type": "Visit"}}]}]}
    assert set(await list_all(api, either)) == {"101", "102", "103", "104"}


async def test_from_ids_then_add_and_remove(api: Api) -> None:
    day, old = timedelta(days=1), timedelta(days=10)
    await send(api, *(event(u, "Visit", day) for u in ("201", "202", "203", "204")))
    await send(api, event("205", "Visit", old))
    segment = await create_static(
        api,
        name="Beta testers",
        description="Hand-picked",
        userIds=[ids.encode("User", 201), "202", "202", ids.encode("User", 202), "205"],
    )
    assert segment["memberCount"] == segment["userCount"] == 3
    # The users list keeps its default seen range (7 days): 205 was last seen 10 days ago.
    assert set(await list_all(api, {"segmentId": segment["id"]})) == {"201", "202"}
    assert await members(api, segment) == {"201", "202", "205"}

    added = (await api.gql(ADD, id=segment["id"], users=["203", "201"]))["addSegmentMembers"]
    assert added["errors"] == [] and added["segment"]["memberCount"] == 4
    again = (await api.gql(ADD, id=segment["id"], users=["203"]))["addSegmentMembers"]
    assert again["errors"] == [] and again["segment"]["memberCount"] == 4
    removed = (await api.gql(REMOVE, id=segment["id"], users=["201", "204"]))[
        "removeSegmentMembers"
    ]
    assert removed["errors"] == [] and removed["segment"]["memberCount"] == 3
    assert await members(api, segment) == {"202", "203", "205"}

    renamed = (
        await api.gql(UPDATE, id=segment["id"], input={"name": "Beta (closed)", "filter": {}})
    )["updateSegment"]
    assert renamed["errors"] == [] and renamed["segment"]["memberCount"] == 3


async def test_unknown_and_unreadable_ids_are_refused_each_at_its_index(api: Api) -> None:
    await send(api, event("301", "Visit", timedelta(hours=2)))

    async def refused(**input: Any) -> list[dict[str, Any]]:
        done = (await api.gql(CREATE_STATIC, input=input))["createStaticSegment"]
        assert done["segment"] is None
        return [{k: e[k] for k in ("index", "code", "field")} for e in done["errors"]]

    assert await refused(name="X", userIds=["301", "777777", ids.encode("User", 888888)]) == [
        {"index": 1, "code": "UNKNOWN_USER", "field": "input.userIds[1]"},
        {"index": 2, "code": "UNKNOWN_USER", "field": "input.userIds[2]"},
    ]
    assert await refused(name="X", userIds=["301", "bob", ids.encode("Segment", 1)]) == [
        {"index": 1, "code": "INVALID_USER_ID", "field": "input.userIds[1]"},
        {"index": 2, "code": "INVALID_USER_ID", "field": "input.userIds[2]"},
    ]
    assert await refused(name="X", userIds=[str(n) for n in range(1001)]) == [
        {"index": None, "code": "TOO_MANY_IDS", "field": "input.userIds"}
    ]
    assert await refused(name="X") == [
        {"index": None, "code": "MISSING_MEMBERS", "field": "input.userIds"}
    ]
    assert (await api.gql(SEGMENTS))["segments"] == []  # nothing was saved

    segment = await create_static(api, name="Y", userIds=["301"])
    add = (await api.gql(ADD, id=segment["id"], users=["301", "999"]))["addSegmentMembers"]
    assert add["errors"] == [{"index": 1, "code": "UNKNOWN_USER", "field": "userIds[1]"}]
    dynamic = (await api.gql(CREATE, input={"name": "D", "filter": {}}))["createSegment"]
    not_static = await api.gql(ADD, id=dynamic["segment"]["id"], users=["301"])
    assert not_static["addSegmentMembers"]["errors"][0]["code"] == "NOT_STATIC"
    with_filter = await api.gql(UPDATE, id=segment["id"], input={"name": "Y", "filter": SIGNUP})
    assert with_filter["updateSegment"]["errors"][0]["code"] == "STATIC_SEGMENT"


async def test_member_limit(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # The limit, lowered: the server runs in this process.
    monkeypatch.setattr(segment_members, "MAX_STATIC_SEGMENT_MEMBERS", 2)
    monkeypatch.setattr(static_segments, "MAX_STATIC_SEGMENT_MEMBERS", 2)
    await send(api, *(event(u, "Signup", timedelta(hours=1)) for u in ("401", "402", "403")))
    too_many = await api.gql(CREATE_STATIC, input={"name": "All", "filter": SIGNUP})
    assert too_many["createStaticSegment"]["errors"][0]["code"] == "TOO_MANY_MEMBERS"
    segment = await create_static(api, name="Two", userIds=["401", "402"])
    add = (await api.gql(ADD, id=segment["id"], users=["403"]))["addSegmentMembers"]
    assert [e["code"] for e in add["errors"]] == ["TOO_MANY_MEMBERS"]
    assert (await members(api, segment)) == {"401", "402"}


async def test_nested_in_a_dynamic_segment_and_exported(api: Api) -> None:
    hour = timedelta(hours=1)
    await send(
        api,
        *(event(u, "Visit", hour) for u in ("501", "502", "503", "504")),
        event("502", "Purchase", hour),
        event("504", "Purchase", hour),
    )
    vip = await create_static(api, name="VIP", userIds=["501", "502", "503"])
    buyers = (
        await api.gql(
            CREATE,
            input={
                "name": "VIP buyers",
                "filter": {"segmentId": vip["id"], "events": [{"event": {"type": "Purchase"}}]},
            },
        )
    )["createSegment"]
    assert buyers["errors"] == [] and buyers["segment"]["userCount"] == 1
    assert await members(api, buyers["segment"]) == {"502"}

    for filter, expected in (
        ({"segmentId": vip["id"]}, {"501", "502", "503"}),
        ({"segmentId": buyers["segment"]["id"]}, {"502"}),
    ):
        response = await api.http.get(f"/export/users.ndjson?filter={quote(json.dumps(filter))}")
        assert response.status_code == 200, response.text
        *rows, end = [json.loads(line) for line in response.text.splitlines()]
        assert {row["userId"] for row in rows} == expected
        assert end == {"rowCount": len(expected)}
    # A static segment that a dynamic one names cannot be deleted, as any named segment.
    gone = await api.gql(
        "mutation($id: ID!) { deleteSegment(id: $id) { errors { code } } }", id=vip["id"]
    )
    assert gone["deleteSegment"]["errors"] == [{"code": "SEGMENT_IN_USE"}]


async def test_memberships_follow_merges_and_deletions(api: Api) -> None:
    hour = timedelta(hours=1)
    await send(
        api, *(event(u, "Visit", hour) for u in ("601", "602", "603", "611", "612", "621", "622"))
    )
    for user, who in (("602", "carol"), ("612", "dave")):
        assert (await api.gql(IDENTIFY, userId=user, identity=who))["identify"]["errors"] == []
    segment = await create_static(api, name="Listed", userIds=["601", "603", "611", "612", "621"])

    # By identify: 601 (listed) merges into 602 (not listed): 602 is listed now.
    assert (await api.gql(IDENTIFY, userId="601", identity="carol"))["identify"]["merged"]
    # Both listed: the survivor is listed once.
    assert (await api.gql(IDENTIFY, userId="611", identity="dave"))["identify"]["merged"]
    # By hand: 621 (listed) into 622.
    by_hand = await api.gql(MERGE, into="622", **{"from": "621"})
    assert by_hand["mergeUsers"] == {"merged": True, "errors": []}
    assert await members(api, segment) == {"602", "603", "612", "622"}
    # The merged userIds route to their survivors when sent again.
    again = await api.gql(ADD, id=segment["id"], users=["601", "611", "621"])
    assert again["addSegmentMembers"]["segment"]["memberCount"] == 4

    deleted = await api.gql('mutation { deleteUser(userId: "603") { errors { code } } }')
    assert deleted["deleteUser"]["errors"] == []
    assert await members(api, segment) == {"602", "612", "622"}
    listed = (await api.gql(SEGMENTS))["segments"]
    assert listed == [{"name": "Listed", "kind": "STATIC", "memberCount": 3}]
