"""mergeUsers: a merge by hand gives what a merge by identify gives (SPEC §1), and is idempotent.

The same events are stored twice under different userIds: one copy is merged by identify,
the other by mergeUsers; both must equal the sessions, rage clicks and definition matches
worked out by hand below, and each other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services import environments, ids, keys
from tests.conftest import start_server
from tests.support import Api

NOW = datetime.now(UTC).replace(microsecond=0)
T = NOW - timedelta(hours=5)
BUY = "@body;|@div;#checkout;.panel;|@button;.btn;.buy;|"
MERGE = """mutation($into: ID!, $from: ID!) { mergeUsers(into: $into, from: $from) {
  merged user { id userId identity } errors { code field message } } }"""
IDENTIFY = """mutation($userId: String!, $identity: String!) {
  identify(input: {userId: $userId, identity: $identity}) { merged errors { code } } }"""
DEFINE = """mutation($input: DefineEventInput!) {
  defineEvent(input: $input) { definition { id eventCount } errors { code } } }"""
TIMELINE = """query($userId: String, $identity: String) {
  user(userId: $userId, identity: $identity) {
    userId identity sessionCount eventCount firstSeen lastSeen properties
    sessions(first: 50) { edges { node { origin source startTime endTime eventCount hasRageClick
      events(first: 100) { edges { node { type time source properties isRageClick
        definition { name } } } } } } } } }"""


def at(delta: timedelta) -> str:
    return (T + delta).isoformat()


def web(user: str, delta: timedelta, event: str = "pageview", **properties: Any) -> dict:
    return {
        "event": event,
        "userId": user,
        "source": "WEB",
        "timestamp": at(delta),
        "properties": properties,
    }


def scenario(anonymous: str, known: str) -> list[dict[str, Any]]:
    """Two users' events, which only together make a rage click and join a server event to
    a web session."""
    s = timedelta(seconds=1)
    click = {"hierarchy": BUY, "target_text": "Buy", "path": "/checkout"}
    return [
        web(known, 0 * s, path="/"),
        web(known, 10 * s, "click", **click),
        web(known, 10.5 * s, "click", **click),
        # Server-only while the known user has no web session then.
        {
            "event": "Invoice Paid",
            "userId": known,
            "timestamp": at(timedelta(hours=2, minutes=10)),
            "properties": {"amount": 49},
        },
        web(anonymous, 10.8 * s, "click", **click),
        web(anonymous, timedelta(minutes=5), path="/pricing"),
        web(anonymous, timedelta(hours=2), path="/docs"),
    ]


async def load(api: Api, anonymous: str, known: str, identity: str) -> None:
    assert (await api.track_batch(scenario(anonymous, known)))["errors"] == []
    done = await api.gql(IDENTIFY, userId=known, identity=identity)
    assert done["identify"] == {"merged": False, "errors": []}


def shape(user: dict[str, Any]) -> dict[str, Any]:
    """A user's timeline without what names the user."""
    return {
        "counts": (user["sessionCount"], user["eventCount"], user["firstSeen"], user["lastSeen"]),
        "sessions": [
            (
                s["node"]["origin"],
                s["node"]["source"],
                s["node"]["startTime"],
                s["node"]["endTime"],
                s["node"]["eventCount"],
                s["node"]["hasRageClick"],
                [
                    (
                        e["node"]["type"],
                        e["node"]["time"],
                        e["node"]["isRageClick"],
                        (e["node"]["definition"] or {}).get("name"),
                    )
                    for e in s["node"]["events"]["edges"]
                ],
            )
            for s in user["sessions"]["edges"]
        ],
    }


def expected_shape() -> dict[str, Any]:
    """Worked out by hand from `scenario` (SPEC §2, §3): web sessions time out after 30
    minutes; the server event at +2h10 falls in the +2h web session's active window; the
    three clicks within 0.8 s on one element are a rage click; each matches 'Clicked Buy'."""

    def time(delta: timedelta) -> str:
        return (T + delta).isoformat().replace("+00:00", "Z")

    s = timedelta(seconds=1)
    clicks = [("click", time(d * s), True, "Clicked Buy") for d in (10, 10.5, 10.8)]
    first = [("pageview", time(0 * s), False, None), *clicks]
    first.append(("pageview", time(timedelta(minutes=5)), False, None))
    second = [
        ("pageview", time(timedelta(hours=2)), False, None),
        ("Invoice Paid", time(timedelta(hours=2, minutes=10)), False, None),
    ]
    return {
        "first_seen": time(0 * s),
        "last_seen": time(timedelta(hours=2, minutes=10)),
        "sessions": [first, second],
    }


def assert_expected(user: dict[str, Any]) -> None:
    want = expected_shape()
    got = shape(user)
    sessions = sorted(got["sessions"], key=lambda s: s[2])
    assert [[e[0] for e in s[6]] for s in sessions] == [[e[0] for e in s] for s in want["sessions"]]
    assert [s[0] for s in sessions] == ["CLIENT", "CLIENT"]
    assert [s[4] for s in sessions] == [5, 2]
    assert [s[5] for s in sessions] == [True, False]
    assert [[(e[2], e[3]) for e in s[6]] for s in sessions] == [
        [(e[2], e[3]) for e in s] for s in want["sessions"]
    ]
    assert user["sessionCount"] == 2 and user["eventCount"] == 7


async def timeline(api: Api, **who: str) -> dict[str, Any]:
    return (await api.gql(TIMELINE, **who))["user"]


async def define_buy(api: Api) -> None:
    made = await api.gql(
        DEFINE, input={"name": "Clicked Buy", "criteria": [{"type": "click", "selector": ".buy"}]}
    )
    assert made["defineEvent"]["errors"] == []


async def test_merge_users_equals_a_merge_by_identify(api: Api) -> None:
    await define_buy(api)
    await load(api, "1001", "1002", "bob")
    await load(api, "2001", "2002", "ann")

    by_identify = await api.gql(IDENTIFY, userId="1001", identity="bob")
    assert by_identify["identify"] == {"merged": True, "errors": []}
    by_hand = (await api.gql(MERGE, into="2002", **{"from": "2001"}))["mergeUsers"]
    assert by_hand["errors"] == [] and by_hand["merged"] is True
    assert by_hand["user"]["userId"] == "2002" and by_hand["user"]["identity"] == "ann"

    bob, ann = await timeline(api, userId="1002"), await timeline(api, userId="2002")
    assert_expected(bob)
    assert_expected(ann)
    assert shape(bob) == shape(ann)
    assert bob["properties"].keys() == ann["properties"].keys()
    # Definition matches: six clicks in all (three per copy), none lost by either merge.
    counts = await api.gql("{ eventDefinitions { name eventCount } }")
    assert counts["eventDefinitions"] == [{"name": "Clicked Buy", "eventCount": 6}]

    # The merged userId routes to the survivor, as after identify.
    assert (await timeline(api, userId="2001"))["userId"] == "2002"
    old = await api.gql(
        "query($id: ID!) { node(id: $id) { ... on User { userId } } }",
        id=ids.encode("User", 2001),
    )
    assert old["node"] == {"userId": "2002"}
    # Events sent later with the merged userId land on the survivor.
    assert (await api.track_batch([web("2001", timedelta(hours=2, minutes=20))]))["errors"] == []
    assert (await timeline(api, userId="2002"))["eventCount"] == 8


async def test_merging_again_answers_the_survivor(api: Api) -> None:
    await load(api, "3001", "3002", "cy")
    first = (await api.gql(MERGE, into=ids.encode("User", 3002), **{"from": "3001"}))["mergeUsers"]
    assert first["merged"] is True and first["errors"] == []
    before = shape(await timeline(api, userId="3002"))
    for into, source in (("3002", "3001"), ("3001", "3002"), (ids.encode("User", 3002), "3001")):
        again = (await api.gql(MERGE, into=into, **{"from": source}))["mergeUsers"]
        assert again == {
            "merged": False,
            "user": {"id": ids.encode("User", 3002), "userId": "3002", "identity": "cy"},
            "errors": [],
        }
    assert shape(await timeline(api, userId="3002")) == before


async def test_an_identified_user_merged_into_an_anonymous_one_gives_it_its_identity(
    api: Api,
) -> None:
    # The admin keeps the anonymous user's userId; the identity moves with the merge.
    await define_buy(api)
    await load(api, "4001", "4002", "dan")
    done = (await api.gql(MERGE, into="4001", **{"from": "4002"}))["mergeUsers"]
    assert done["errors"] == [] and done["user"]["identity"] == "dan"
    dan = await timeline(api, identity="dan")
    assert dan["userId"] == "4001"
    assert_expected(dan)
    sent = {"event": "Renewed", "identity": "dan", "timestamp": at(timedelta(hours=3))}
    assert (await api.track_batch([sent]))["errors"] == []
    assert (await timeline(api, userId="4001"))["eventCount"] == 8


async def test_refusals_change_nothing(api: Api) -> None:
    await load(api, "5001", "5002", "eve")
    assert (await api.track_batch([web("6002", timedelta(minutes=1))]))["errors"] == []
    assert (await api.gql(IDENTIFY, userId="6002", identity="fay"))["identify"]["errors"] == []
    before = {u: shape(await timeline(api, userId=u)) for u in ("5001", "5002", "6002")}

    async def refused(into: str, source: str) -> dict[str, Any]:
        done = (await api.gql(MERGE, into=into, **{"from": source}))["mergeUsers"]
        assert done["merged"] is False and done["user"] is None
        (error,) = done["errors"]
        return {"code": error["code"], "field": error["field"]}

    assert await refused("5001", "5001") == {"code": "SAME_USER", "field": "from"}
    assert await refused(ids.encode("User", 5001), "5001") == {"code": "SAME_USER", "field": "from"}
    assert await refused("5001", "999999") == {"code": "UNKNOWN_USER", "field": "from"}
    assert await refused("999999", "5001") == {"code": "UNKNOWN_USER", "field": "into"}
    assert await refused("5001", "not-an-id") == {"code": "INVALID_USER_ID", "field": "from"}
    # Two identified users are never merged (SPEC §1: ALREADY_IDENTIFIED).
    assert await refused("5002", "6002") == {"code": "ALREADY_IDENTIFIED", "field": "from"}
    assert {u: shape(await timeline(api, userId=u)) for u in before} == before


async def test_merge_users_needs_an_admin_key(database_url: str) -> None:
    running, server, task = await start_server(database_url, dev=False)
    try:
        await environments.ensure(running.db, name="main")
        made = {
            scope: (await keys.create(running.db, environment="main", scope=scope))[1]
            for scope in keys.SCOPES
        }
        operation = {"query": MERGE, "variables": {"into": "1", "from": "2"}}
        async with httpx.AsyncClient(base_url=running.url, timeout=60) as http:
            for scope in ("read", "ingest"):
                answer = await http.post(
                    "/graphql",
                    json=operation,
                    headers={"authorization": f"Bearer {made[scope]}"},
                )
                (error,) = answer.json()["errors"]
                assert error["extensions"]["code"] == "FORBIDDEN"
                assert error["extensions"]["requiredScope"] == "admin"
            answer = await http.post(
                "/graphql", json=operation, headers={"authorization": f"Bearer {made['admin']}"}
            )
            body = answer.json()
            assert "errors" not in body
            assert body["data"]["mergeUsers"]["errors"][0]["code"] == "UNKNOWN_USER"
    finally:
        server.should_exit = True
        await task
