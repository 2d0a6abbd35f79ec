"""One condition, every place, the same users (SPEC §5a), through the GraphQL API.

Each user holds one value of every kind, as a user property and on two events. The same
condition then selects users as a users-filter property condition, as an event `where`,
through a definition created after the events (backfill) and one created before them
(live match at ingestion), through a saved segment, and on the Sessions page (user
properties and event `where`); all equal SPEC §5a's answer, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from services.conditions import PropertyCondition, predicate
from tests.support import Api

ABSENT = object()
VALUES: list[Any] = [
    ABSENT, "49", 49, " 49 ", 49.0, 50, 49.5, "049", "4.9e1", "abc", "", True, False, "true",
    "TRUE", 9007199254740992, 9007199254740993, "9007199254740993", 0.1, 1e20, "İSTANBUL",
    "i̇stanbul", "ΟΔΟΣ", "МОСКВА", "Éclair", "a*b", "50%_off",
]  # fmt: skip
SPECIAL = "we\"ird \\ name\twith\nall.[0]$'s"
CONDITIONS: list[tuple[str, str, Any]] = [
    ("amount", "LESS_THAN", 50),
    ("amount", "GREATER_OR_EQUAL", "49"),
    ("amount", "EQUALS", "49"),
    ("amount", "EQUALS", 49),
    ("amount", "NOT_EQUALS", 49),
    ("amount", "NOT_IN", [49]),
    ("amount", "IN", ["abc", 50, True]),
    ("amount", "EQUALS", True),
    ("amount", "EQUALS", 9007199254740992),
    ("amount", "EQUALS", 9007199254740993),
    ("amount", "CONTAINS", "i̇stanbul"),
    ("amount", "CONTAINS", "οδος"),
    ("amount", "NOT_CONTAINS", "москва"),
    ("amount", "STARTS_WITH", "4"),
    ("amount", "ENDS_WITH", "9"),
    ("amount", "MATCHES", "*%_*"),
    ("amount", "IS_SET", None),
    ("amount", "IS_NOT_SET", None),
    (SPECIAL, "EQUALS", 49),
    (SPECIAL, "NOT_EQUALS", "abc"),
    (SPECIAL, "CONTAINS", "ÉCLAIR"),
    (SPECIAL, "LESS_OR_EQUAL", 0.1),
    (SPECIAL, "IS_SET", None),
    (SPECIAL, "IS_NOT_SET", None),
]

USERS = """query($filter: UserFilter) {
  users(filter: $filter, first: 100) { edges { node { userId } } } }"""
DEFINE = """mutation($input: DefineEventInput!) {
  defineEvent(input: $input) { definition { id } errors { code field message } } }"""
SEGMENT = """mutation($input: SegmentInput!) {
  createSegment(input: $input) { segment { id } errors { code field message } } }"""
PROPERTIES = """mutation($users: [UserPropertiesInput!]!) {
  addUserPropertiesBatch(users: $users) { accepted errors { code message } } }"""
SESSIONS = """query($filter: SessionFilter) {
  sessions(filter: $filter, first: 100) { edges { node { user { userId } } } } }"""
SEEN = {"lastDays": 30}


def user_id(index: int) -> str:
    return str(70_000 + index)


def properties(value: Any) -> dict[str, Any]:
    return {} if value is ABSENT else {"amount": value, SPECIAL: value}


def events(kind: str) -> list[dict[str, Any]]:
    return [
        {"event": kind, "source": "SERVER", "userId": user_id(i), "properties": properties(v)}
        for i, v in enumerate(VALUES)
    ]


def condition_input(name: str, op: str, value: Any) -> dict[str, Any]:
    return {"property": name, "op": op, **({} if value is None else {"value": value})}


async def users(api: Api, user_filter: dict[str, Any]) -> set[str]:
    found = await api.gql(USERS, filter={"seen": SEEN, **user_filter})
    return {edge["node"]["userId"] for edge in found["users"]["edges"]}


async def session_users(api: Api, session_filter: dict[str, Any]) -> set[str]:
    found = await api.gql(SESSIONS, filter={"includeServerOnly": True, **session_filter})
    return {edge["node"]["user"]["userId"] for edge in found["sessions"]["edges"]}


async def created(api: Api, mutation: str, field: str, kind: str, **input: Any) -> str:
    result = (await api.gql(mutation, input=input))[field]
    assert result["errors"] == [], result["errors"]
    return str(result[kind]["id"])


async def test_a_condition_selects_the_same_users_everywhere(api: Api) -> None:
    assert (await api.track_batch(events("Purchase")))["errors"] == []
    updates = [{"userId": user_id(i), "properties": properties(v)} for i, v in enumerate(VALUES)]
    updates = [u for u in updates if u["properties"]]
    assert (await api.gql(PROPERTIES, users=updates))["addUserPropertiesBatch"]["errors"] == []
    definitions: dict[int, tuple[str, str]] = {}
    for index, (name, op, value) in enumerate(CONDITIONS):
        where = [condition_input(name, op, value)]
        stored = await created(
            api, DEFINE, "defineEvent", "definition",
            name=f"stored {index}", criteria=[{"type": "Purchase", "properties": where}],
        )  # fmt: skip
        live = await created(
            api, DEFINE, "defineEvent", "definition",
            name=f"live {index}", criteria=[{"type": "Later", "properties": where}],
        )  # fmt: skip
        definitions[index] = (stored, live)
    assert (await api.track_batch(events("Later")))["errors"] == []

    for index, (name, op, value) in enumerate(CONDITIONS):
        condition = PropertyCondition(name, op, value)
        test = predicate(condition)
        expected = {user_id(i) for i, v in enumerate(VALUES) if test(properties(v))}
        where = [condition_input(name, op, value)]
        segment = await created(
            api, SEGMENT, "createSegment", "segment",
            name=f"segment {index}", filter={"properties": where},
        )  # fmt: skip
        stored, live = definitions[index]
        answers = {
            "users filter": await users(api, {"properties": where}),
            "event where": await users(
                api, {"events": [{"event": {"type": "Purchase", "where": where}}]}
            ),
            "definition, backfill": await users(
                api, {"events": [{"event": {"definitionId": stored}}]}
            ),
            "definition, live": await users(api, {"events": [{"event": {"definitionId": live}}]}),
            "segment": await users(api, {"segmentId": segment}),
            "sessions filter": await session_users(api, {"userProperties": where}),
            "sessions, event where": await session_users(
                api, {"event": {"type": "Purchase", "where": where}}
            ),
        }
        for place, found in answers.items():
            assert sorted(found) == sorted(expected), (place, name, op, value)
