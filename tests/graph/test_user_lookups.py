"""Root `user(...)` and `node(id:)` look-ups are batched: one load per request, whatever
their number (graph/loaders.users_by_key), merges followed through aliases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import RunningServer
from tests.support import Api

NOW = datetime.now(UTC).replace(microsecond=0)
NESTED = """displayName userId identity sessionCount properties
  sessions(first: 3) { edges { node { id events(first: 5) { edges { node { id type } } } } } }"""


def visit(user: int, minutes_ago: float) -> dict:
    return {
        "event": "pageview",
        "userId": str(user),
        "source": "WEB",
        "timestamp": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
    }


async def seed(api: Api, users: int) -> None:
    events = [visit(u, 60 * 24 * s + u) for u in range(1, users + 1) for s in range(2)]
    assert (await api.track_batch(events))["errors"] == []
    identify = """mutation($u: String!, $i: String!) {
      identify(input: {userId: $u, identity: $i}) { errors { code } } }"""
    for u in range(1, users + 1, 2):  # every other user identified
        assert (await api.gql(identify, u=str(u), i=f"person{u}@example.com"))["identify"][
            "errors"
        ] == []


def by_user_id(n: int) -> str:
    return " ".join(f'u{i}: user(userId: "{i}") {{ {NESTED} }}' for i in range(1, n + 1))


def by_identity(n: int) -> str:
    return " ".join(
        f'u{i}: user(identity: "person{i}@example.com") {{ {NESTED} }}'
        for i in range(1, 2 * n + 1, 2)
    )


def mixed(n: int) -> str:
    return " ".join(
        f'u{i}: user(userId: "{i}") {{ {NESTED} }}'
        if i % 2 == 0
        else f'u{i}: user(identity: "person{i}@example.com") {{ {NESTED} }}'
        for i in range(1, n + 1)
    )


@pytest.mark.parametrize("shape", [by_user_id, by_identity, mixed])
async def test_statement_count_of_aliased_user_fields_does_not_grow(
    api: Api, server: RunningServer, shape: object
) -> None:
    await seed(api, 50)
    counts = {}
    for n in (5, 25):
        before = server.db.statement_count
        data = await api.gql("{ " + shape(n) + " }")  # type: ignore[operator]
        counts[n] = server.db.statement_count - before
        assert len(data) == n and all(u is not None for u in data.values()), data
        assert all(len(u["sessions"]["edges"]) == 2 for u in data.values())
        assert all(
            len(s["node"]["events"]["edges"]) == 1
            for u in data.values()
            for s in u["sessions"]["edges"]
        )
    assert counts[5] == counts[25], counts
    assert counts[5] <= 5, counts


async def test_node_look_ups_are_batched_too(api: Api, server: RunningServer) -> None:
    await seed(api, 30)
    listed = await api.gql("{ " + by_user_id(25) + " }")
    user_ids = [
        u["sessions"]["edges"][0]["node"]["events"]["edges"][0]["node"]["id"]
        for u in listed.values()
    ]
    counts = {}
    for n in (5, 25):
        query = " ".join(
            f'n{i}: node(id: "{id}") {{ id ... on Event {{ type }} }}'
            for i, id in enumerate(user_ids[:n])
        )
        before = server.db.statement_count
        data = await api.gql("{ " + query + " }")
        counts[n] = server.db.statement_count - before
        assert all(v is not None for v in data.values())
    assert counts[5] == counts[25], counts


async def test_look_ups_follow_merges_and_answer_null_for_nobody(api: Api) -> None:
    await seed(api, 4)
    merge = """mutation { identify(input: {userId: "2", identity: "person1@example.com"}) {
      merged } }"""
    assert (await api.gql(merge))["identify"]["merged"] is True
    data = await api.gql(
        """{ merged: user(userId: "2") { userId identity }
             survivor: user(userId: "1") { userId identity }
             byIdentity: user(identity: "person1@example.com") { userId }
             nobody: user(userId: "999") { userId }
             unknown: user(identity: "nobody@example.com") { userId } }"""
    )
    assert data == {
        "merged": {"userId": "1", "identity": "person1@example.com"},
        "survivor": {"userId": "1", "identity": "person1@example.com"},
        "byIdentity": {"userId": "1"},
        "nobody": None,
        "unknown": None,
    }


@pytest.mark.parametrize(
    ("arguments", "field", "code"),
    [
        ('userId: "x"', "userId", "INVALID_USER_ID"),
        ('userId: "9007199254740992"', "userId", "INVALID_USER_ID"),
        ('userId: "1", identity: "a"', "userId", "BAD_USER_INPUT"),
        ("", "userId", "BAD_USER_INPUT"),
    ],
)
async def test_bad_look_ups_name_the_argument(
    api: Api, arguments: str, field: str, code: str
) -> None:
    called = f"user({arguments})" if arguments else "user"
    body = await api.raw(f'{{ ok: user(userId: "1") {{ userId }} bad: {called} {{ userId }} }}')
    (error,) = body["errors"]
    assert (error["extensions"]["field"], error["extensions"]["code"]) == (field, code)
    assert error["path"] == ["bad"]
