"""Heap's server-side API on a real server: the docs' payloads, read back through GraphQL."""

from __future__ import annotations

import gzip

import httpx

from models.db import Database
from services import environments, keys
from tests.conftest import RunningServer
from tests.server.conftest import Reader

# The payloads of Heap's server-side API documentation (developers.heap.io).
DOCS_TRACK = {
    "app_id": "11",
    "identity": "alice@example.com",
    "event": "Send Transactional Email",
    "timestamp": "2017-03-10T22:21:56+00:00",
    "properties": {"subject": "Welcome to My App!", "variation": "A"},
}
DOCS_BULK_TRACK = {
    "app_id": "11",
    "events": [
        {
            "identity": "alice@example.com",
            "timestamp": "2017-03-10T22:21:56+00:00",
            "event": "Send Transactional Email",
            "properties": {"subject": "Welcome to My App!", "variation": "A"},
        },
        {
            "identity": "bob@example.com",
            "timestamp": "2017-03-10T22:21:56+00:00",
            "event": "Send Transactional Email",
            "properties": {"subject": "Welcome to My App!", "variation": "B"},
        },
    ],
}
DOCS_USER_PROPERTIES = {
    "app_id": "11",
    "identity": "bob@example.com",
    "properties": {
        "age": "25",
        "language": "English",
        "profession": "Scientist",
        "email": "bob2@example2.com",
    },
}
DOCS_BULK_USER_PROPERTIES = {
    "app_id": "11",
    "users": [
        {
            "identity": "alice@example.com",
            "properties": {"age": "25", "language": "English", "profession": "Scientist"},
        },
        {
            "identity": "bob@example.com",
            "properties": {"age": "27", "language": "German", "profession": "Chemist"},
        },
    ],
}


def _event(n: int, **extra: object) -> dict:
    return {
        "identity": "bulk@example.com",
        "event": "Invoice Paid",
        "timestamp": f"2026-03-02T10:{n // 60 % 60:02d}:{n % 60:02d}Z",
        "properties": {"n": n},
        **extra,
    }


async def test_docs_track_is_stored_as_a_server_side_event(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    response = await http.post("/api/track", json=DOCS_TRACK)
    assert response.status_code == 200
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 0}
    user = await reader.user(identity="alice@example.com")
    assert user["identity"] == "alice@example.com" and user["eventCount"] == 1
    [session] = user["sessions"]
    assert session["origin"] == "SERVER" and session["source"] == "SERVER"
    [event] = session["events"]
    assert event["type"] == "Send Transactional Email"
    assert event["time"].startswith("2017-03-10T22:21:56")
    assert event["source"] == "SERVER" and event["serverSide"] is True
    assert event["properties"] == {"subject": "Welcome to My App!", "variation": "A"}


async def test_repeated_idempotency_key_stores_the_event_once(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    payload = {**DOCS_TRACK, "idempotency_key": "email-7d3f"}
    first = (await http.post("/api/track", json=payload)).json()
    again = (await http.post("/api/track", json=payload)).json()
    assert (first["accepted"], first["duplicates"]) == (1, 0)
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    bulk = await http.post(
        "/api/track", json={"app_id": "11", "events": [payload, {**payload, "event": "Other"}]}
    )
    assert bulk.json() == {"success": True, "accepted": 0, "duplicates": 2}
    assert (await reader.user(identity="alice@example.com"))["eventCount"] == 1


async def test_docs_bulk_track(http: httpx.AsyncClient, reader: Reader) -> None:
    response = await http.post("/api/track", json=DOCS_BULK_TRACK)
    assert response.json() == {"success": True, "accepted": 2, "duplicates": 0}
    for who, variation in (("alice@example.com", "A"), ("bob@example.com", "B")):
        [event] = await reader.events(identity=who)
        assert event["type"] == "Send Transactional Email"
        assert event["properties"]["variation"] == variation


async def test_track_by_user_id_and_session_id(http: httpx.AsyncClient, reader: Reader) -> None:
    response = await http.post(
        "/api/track",
        json={"app_id": 11, "user_id": 8432, "event": "Login", "session_id": "s-1"},
    )
    assert response.status_code == 200
    [event] = await reader.events(user_id="8432")
    assert event["type"] == "Login" and event["source"] == "SERVER"


async def test_bad_bulk_items_are_reported_and_the_good_ones_stored(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    events = [
        _event(0),
        _event(1, event=""),
        _event(2, user_id=5),  # both identity and user_id
        _event(3, timestamp="yesterday"),
        "not an object",
        _event(5, properties={"nested": {"a": 1}}),
        _event(6, idempotency_key="x" * 300),
        _event(7),
    ]
    response = await http.post("/api/track", json={"app_id": "11", "events": events})
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["accepted"] == 2
    assert [(e["index"], e["field"], e["code"]) for e in body["errors"]] == [
        (1, "events[1].event", "INVALID_EVENT_NAME"),
        (2, "events[2].identity", "AMBIGUOUS_USER"),
        (3, "events[3].timestamp", "INVALID_TIMESTAMP"),
        (4, "events[4]", "INVALID_BODY"),
        (5, "events[5].properties.nested", "INVALID_PROPERTY_VALUE"),
        (6, "events[6].idempotency_key", "INVALID_IDEMPOTENCY_KEY"),
    ]
    assert (body["code"], body["field"], body["index"]) == (
        "INVALID_EVENT_NAME",
        "events[1].event",
        1,
    )
    stored = await reader.events(identity="bulk@example.com")
    assert [e["properties"]["n"] for e in stored] == [0, 7]


async def test_single_track_errors_name_the_field(http: httpx.AsyncClient) -> None:
    cases = [
        ({**DOCS_TRACK, "user_id": "12"}, "identity", "AMBIGUOUS_USER"),
        ({**DOCS_TRACK, "identity": None}, "user_id", "MISSING_USER"),
        ({**DOCS_TRACK, "identity": "null"}, "identity", "INVALID_IDENTITY"),
        ({**DOCS_TRACK, "event": "e" * 1025}, "event", "EVENT_NAME_TOO_LONG"),
        ({**DOCS_TRACK, "timestamp": "1999-12-31T00:00:00Z"}, "timestamp", "INVALID_TIMESTAMP"),
        ({**DOCS_TRACK, "app_id": None}, "app_id", "MISSING_APP_ID"),
    ]
    for payload, field, code in cases:
        response = await http.post("/api/track", json=payload)
        assert response.status_code == 400, payload
        body = response.json()
        assert (body["field"], body["code"]) == (field, code), body
        assert body["message"]


async def test_a_bulk_request_holds_at_most_1000_events(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    too_many = await http.post(
        "/api/track", json={"app_id": "11", "events": [_event(n) for n in range(1001)]}
    )
    assert too_many.status_code == 400
    assert (too_many.json()["code"], too_many.json()["field"]) == ("BATCH_TOO_LARGE", "events")
    assert await reader.user(identity="bulk@example.com") is None
    enough = await http.post(
        "/api/track", json={"app_id": "11", "events": [_event(n) for n in range(1000)]}
    )
    assert enough.json() == {"success": True, "accepted": 1000, "duplicates": 0}
    assert (await reader.user(identity="bulk@example.com"))["eventCount"] == 1000


async def test_docs_add_user_properties_single_and_bulk(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    single = await http.post("/api/add_user_properties", json=DOCS_USER_PROPERTIES)
    assert single.json() == {"success": True, "accepted": 1, "duplicates": 0}
    bob = await reader.user(identity="bob@example.com")
    assert bob["properties"]["Email"] == "bob2@example2.com"
    assert bob["properties"]["profession"] == "Scientist"
    bulk = await http.post("/api/add_user_properties", json=DOCS_BULK_USER_PROPERTIES)
    assert bulk.json() == {"success": True, "accepted": 2, "duplicates": 0}
    alice = await reader.user(identity="alice@example.com")
    bob = await reader.user(identity="bob@example.com")
    assert alice["properties"]["language"] == "English" and alice["eventCount"] == 0
    assert bob["properties"]["profession"] == "Chemist"  # overwritten per key
    assert bob["properties"]["Email"] == "bob2@example2.com"  # kept


async def test_add_user_properties_errors(http: httpx.AsyncClient, reader: Reader) -> None:
    users = [
        {"identity": "carol", "properties": {"plan": "pro"}},
        {"identity": "dave", "properties": {"Identity": "someone else"}},
        {"identity": "erin", "properties": {"bio": "x" * 256}},
    ]
    response = await http.post("/api/add_user_properties", json={"app_id": "11", "users": users})
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 1
    assert [(e["field"], e["code"]) for e in body["errors"]] == [
        ("users[1].properties.Identity", "RESERVED_PROPERTY"),
        ("users[2].properties.bio", "PROPERTY_TOO_LONG"),
    ]
    assert (await reader.user(identity="carol"))["properties"]["plan"] == "pro"
    assert await reader.user(identity="dave") is None


async def test_identify_gives_an_identity_and_then_merges(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    for user_id, at in (("501", "2026-03-02T09:00:00Z"), ("502", "2026-03-02T12:00:00Z")):
        await http.post(
            "/api/track",
            json={"app_id": "11", "user_id": user_id, "event": "Visit", "timestamp": at},
        )
    first = await http.post(
        "/api/v1/identify",
        json={"app_id": "11", "user_id": 501, "identity": "frank", "timestamp": 1772445600000},
    )
    assert first.json() == {"success": True, "user_id": "501", "merged": False}
    second = await http.post(
        "/api/v1/identify", json={"app_id": "11", "user_id": "502", "identity": "frank"}
    )
    assert second.json() == {"success": True, "user_id": "501", "merged": True}
    frank = await reader.user(identity="frank")
    assert frank["userId"] == "501" and frank["eventCount"] == 2
    assert (await reader.user(user_id="502"))["userId"] == "501"

    conflict = await http.post(
        "/api/v1/identify", json={"app_id": "11", "user_id": "501", "identity": "gina"}
    )
    assert conflict.status_code == 400
    assert (conflict.json()["code"], conflict.json()["field"]) == ("ALREADY_IDENTIFIED", "identity")
    unknown = await http.post(
        "/api/v1/identify", json={"app_id": "11", "user_id": "999", "identity": "hal"}
    )
    assert (unknown.json()["code"], unknown.json()["field"]) == ("UNKNOWN_USER", "user_id")


async def test_bodies_that_are_not_heap_requests(http: httpx.AsyncClient) -> None:
    bad_json = await http.post(
        "/api/track", content=b'{"app_id": "11", ', headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "INVALID_JSON"
    not_an_object = await http.post("/api/track", json=[DOCS_TRACK])
    assert not_an_object.status_code == 400 and not_an_object.json()["code"] == "INVALID_BODY"
    events_not_a_list = await http.post("/api/track", json={"app_id": "11", "events": {}})
    assert events_not_a_list.json()["field"] == "events"


async def test_gzip_bodies_are_read(http: httpx.AsyncClient, reader: Reader) -> None:
    import orjson

    response = await http.post(
        "/api/track",
        content=gzip.compress(orjson.dumps(DOCS_BULK_TRACK)),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.json()["accepted"] == 2
    assert (await reader.user(identity="bob@example.com"))["eventCount"] == 1


async def test_outside_dev_mode_app_id_names_the_environment(
    production_server: RunningServer,
) -> None:
    db: Database = production_server.db
    default = await environments.ensure(db)
    async with httpx.AsyncClient(base_url=production_server.url) as client:
        unknown = await client.post("/api/track", json={**DOCS_TRACK, "app_id": "404"})
        assert unknown.status_code == 400
        assert (unknown.json()["code"], unknown.json()["field"]) == ("UNKNOWN_APP_ID", "app_id")
        known = await client.post("/api/track", json={**DOCS_TRACK, "app_id": default.app_id})
        assert known.json() == {"success": True, "accepted": 1, "duplicates": 0}
        query = '{ user(identity: "alice@example.com") { eventCount } }'
        _, key = await keys.create(db, environment=default.name, scope="read")
        read = await client.post(
            "/graphql", json={"query": query}, headers={"authorization": f"Bearer {key}"}
        )
    assert read.json()["data"]["user"]["eventCount"] == 1
