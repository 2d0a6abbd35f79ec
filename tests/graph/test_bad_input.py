"""Bad input gets a UserError or a GraphQL validation error and changes nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support import TRACK_BATCH, USER_TIMELINE, Api

GOOD = {
    "event": "pageview",
    "userId": "61",
    "source": "WEB",
    "timestamp": "2026-03-02T10:00:00Z",
    "properties": {"k": "good"},
}
FUTURE = (datetime.now(UTC) + timedelta(days=2)).isoformat()


def _with(**changes: object) -> dict:
    return {**GOOD, "properties": {"k": "bad"}, **changes}


BAD_ITEMS = [
    ("over-long name", _with(event="x" * 1025), "EVENT_NAME_TOO_LONG", "event"),
    ("empty name", _with(event=""), "INVALID_EVENT_NAME", "event"),
    ("future timestamp", _with(timestamp=FUTURE), "INVALID_TIMESTAMP", "timestamp"),
    ("unreadable timestamp", _with(timestamp="yesterday"), "INVALID_TIMESTAMP", "timestamp"),
    (
        "timestamp before 2000",
        _with(timestamp="1999-12-31T23:59:59Z"),
        "INVALID_TIMESTAMP",
        "timestamp",
    ),
    ("non-numeric userId", _with(userId="abc"), "INVALID_USER_ID", "userId"),
    ("userId over 2^53-1", _with(userId=str(2**53)), "INVALID_USER_ID", "userId"),
    ("no user", {**_with(), "userId": None}, "MISSING_USER", "userId"),
    (
        "server event with userId and identity",
        _with(source="SERVER", identity="x"),
        "AMBIGUOUS_USER",
        "identity",
    ),
    (
        "long property value",
        _with(properties={"k": "bad", "v": "x" * 1025}),
        "PROPERTY_TOO_LONG",
        "properties.v",
    ),
    (
        "nested property",
        _with(properties={"k": "bad", "v": {"a": 1}}),
        "INVALID_PROPERTY_VALUE",
        "properties.v",
    ),
    (
        "long hierarchy",
        _with(properties={"k": "bad", "hierarchy": "@div;|" * 700}),
        "PROPERTY_TOO_LONG",
        "properties.hierarchy",
    ),
    (
        "placeholder identity",
        {**_with(), "userId": None, "source": "SERVER", "identity": "undefined"},
        "INVALID_IDENTITY",
        "identity",
    ),
]


@pytest.mark.parametrize(
    ("name", "item", "code", "field"), BAD_ITEMS, ids=[b[0] for b in BAD_ITEMS]
)
async def test_bad_item_is_refused_and_good_items_are_stored(
    api: Api, name: str, item: dict, code: str, field: str
) -> None:
    result = await api.track_batch([GOOD, item])
    assert result["accepted"] == 1
    assert [(e["index"], e["code"], e["field"]) for e in result["errors"]] == [(1, code, field)]
    assert result["errors"][0]["message"]
    user = (await api.gql(USER_TIMELINE, userId="61"))["user"]
    keys = [
        e["node"]["properties"]["k"]
        for s in user["sessions"]["edges"]
        for e in s["node"]["events"]["edges"]
    ]
    assert keys == ["good"]


async def test_a_batch_of_1001_events_is_refused_whole(api: Api) -> None:
    result = await api.track_batch([{**GOOD, "properties": {"k": str(i)}} for i in range(1001)])
    assert result["accepted"] == 0
    assert [e["code"] for e in result["errors"]] == ["BATCH_TOO_LARGE"]
    assert (await api.gql(USER_TIMELINE, userId="61"))["user"] is None


async def test_a_batch_of_1000_events_is_stored(api: Api) -> None:
    base = datetime(2026, 3, 2, 10, tzinfo=UTC)
    events = [
        {
            **GOOD,
            "timestamp": (base + timedelta(seconds=i)).isoformat(),
            "properties": {"k": str(i)},
        }
        for i in range(1000)
    ]
    assert (await api.track_batch(events))["accepted"] == 1000
    user = (await api.gql(USER_TIMELINE, userId="61"))["user"]
    assert user["eventCount"] == 1000 and user["sessionCount"] == 1


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"events": [{"event": "x", "source": "DESKTOP"}]}, "DESKTOP"),
        ({"events": [{"event": 12, "userId": "1"}]}, "String"),
        ({"events": [{"userId": "1"}]}, "event"),
    ],
)
async def test_wrong_types_are_graphql_validation_errors(
    api: Api, variables: dict, message: str
) -> None:
    body = await api.raw(TRACK_BATCH, **variables)
    assert body.get("data") is None
    assert message in body["errors"][0]["message"]


async def test_idempotency_keys_store_one_event(api: Api) -> None:
    first = await api.track_batch(
        [{**GOOD, "idempotencyKey": "k-1"}, {**GOOD, "idempotencyKey": "k-1"}]
    )
    again = await api.track_batch(
        [{**GOOD, "idempotencyKey": "k-1"}, {**GOOD, "idempotencyKey": "k-2"}]
    )
    assert (first["accepted"], first["duplicates"]) == (1, 1)
    assert (again["accepted"], again["duplicates"]) == (1, 1)
    assert (await api.gql(USER_TIMELINE, userId="61"))["user"]["eventCount"] == 2


async def test_event_without_timestamp_takes_the_time_received(api: Api) -> None:
    before = datetime.now(UTC)
    await api.track_batch([{"event": "Signed Up", "userId": "62"}])
    seen = datetime.fromisoformat((await api.gql(USER_TIMELINE, userId="62"))["user"]["lastSeen"])
    assert before - timedelta(seconds=1) <= seen <= datetime.now(UTC)


async def test_timestamps_keep_milliseconds(api: Api) -> None:
    await api.track_batch([{**GOOD, "timestamp": "2026-03-02T10:00:00.123Z"}])
    user = (await api.gql(USER_TIMELINE, userId="61"))["user"]
    time = user["sessions"]["edges"][0]["node"]["events"]["edges"][0]["node"]["time"]
    assert time == "2026-03-02T10:00:00.123000+00:00"
