"""On the Heap and Segment routes a timestamp that is no date-time refuses its own item, named
as the caller spelled it (`events[3].timestamp`, `batch[2].originalTimestamp`); the other
items are stored. Read back through GraphQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from tests.server.conftest import Reader

INTERNALS = ("invalid literal", "int()", "base 10", "Traceback", "ValueError", "isoparse")


def _plain(message: str) -> None:
    assert "ISO 8601" in message and "2026-03-02T10:00:00Z" in message, message
    assert "without an offset the time is UTC" in message, message
    assert "milliseconds since 1970-01-01 UTC" in message, message
    assert not any(word in message for word in INTERNALS), message


async def _times(reader: Reader, **who: str) -> list[tuple[int, str]]:
    return [(e["properties"]["n"], e["time"]) for e in await reader.events(**who)]


# ------------------------------------------------------------------------------- Heap


def _heap(n: int, timestamp: Any) -> dict[str, Any]:
    return {
        "identity": "ts@example.com",
        "event": "e",
        "timestamp": timestamp,
        "properties": {"n": n},
    }


async def test_heap_bulk_refuses_only_the_events_with_bad_timestamps(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    events = [
        _heap(0, "2026-03-02T10:00:00Z"),
        _heap(1, "not-a-date"),
        _heap(2, "2026-02-30T10:00:00Z"),
        _heap(3, "2026-03-02T10:05:00"),  # no offset: UTC
        _heap(4, ["2026-03-02T10:00:00Z"]),
        _heap(5, 1772446020000),  # epoch milliseconds: 2026-03-02T10:07:00Z
        _heap(6, "2026-03-02T13:10:00+03:00"),
    ]
    response = await http.post("/api/track", json={"app_id": "11", "events": events})
    assert response.status_code == 400
    body = response.json()
    assert (body["success"], body["accepted"]) == (False, 4)
    assert [(e["index"], e["field"], e["code"]) for e in body["errors"]] == [
        (1, "events[1].timestamp", "INVALID_TIMESTAMP"),
        (2, "events[2].timestamp", "INVALID_TIMESTAMP"),
        (4, "events[4].timestamp", "INVALID_TIMESTAMP"),
    ]
    for error in body["errors"]:
        _plain(error["message"])
    assert await _times(reader, identity="ts@example.com") == [
        (0, "2026-03-02T10:00:00+00:00"),
        (3, "2026-03-02T10:05:00+00:00"),
        (5, "2026-03-02T10:07:00+00:00"),
        (6, "2026-03-02T10:10:00+00:00"),
    ]


async def test_heap_single_track_and_identify_name_the_timestamp(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    single = await http.post("/api/track", json={"app_id": "11", **_heap(0, "not-a-date")})
    assert single.status_code == 400
    body = single.json()
    assert (body["field"], body["code"]) == ("timestamp", "INVALID_TIMESTAMP")
    assert "index" not in body and body["accepted"] == 0
    _plain(body["message"])
    assert await reader.user(identity="ts@example.com") is None

    await http.post("/api/track", json={"app_id": "11", "user_id": "501", "event": "e"})
    identify = {"app_id": "11", "user_id": "501", "identity": "ts@example.com"}
    refused = await http.post("/api/v1/identify", json={**identify, "timestamp": "2026-02-30"})
    assert refused.status_code == 400
    assert (refused.json()["field"], refused.json()["code"]) == ("timestamp", "INVALID_TIMESTAMP")
    _plain(refused.json()["message"])
    assert (await reader.user(user_id="501"))["identity"] is None
    done = await http.post("/api/v1/identify", json={**identify, "timestamp": "2026-03-02"})
    assert done.status_code == 200
    assert (await reader.user(user_id="501"))["identity"] == "ts@example.com"


# ---------------------------------------------------------------------------- Segment


def _message(n: int, **times: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "e",
        "userId": "ts-user",
        "properties": {"n": n},
        "messageId": f"ts-{n}",
        **times,
    }


async def _batch(http: httpx.AsyncClient, batch: list[Any], **body: Any) -> httpx.Response:
    return await http.post("/v1/batch", json={"batch": batch, **body}, auth=("dev-key", ""))


async def test_segment_batch_refuses_only_the_messages_with_bad_times(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    batch = [
        _message(0, timestamp="2026-03-02T10:00:00Z"),
        _message(1, timestamp="not-a-date"),
        _message(2, originalTimestamp="2026-02-30T10:00:00Z"),
        _message(3, timestamp="2026-03-02T10:00:00Z", sentAt="garbage"),
        _message(4, timestamp="2026-03-02T10:05:00"),  # no offset: UTC
        _message(5, originalTimestamp="1999-12-31T23:00:00Z"),
        _message(6, originalTimestamp="2026-03-02T11:10:00+01:00"),
    ]
    response = await _batch(http, batch)
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 3
    assert [(e["index"], e["field"], e["code"]) for e in body["errors"]] == [
        (1, "batch[1].timestamp", "INVALID_TIMESTAMP"),
        (2, "batch[2].originalTimestamp", "INVALID_TIMESTAMP"),
        (3, "batch[3].sentAt", "INVALID_TIMESTAMP"),
        (5, "batch[5].originalTimestamp", "INVALID_TIMESTAMP"),
    ]
    for error in body["errors"][:3]:
        _plain(error["message"])
    assert "before 2000" in body["errors"][3]["message"]
    assert await _times(reader, identity="ts-user") == [
        (0, "2026-03-02T10:00:00+00:00"),
        (4, "2026-03-02T10:05:00+00:00"),
        (6, "2026-03-02T10:10:00+00:00"),
    ]


async def test_an_unreadable_batch_sent_at_refuses_the_request(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    batch = [_message(0, timestamp="2026-03-02T10:00:00Z"), _message(1)]
    response = await _batch(http, batch, sentAt="2026-02-30T10:00:00Z")
    assert response.status_code == 400
    body = response.json()
    assert (body["field"], body["code"]) == ("sentAt", "INVALID_TIMESTAMP")
    _plain(body["message"])
    assert "nothing was stored" in body["message"]
    assert await reader.user(identity="ts-user") is None
    # The same batch with a readable sentAt is stored, corrected for the client's clock.
    sent_at = datetime.now().astimezone().isoformat()
    assert (await _batch(http, batch, sentAt=sent_at)).json()["accepted"] == 2


async def test_segment_single_track_names_the_timestamp(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    response = await http.post(
        "/v1/track", json=_message(0, timestamp="2026-02-30T10:00:00Z"), auth=("k", "")
    )
    assert response.status_code == 400
    body = response.json()
    [error] = body["errors"]
    assert (error["index"], error["field"], error["code"]) == (
        None,
        "timestamp",
        "INVALID_TIMESTAMP",
    )
    _plain(error["message"])
    assert await reader.user(identity="ts-user") is None
