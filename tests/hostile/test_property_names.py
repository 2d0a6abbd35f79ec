"""Issue 17 point 8 replayed on a production server: property names with `"`, `\\`, a tab, a
newline, `.`, `[0]`, `$` and `'`, sent as traits and event properties through the public
Segment write key. Every condition on such a name selects exactly the users SPEC §5a says, in
a users filter, a sessions filter, an event `where` and a saved segment; before, on SQLite the
positive operators matched nobody and the negative ones everybody, holders included."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.hostile.probing import Shop, open_shop

NAMES = ['say "hi"', "back\\slash", "tab\there", "new\nline", "a.b", "list[0]", "$.price", "it's"]
# Three users: HIT holds every name with its "hit" value, MISS with another value, NONE none.
HIT, MISS, NONE = "hit@names.test", "miss@names.test", "none@names.test"
EVENT = "Probed"


def _values(prefix: str) -> dict[str, str]:
    return {name: f"{prefix}-{index}" for index, name in enumerate(NAMES)}


HELD = {HIT: _values("hit"), MISS: _values("miss"), NONE: {}}


def _cases(index: int) -> list[tuple[str, Any, set[str]]]:
    """(op, value, who matches) for the name at `index`: each positive and its negation."""
    hit = f"hit-{index}"
    return [
        ("EQUALS", hit, {HIT}),
        ("NOT_EQUALS", hit, {MISS, NONE}),
        ("CONTAINS", hit.upper(), {HIT}),
        ("NOT_CONTAINS", hit.upper(), {MISS, NONE}),
        ("IN", [hit, "elsewhere"], {HIT}),
        ("NOT_IN", [hit, "elsewhere"], {MISS, NONE}),
        ("IS_SET", None, {HIT, MISS}),
        ("IS_NOT_SET", None, {NONE}),
    ]


USERS = """query($filter: UserFilter) {
  users(filter: $filter, first: 10) { edges { node { identity } } } }"""
SESSIONS = """query($filter: SessionFilter) {
  sessions(filter: $filter, first: 10) { edges { node { user { identity } } } } }"""
SEGMENT = """mutation($input: SegmentInput!) {
  createSegment(input: $input) { segment { id } errors { code field message } } }"""
SEEN = {"lastDays": 30}


@pytest.fixture
async def shop(database_url: str) -> AsyncIterator[Shop]:
    """A production server whose three users arrived through the Segment write key."""
    async with open_shop(database_url) as shop:
        batch = [
            message
            for identity, properties in HELD.items()
            for message in (
                {"type": "identify", "userId": identity, "traits": {"plan": "x", **properties}},
                {"type": "track", "userId": identity, "event": EVENT, "properties": properties},
            )
        ]
        sent = await shop.segment("batch", {"batch": batch})
        assert sent.status_code == 200, sent.text
        yield shop


async def _users(shop: Shop, user_filter: dict[str, Any]) -> set[str]:
    data = await shop.data("read", USERS, filter={"seen": SEEN, **user_filter})
    return {edge["node"]["identity"] for edge in data["users"]["edges"]}


async def _session_users(shop: Shop, session_filter: dict[str, Any]) -> set[str]:
    data = await shop.data("read", SESSIONS, filter={"includeServerOnly": True, **session_filter})
    return {edge["node"]["user"]["identity"] for edge in data["sessions"]["edges"]}


async def _segment_users(shop: Shop, where: list[dict[str, Any]]) -> set[str]:
    segment = {"name": repr(where), "filter": {"properties": where}}
    made = (await shop.data("admin", SEGMENT, input=segment))["createSegment"]
    assert made["errors"] == [], made["errors"]
    return await _users(shop, {"segmentId": made["segment"]["id"]})


PLACES: dict[str, Callable[[Shop, list[dict[str, Any]]], Awaitable[set[str]]]] = {
    "users filter": lambda shop, where: _users(shop, {"properties": where}),
    "users, event where": lambda shop, where: _users(
        shop, {"events": [{"event": {"type": EVENT, "where": where}}]}
    ),
    "sessions filter": lambda shop, where: _session_users(shop, {"userProperties": where}),
    "sessions, event where": lambda shop, where: _session_users(
        shop, {"event": {"type": EVENT, "where": where}}
    ),
    "segment": _segment_users,
}


@pytest.mark.parametrize("place", list(PLACES))
async def test_any_property_name_matches_exactly_its_holders(shop: Shop, place: str) -> None:
    wrong = []
    for index, name in enumerate(NAMES):
        for op, value, expected in _cases(index):
            where = [{"property": name, "op": op, **({} if value is None else {"value": value})}]
            found = await PLACES[place](shop, where)
            if found != expected:
                wrong.append((name, op, sorted(found), sorted(expected)))
    assert not wrong, wrong
