"""Segments (saved filters) and the searchable property list of a user's profile."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services import environments, ids, segments
from services.conditions import PropertyCondition
from services.filters import UserFilter
from tests import population
from tests.conftest import RunningServer
from tests.graph.test_users_list import list_all
from tests.population import PUser, holds
from tests.support import Api

NOW = datetime.now(UTC).replace(microsecond=0)
CREATE = """mutation($input: SegmentInput!) {
  createSegment(input: $input) {
    segment { id name userCount filter } errors { code field message } } }"""
UPDATE = """mutation($id: ID!, $input: SegmentInput!) {
  updateSegment(id: $id, input: $input) {
    segment { id userCount } errors { code field message } } }"""
DELETE = """mutation($id: ID!) { deleteSegment(id: $id) { deletedId errors { code message } } }"""
MONTH = {"lastDays": 30}


@pytest.fixture(scope="module")
async def loaded(module_server: RunningServer) -> AsyncIterator[tuple[Api, list[PUser], Any]]:
    users = population.build(seed=23, count=150, now=NOW)
    async with Api(module_server.url) as api:
        await population.load(api, users)
        yield api, users, module_server


def ids_of(users: list[PUser]) -> set[str]:
    return {str(u.user_id) for u in users}


async def create(api: Api, name: str, filter: dict[str, Any]) -> dict[str, Any]:
    result = (await api.gql(CREATE, input={"name": name, "filter": filter}))["createSegment"]
    assert result["errors"] == [], result["errors"]
    return result["segment"]


async def test_segment_members_and_count(loaded: tuple) -> None:
    api, users, _ = loaded
    pro = await create(
        api,
        "Pro buyers",
        {
            "seen": MONTH,
            "properties": [{"property": "plan", "op": "EQUALS", "value": "pro"}],
            "events": [{"event": {"type": "Invoice Paid"}}],
        },
    )
    expected = ids_of(
        [
            u
            for u in users
            if holds(u.all_properties(), "plan", "EQUALS", "pro")
            and any(e.type == "Invoice Paid" for e in u.events)
        ]
    )
    assert pro["userCount"] == len(expected) > 0
    assert set(await list_all(api, {"seen": MONTH, "segmentId": pro["id"]})) == expected
    # ANDed with the rest of the filter
    narrowed = await list_all(
        api,
        {
            "seen": MONTH,
            "segmentId": pro["id"],
            "properties": [{"property": "seats", "op": "GREATER_THAN", "value": 5}],
        },
    )
    assert set(narrowed) == {
        u
        for u in expected
        if holds(
            next(p for p in users if str(p.user_id) == u).all_properties(),
            "seats",
            "GREATER_THAN",
            5,
        )
    }
    assert pro["filter"]["properties"] == [{"property": "plan", "op": "EQUALS", "value": "pro"}]


async def test_editing_a_segment_changes_its_members(loaded: tuple) -> None:
    api, users, _ = loaded
    segment = await create(
        api,
        "Companies",
        {"seen": MONTH, "properties": [{"property": "company", "op": "CONTAINS", "value": "acme"}]},
    )
    changed = (
        await api.gql(
            UPDATE,
            id=segment["id"],
            input={
                "name": "Companies",
                "filter": {
                    "seen": MONTH,
                    "properties": [{"property": "company", "op": "EQUALS", "value": "Globex"}],
                },
            },
        )
    )["updateSegment"]
    assert changed["errors"] == []
    expected = ids_of([u for u in users if u.properties.get("company") == "Globex"])
    assert changed["segment"]["userCount"] == len(expected)
    assert set(await list_all(api, {"seen": MONTH, "segmentId": segment["id"]})) == expected


async def test_new_events_move_users_into_a_segment_without_recomputation(loaded: tuple) -> None:
    api, users, _ = loaded
    segment = await create(api, "Refunded", {"events": [{"event": {"type": "Refund Issued"}}]})
    assert segment["userCount"] == 0
    someone = users[3]
    await api.track_batch(
        [
            {
                "event": "Refund Issued",
                "userId": str(someone.user_id),
                "timestamp": (NOW - timedelta(minutes=1)).isoformat(),
            }
        ]
    )
    assert set(await list_all(api, {"segmentId": segment["id"]})) == {str(someone.user_id)}
    others = await create(
        api,
        "Never refunded",
        {"seen": MONTH, "events": [{"event": {"type": "Refund Issued"}, "did": False}]},
    )
    assert others["userCount"] == len(users) - 1


async def test_segments_of_segments_and_cycles(loaded: tuple) -> None:
    api, users, _ = loaded
    base = await create(
        api, "Has plan", {"seen": MONTH, "properties": [{"property": "plan", "op": "IS_SET"}]}
    )
    outer = await create(
        api,
        "Has plan and beta",
        {
            "seen": MONTH,
            "segmentId": base["id"],
            "properties": [{"property": "beta", "op": "EQUALS", "value": True}],
        },
    )
    expected = ids_of(
        [u for u in users if "plan" in u.properties and u.properties.get("beta") is True]
    )
    assert outer["userCount"] == len(expected)
    cycle = (
        await api.gql(
            UPDATE, id=base["id"], input={"name": "Has plan", "filter": {"segmentId": outer["id"]}}
        )
    )["updateSegment"]
    assert [e["code"] for e in cycle["errors"]] == ["SEGMENT_CYCLE"]
    itself = (
        await api.gql(
            UPDATE,
            id=base["id"],
            input={"name": "Has plan", "filter": {"anyOf": [{"segmentId": base["id"]}]}},
        )
    )["updateSegment"]
    assert [e["code"] for e in itself["errors"]] == ["SEGMENT_CYCLE"]
    in_use = (await api.gql(DELETE, id=base["id"]))["deleteSegment"]
    assert [e["code"] for e in in_use["errors"]] == ["SEGMENT_IN_USE"]
    assert "Has plan and beta" in in_use["errors"][0]["message"]
    assert (await api.gql(DELETE, id=outer["id"]))["deleteSegment"]["errors"] == []
    assert (await api.gql(DELETE, id=base["id"]))["deleteSegment"]["errors"] == []


async def test_refusals(loaded: tuple) -> None:
    api, _, server = loaded
    await create(api, "Unique", {"seen": MONTH})
    taken = (await api.gql(CREATE, input={"name": "unique", "filter": {}}))["createSegment"]
    assert [e["code"] for e in taken["errors"]] == ["NAME_TAKEN"]
    unknown = ids.encode("Segment", 999_999)
    missing = await api.gql(CREATE, input={"name": "x", "filter": {"segmentId": unknown}})
    assert [e["code"] for e in missing["createSegment"]["errors"]] == ["UNKNOWN_SEGMENT"]
    bad = (
        await api.gql(
            CREATE,
            input={
                "name": "y",
                "filter": {
                    "properties": [{"property": "seats", "op": "LESS_THAN", "value": "many"}]
                },
            },
        )
    )["createSegment"]
    assert [(e["code"], e["field"]) for e in bad["errors"]] == [
        ("INVALID_VALUE", "input.filter.properties[0].value")
    ]
    # Another environment's segment: invisible here, as if it did not exist.
    other = await environments.ensure(server.db, name="elsewhere")
    foreign = await segments.create(
        server.db,
        environment_id=other.id,
        name="Theirs",
        description=None,
        user_filter=UserFilter(properties=(PropertyCondition("plan", "IS_SET"),)),
    )
    foreign_id = ids.encode("Segment", foreign.id)
    used = await api.gql(CREATE, input={"name": "z", "filter": {"segmentId": foreign_id}})
    assert [e["code"] for e in used["createSegment"]["errors"]] == ["UNKNOWN_SEGMENT"]
    assert (await api.gql("query($id: ID!) { node(id: $id) { id } }", id=foreign_id))[
        "node"
    ] is None
    listing = await api.raw(
        "query($f: UserFilter) { users(filter: $f) { totalCount } }", f={"segmentId": foreign_id}
    )
    assert listing["errors"][0]["extensions"]["code"] == "UNKNOWN_SEGMENT"
    names = [s["name"] for s in (await api.gql("{ segments { name } }"))["segments"]]
    assert "Theirs" not in names and "Unique" in names


PROPERTY_LIST = """query($id: String, $search: String) {
  user(userId: $id) { propertyList(search: $search) { name value autocaptured } } }"""


async def test_property_list_search(loaded: tuple) -> None:
    api, users, _ = loaded
    user = next(
        u
        for u in users
        if u.identity
        and "company" in u.properties
        and "plan" in u.properties
        and "Initial Browser" in u.all_properties()
    )
    full = (await api.gql(PROPERTY_LIST, id=str(user.user_id)))["user"]["propertyList"]
    names = [p["name"] for p in full]
    assert names == sorted(names, key=str.casefold)
    flags = {p["name"]: p["autocaptured"] for p in full}
    assert flags["plan"] is False and flags["Initial Browser"] is True
    assert flags["Identity"] is True and flags["Date First Seen"] is True
    by_name = await api.gql(PROPERTY_LIST, id=str(user.user_id), search="PLA")
    assert {"plan", "Initial Platform"} <= {p["name"] for p in by_name["user"]["propertyList"]}
    value = user.properties["company"]
    by_value = await api.gql(PROPERTY_LIST, id=str(user.user_id), search=value.upper())
    assert "company" in {p["name"] for p in by_value["user"]["propertyList"]}
    nothing = await api.gql(PROPERTY_LIST, id=str(user.user_id), search="zzz-no-such")
    assert nothing["user"]["propertyList"] == []
