"""The Segment HTTP API against a real server: the real Segment and RudderStack Python SDKs,
raw HTTP for what the SDKs never send, and reading back through GraphQL with `gql`.

The server runs on the test's event loop, so the SDKs (blocking `requests` calls) run in a
thread via asyncio.to_thread.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from rudderstack.analytics import Client as RudderClient
from rudderstack.analytics.request import APIError as RudderAPIError
from segment.analytics import Client as SegmentClient
from segment.analytics.request import APIError as SegmentAPIError

from server.segment_api import source_of
from tests.conftest import RunningServer, start_server
from tests.server.conftest import Reader

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
WEB_CONTEXT = {
    "userAgent": CHROME_MAC,
    "ip": "203.0.113.7",
    "page": {
        "url": "https://shop.example.com/pricing?utm_source=newsletter&utm_medium=email",
        "path": "/pricing",
        "referrer": "https://www.google.com/",
        "title": "Pricing",
    },
    "location": {"country": "Germany", "region": "Berlin", "city": "Berlin"},
    "campaign": {"name": "spring", "source": "newsletter", "medium": "email"},
}
IOS_CONTEXT = {"device": {"type": "ios", "model": "iPhone15,2"}, "os": {"name": "iOS"}}


def _ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def _time(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["time"])


def _segment(server: RunningServer, **options: Any) -> SegmentClient:
    return SegmentClient("any-write-key", host=server.url, sync_mode=True, **options)


async def _batch(http: httpx.AsyncClient, batch: list[Any], **body: Any) -> httpx.Response:
    return await http.post("/v1/batch", json={"batch": batch, **body}, auth=("dev-key", ""))


def _track(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Report Exported",
        "userId": "batch-user",
        "properties": {"n": n},
        "messageId": f"msg-{n}",
        **extra,
    }


# ------------------------------------------------------------------ the real SDKs


async def test_segment_sdk_page_track_identify_screen(
    server: RunningServer, reader: Reader
) -> None:
    client = _segment(server)
    await asyncio.to_thread(
        client.page,
        anonymous_id="anon-seg-1",
        name="Pricing",
        properties={"path": "/pricing", "title": "Pricing"},
        context=dict(WEB_CONTEXT),
        timestamp=_ago(20),
    )
    await asyncio.to_thread(
        client.track,
        anonymous_id="anon-seg-1",
        event="Added to Cart",
        properties={"sku": "A-1", "price": 49.5},
        timestamp=_ago(18),
    )
    await asyncio.to_thread(
        client.identify,
        user_id="carol@example.com",
        anonymous_id="anon-seg-1",
        traits={
            "email": "carol@example.com",
            "name": "Carol",
            "plan": "pro",
            "address": {"city": "Berlin"},
            "id": "carol@example.com",
        },
    )
    await asyncio.to_thread(
        client.track,
        user_id="carol@example.com",
        event="Order Completed",
        properties={"revenue": 49.5, "products": [{"sku": "A-1"}], "tags": ["new", "sale"]},
        timestamp=_ago(10),
    )
    await asyncio.to_thread(
        client.screen,
        user_id="carol@example.com",
        name="Home",
        context=dict(IOS_CONTEXT),
        timestamp=_ago(5),
    )

    carol = await reader.user(identity="carol@example.com")
    assert carol["eventCount"] == 4 and carol["sessionCount"] == 2
    assert carol["properties"]["Email"] == "carol@example.com"
    assert carol["properties"]["plan"] == "pro" and carol["properties"]["address.city"] == "Berlin"
    assert "id" not in carol["properties"]
    web, ios = carol["sessions"]
    assert (web["origin"], web["source"], ios["source"]) == ("CLIENT", "WEB", "IOS")
    assert web["browser"] == "Chrome 131" and web["deviceType"] == "DESKTOP"
    assert web["landingPage"] == WEB_CONTEXT["page"]["url"]
    assert web["referrer"] == "https://www.google.com/"
    assert web["utm"] == {"source": "newsletter", "medium": "email", "campaign": "spring"}
    assert web["location"] == {"country": "Germany", "region": "Berlin", "city": "Berlin"}
    assert carol["properties"]["Initial Marketing Channel"] == "Email"
    # The server-side events fall in the web session's active window (SPEC §2).
    page, cart, order = web["events"]
    assert (page["type"], page["source"]) == ("pageview", "WEB")
    assert page["properties"]["path"] == "/pricing"
    assert page["properties"]["domain"] == "shop.example.com"
    assert page["properties"]["name"] == "Pricing"
    assert (cart["type"], cart["source"], cart["properties"]["price"]) == (
        "Added to Cart",
        "SERVER",
        49.5,
    )
    assert order["properties"]["tags"] == "new||sale"
    assert orjson.loads(order["properties"]["products"]) == [{"sku": "A-1"}]
    [screen] = ios["events"]
    assert (screen["type"], screen["source"], screen["properties"]["name"]) == (
        "screenview",
        "IOS",
        "Home",
    )
    assert ios["platform"] == "iOS" and ios["deviceType"] == "MOBILE"
    assert abs(_time(page) - _ago(20)) < timedelta(seconds=5)


async def test_segment_sdk_in_background_mode_with_gzip(
    server: RunningServer, reader: Reader
) -> None:
    errors: list[Exception] = []
    client = SegmentClient(
        "any-write-key",
        host=server.url,
        gzip=True,
        upload_interval=0.05,
        on_error=lambda error, batch: errors.append(error),
    )
    for n in range(30):
        client.track(user_id="bg-user", event="Tick", properties={"n": n}, timestamp=_ago(30 - n))
    await asyncio.to_thread(client.flush)
    await asyncio.to_thread(client.join)
    assert errors == []
    assert (await reader.user(identity="bg-user"))["eventCount"] == 30


async def test_rudderstack_sdk_gzips_and_its_identify_traits_arrive(
    server: RunningServer, reader: Reader
) -> None:
    client = RudderClient("any-write-key", host=server.url, sync_mode=True)
    assert client.gzip is True  # RudderStack's default: every request below is gzipped
    await asyncio.to_thread(
        client.page,
        anonymous_id="rs-anon",
        name="Docs",
        context={**WEB_CONTEXT, "page": {"url": "https://docs.example.com/start"}},
        timestamp=_ago(12),
    )
    await asyncio.to_thread(
        client.track,
        anonymous_id="rs-anon",
        event="Search",
        properties={"query": "sessions"},
        context=dict(IOS_CONTEXT),
        timestamp=_ago(11),
    )
    await asyncio.to_thread(
        client.identify,
        user_id="erin",
        anonymous_id="rs-anon",
        traits={"email": "erin@example.com", "company": {"name": "Acme"}},
    )
    await asyncio.to_thread(client.track, user_id="erin", event="Signed Up", timestamp=_ago(10))
    erin = await reader.user(identity="erin")
    assert erin["properties"]["Email"] == "erin@example.com"
    assert erin["properties"]["company.name"] == "Acme"
    events = await reader.events(identity="erin")
    assert [(e["type"], e["source"]) for e in events] == [
        ("pageview", "WEB"),
        ("Search", "IOS"),
        ("Signed Up", "SERVER"),
    ]
    assert events[0]["properties"]["domain"] == "docs.example.com"


async def test_identify_merges_an_anonymous_user_into_the_identified_one(
    server: RunningServer, reader: Reader
) -> None:
    client = _segment(server)
    await asyncio.to_thread(client.identify, user_id="dan", traits={"plan": "pro"})
    await asyncio.to_thread(client.track, user_id="dan", event="Invoice Paid", timestamp=_ago(60))
    dan_id = (await reader.user(identity="dan"))["userId"]
    await asyncio.to_thread(
        client.page, anonymous_id="laptop", context=dict(WEB_CONTEXT), timestamp=_ago(50)
    )
    await asyncio.to_thread(
        client.identify, anonymous_id="laptop", traits={"plan": "free", "color": "red"}
    )
    await asyncio.to_thread(client.identify, user_id="dan", anonymous_id="laptop")
    dan = await reader.user(identity="dan")
    assert dan["userId"] == dan_id and dan["eventCount"] == 2
    assert dan["properties"]["plan"] == "pro"  # the identified user's value wins
    assert dan["properties"]["color"] == "red"
    assert dan["properties"]["Initial Landing Page"] == WEB_CONTEXT["page"]["url"]
    # The anonymous id keeps routing to dan.
    await asyncio.to_thread(client.track, anonymous_id="laptop", event="Later")
    assert (await reader.user(identity="dan"))["eventCount"] == 3


async def test_alias_merges_the_previous_id_and_refuses_two_identities(
    server: RunningServer, reader: Reader, http: httpx.AsyncClient
) -> None:
    client = _segment(server)
    await asyncio.to_thread(client.track, user_id="gus", event="Trial Started")
    await asyncio.to_thread(client.track, anonymous_id="phone", event="Opened", timestamp=_ago(3))
    await asyncio.to_thread(client.alias, previous_id="phone", user_id="gus")
    assert (await reader.user(identity="gus"))["eventCount"] == 2
    # An alias of an unseen id routes it; events sent with it later reach the user.
    await asyncio.to_thread(client.alias, previous_id="tablet", user_id="gus")
    await asyncio.to_thread(client.track, anonymous_id="tablet", event="Opened")
    assert (await reader.user(identity="gus"))["eventCount"] == 3

    await asyncio.to_thread(client.track, user_id="hank", event="Trial Started")
    refused = await _batch(
        http,
        [
            {"type": "alias", "previousId": "phone", "userId": "hank"},
            {"type": "alias", "previousId": "gus", "userId": "hank"},
            {"type": "alias", "userId": "hank"},
        ],
    )
    assert refused.status_code == 400
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
        ("batch[0].previousId", "ALREADY_IDENTIFIED"),
        ("batch[1].previousId", "ALREADY_IDENTIFIED"),
        ("batch[2].previousId", "MISSING_USER"),
    ]
    assert (await reader.user(identity="hank"))["eventCount"] == 1


async def test_an_anonymous_id_identified_as_someone_else_is_left_alone(
    server: RunningServer, reader: Reader
) -> None:
    """A shared device: the second person's events go to their identity, nobody is merged."""
    client = _segment(server)
    await asyncio.to_thread(client.identify, user_id="ivy", anonymous_id="kiosk")
    await asyncio.to_thread(client.track, user_id="jon", anonymous_id="kiosk", event="Checkout")
    assert (await reader.user(identity="jon"))["eventCount"] == 1
    assert (await reader.user(identity="ivy"))["eventCount"] == 0


# ---------------------------------------------------------------- the HTTP contract


async def test_single_message_routes_and_the_body_write_key(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    message = {"userId": "kim", "timestamp": "2026-03-02T10:00:00Z", "writeKey": "k"}
    for path, extra in (
        ("/v1/track", {"event": "Exported"}),
        ("/v1/page", {"name": "Home", "properties": {"url": "https://kim.example.com/"}}),
        ("/v1/screen", {"name": "Feed", "context": {"os": {"name": "Android"}}}),
        ("/v1/identify", {"traits": {"plan": "team"}}),
        ("/v1/alias", {"previousId": "kim-anon"}),
        ("/v1/group", {"groupId": "acme"}),
    ):
        response = await http.post(path, json={**message, **extra})
        assert response.json() == {"success": True, "accepted": 1, "duplicates": 0}, path
    kim = await reader.user(identity="kim")
    assert kim["properties"]["plan"] == "team"
    assert sorted((e["type"], e["source"]) for e in await reader.events(identity="kim")) == [
        ("Exported", "SERVER"),
        ("pageview", "WEB"),
        ("screenview", "ANDROID"),
    ]


async def test_browser_sdk_paths_and_cross_origin_requests(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    """analytics.js posts text/plain to /v1/<t|p|i|...> and /v1/b with the key in the body.

    Dev mode answers pages on loopback only; other origins, outside dev mode, are in
    tests/server/test_cors.py."""
    origin = "http://localhost:3000"
    headers = {"content-type": "text/plain", "origin": origin}
    message = {
        "writeKey": "k",
        "anonymousId": "browser-1",
        "context": {
            "library": {"name": "analytics.js", "version": "npm:next-1.70.0"},
            "userAgent": CHROME_MAC,
            "page": WEB_CONTEXT["page"],
        },
        "timestamp": _ago(3).isoformat(),
        "sentAt": _ago(3).isoformat(),
    }
    answers = [
        await http.post(
            "/v1/p", content=orjson.dumps({**message, "messageId": "p1"}), headers=headers
        ),
        await http.post(
            "/v1/t",
            content=orjson.dumps({**message, "event": "Clicked", "messageId": "t1"}),
            headers=headers,
        ),
        await http.post(
            "/v1/b",
            content=orjson.dumps(
                {
                    "writeKey": "k",
                    "sentAt": _ago(0).isoformat(),
                    "batch": [{**message, "type": "track", "event": "Batched", "messageId": "b1"}],
                }
            ),
            headers=headers,
        ),
        await http.post(
            "/v1/i", content=orjson.dumps({**message, "userId": "lena"}), headers=headers
        ),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == origin
        assert "access-control-allow-credentials" not in answer.headers
    events = await reader.events(identity="lena")
    assert [(e["type"], e["source"]) for e in events] == [
        ("pageview", "WEB"),
        ("Clicked", "WEB"),
        ("Batched", "WEB"),
    ]
    # RudderStack's browser SDK sends Authorization and JSON: the browser asks first.
    preflight = await http.options(
        "/v1/batch",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type,anonymousid",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    allowed = preflight.headers["access-control-allow-headers"].lower().split(", ")
    assert {"authorization", "content-type", "anonymousid"} <= set(allowed)
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in preflight.headers


async def test_message_id_deduplicates(http: httpx.AsyncClient, reader: Reader) -> None:
    batch = [_track(1), _track(2), _track(1)]
    first = await _batch(http, batch)
    assert first.json() == {"success": True, "accepted": 2, "duplicates": 1}
    again = await _batch(http, batch)
    assert again.json() == {"success": True, "accepted": 0, "duplicates": 3}
    assert (await reader.user(identity="batch-user"))["eventCount"] == 2


async def test_timestamps_are_corrected_for_client_clock_skew(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    skewed_now = datetime.now(UTC) - timedelta(hours=3)  # the client's clock is 3 hours slow
    batch = [
        _track(1, timestamp=(skewed_now - timedelta(seconds=30)).isoformat()),
        # A message's own sentAt wins over the batch's.
        _track(
            2,
            timestamp=(skewed_now + timedelta(hours=1, seconds=-60)).isoformat(),
            sentAt=(skewed_now + timedelta(hours=1)).isoformat(),
        ),
        # RudderStack's JavaScript SDK sends originalTimestamp.
        _track(3, originalTimestamp=(skewed_now - timedelta(seconds=90)).isoformat()),
    ]
    response = await _batch(http, batch, sentAt=skewed_now.isoformat())
    assert response.json()["accepted"] == 3
    without_sent_at = await http.post(
        "/v1/track", json=_track(4, timestamp="2026-03-02T10:00:00.123Z"), auth=("k", "")
    )
    assert without_sent_at.status_code == 200
    by_n = {e["properties"]["n"]: _time(e) for e in await reader.events(identity="batch-user")}
    now = datetime.now(UTC)
    for n, seconds in ((1, 30), (2, 60), (3, 90)):
        assert abs(by_n[n] - (now - timedelta(seconds=seconds))) < timedelta(seconds=5), n
    assert by_n[4] == datetime(2026, 3, 2, 10, 0, 0, 123000, tzinfo=UTC)


async def test_bad_messages_never_stop_the_good_ones(
    http: httpx.AsyncClient, reader: Reader
) -> None:
    batch = [
        _track(0),
        _track(1, event=""),
        {"type": "track", "event": "No One"},
        {"type": "launch", "userId": "batch-user"},
        "not a message",
        _track(5, timestamp="next tuesday"),
        _track(6, userId="null"),
        {"type": "identify", "userId": "batch-user", "traits": {"bio": "x" * 300}},
        _track(8, properties={"n": 8, "k" * 1025: 1}),
        _track(9, context={"userAgent": 42}),
        _track(10),
    ]
    response = await _batch(http, batch)
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 2 and body["success"] is False
    assert [(e["index"], e["field"], e["code"]) for e in body["errors"]] == [
        (1, "batch[1].event", "INVALID_EVENT_NAME"),
        (2, "batch[2].userId", "MISSING_USER"),
        (3, "batch[3].type", "INVALID_TYPE"),
        (4, "batch[4]", "INVALID_MESSAGE"),
        (5, "batch[5].timestamp", "INVALID_TIMESTAMP"),
        (6, "batch[6].userId", "INVALID_IDENTITY"),
        (7, "batch[7].traits.bio", "PROPERTY_TOO_LONG"),
        (8, f"batch[8].properties.{'k' * 40}…", "PROPERTY_NAME_TOO_LONG"),
        (9, "batch[9].context.userAgent", "INVALID_CONTEXT"),
    ]
    stored = await reader.events(identity="batch-user")
    assert sorted(e["properties"]["n"] for e in stored) == [0, 10]


async def test_size_limits(http: httpx.AsyncClient, reader: Reader) -> None:
    big = {f"k{i}": "x" * 1000 for i in range(40)}  # valid properties, a 40 KB message
    batch = [_track(0), _track(1, properties=big), _track(2)]
    response = await _batch(http, batch)
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("batch[1]", "MESSAGE_TOO_LARGE")
    ]
    assert (await reader.user(identity="batch-user"))["eventCount"] == 2

    single = await http.post("/v1/track", json=_track(3, properties=big), auth=("k", ""))
    assert single.status_code == 400 and single.json()["code"] == "MESSAGE_TOO_LARGE"

    medium = {f"k{i}": "x" * 1000 for i in range(25)}
    huge = [_track(10 + n, properties=medium) for n in range(25)]  # 25 × 25 KB > 500 KB
    too_big = await _batch(http, huge)
    assert too_big.status_code == 400 and too_big.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert (await reader.user(identity="batch-user"))["eventCount"] == 2


async def test_gzip_bodies_and_gzip_bombs(http: httpx.AsyncClient, reader: Reader) -> None:
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    body = orjson.dumps({"batch": [_track(1), _track(2)], "writeKey": "k"})
    ok = await http.post("/v1/batch", content=gzip.compress(body), headers=headers)
    assert ok.json()["accepted"] == 2

    corrupt = await http.post("/v1/batch", content=b"\x1f\x8b not gzip", headers=headers)
    assert corrupt.status_code == 400 and corrupt.json()["code"] == "INVALID_GZIP"
    truncated = await http.post("/v1/batch", content=gzip.compress(body)[:-12], headers=headers)
    assert truncated.status_code == 400 and truncated.json()["code"] == "INVALID_GZIP"

    # 100 MB of zeros in a ~100 KB body: refused without ever being inflated in full.
    deflate = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    chunk = b"\0" * (1 << 20)
    bomb = b"".join(deflate.compress(chunk) for _ in range(100)) + deflate.flush()
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        refused = await http.post("/v1/batch", content=bomb, headers=headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.status_code == 400 and refused.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert peak < 20 * (1 << 20)
    unsupported = await http.post(
        "/v1/batch", content=body, headers={"content-encoding": "br"}, auth=("k", "")
    )
    assert unsupported.status_code == 415
    assert (await reader.user(identity="batch-user"))["eventCount"] == 2


async def test_bodies_that_are_not_json(http: httpx.AsyncClient) -> None:
    bad = await http.post("/v1/batch", content=b'{"batch": [', auth=("k", ""))
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_JSON"
    empty = await http.post("/v1/track", content=b"", auth=("k", ""))
    assert empty.status_code == 400 and empty.json()["code"] == "INVALID_JSON"
    array = await http.post("/v1/batch", json=[_track(1)], auth=("k", ""))
    assert array.status_code == 400 and array.json()["code"] == "INVALID_BODY"
    no_batch = await http.post("/v1/batch", json={"messages": []}, auth=("k", ""))
    assert (no_batch.json()["code"], no_batch.json()["field"]) == ("INVALID_BATCH", "batch")


async def test_missing_and_unusable_write_keys(
    http: httpx.AsyncClient, production_server: RunningServer
) -> None:
    missing = await http.post("/v1/batch", json={"batch": [_track(1)]})
    assert missing.status_code == 401 and missing.json()["code"] == "MISSING_WRITE_KEY"
    bearer = await http.post(
        "/v1/batch", json={"batch": [_track(1)]}, headers={"authorization": "Bearer abc"}
    )
    assert bearer.status_code == 401 and bearer.json()["code"] == "INVALID_AUTHORIZATION"

    # Outside dev mode a write key must be an active ingest (or admin) API key; the SDKs say so.
    async with httpx.AsyncClient(base_url=production_server.url) as client:
        wrong = await client.post("/v1/batch", json={"batch": [_track(1)]}, auth=("wk", ""))
    assert wrong.status_code == 401 and wrong.json()["code"] == "UNKNOWN_WRITE_KEY"
    segment = SegmentClient("wk", host=production_server.url, sync_mode=True)
    with pytest.raises(SegmentAPIError) as refused:
        await asyncio.to_thread(segment.track, user_id="x", event="Nope")
    assert (refused.value.status, refused.value.code) == (401, "UNKNOWN_WRITE_KEY")
    rudder = RudderClient("wk", host=production_server.url, sync_mode=True)
    with pytest.raises(RudderAPIError) as refused_too:
        await asyncio.to_thread(rudder.track, user_id="x", event="Nope")
    assert (refused_too.value.status, refused_too.value.code) == (401, "UNKNOWN_WRITE_KEY")


class Responses:
    """The statuses an SDK's `requests` session receives (retries included)."""

    def __init__(self, session: Any):
        self.session = session
        self.statuses: list[int] = []

    def __enter__(self) -> list[int]:
        self.session.hooks["response"].append(self._seen)
        return self.statuses

    def __exit__(self, *exc: object) -> None:
        self.session.hooks["response"].remove(self._seen)

    def _seen(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.statuses.append(response.status_code)


async def _send_in_background(sdk: Any, host: str, retries: int = 10, **track: Any) -> list[Any]:
    """Track through an SDK client's queue and consumer thread; the errors it reports."""
    errors: list[Any] = []
    client = sdk(
        "k",
        host=host,
        max_retries=retries,
        upload_interval=0.05,
        on_error=lambda error, batch: errors.append(error),
    )
    client.track(**track)
    await asyncio.to_thread(client.flush)
    await asyncio.to_thread(client.join)
    return errors


async def test_sdks_retry_503_when_the_database_is_down_and_never_retry_400(
    tmp_path: Path, server: RunningServer, sqlite_template: Path
) -> None:
    from rudderstack.analytics import request as rudder_request
    from segment.analytics import request as segment_request

    missing = tmp_path / "no" / "such" / "dir" / "usertrail.db"
    running, down, task = await start_server(f"sqlite+aiosqlite:///{missing}")
    try:
        sync = SegmentClient("k", host=running.url, sync_mode=True)
        with pytest.raises(SegmentAPIError) as refused:
            await asyncio.to_thread(sync.track, user_id="x", event="Later")
        assert (refused.value.status, refused.value.code) == (503, "UNAVAILABLE")
        async with httpx.AsyncClient(base_url=running.url) as client:
            heap = await client.post(
                "/api/track", json={"app_id": "1", "identity": "x", "event": "e"}
            )
        assert heap.status_code == 503 and heap.json()["code"] == "UNAVAILABLE"
        assert int(heap.headers["retry-after"]) > 0

        with Responses(rudder_request._session) as statuses:
            errors = await _send_in_background(
                RudderClient, running.url, retries=1, user_id="x", event="Later"
            )
        assert statuses == [503, 503]  # the first try and one retry
        assert [e.status for e in errors] == [503]

        # The Segment SDK honours Retry-After: it keeps the batch and tries again after the
        # advertised delay, without spending its retries, until the database is back.
        with Responses(segment_request._session) as statuses:
            sending = asyncio.create_task(
                _send_in_background(
                    SegmentClient, running.url, retries=1, user_id="x", event="Kept"
                )
            )
            async with asyncio.timeout(20):
                while len(statuses) < 2:
                    await asyncio.sleep(0.05)
            missing.parent.mkdir(parents=True)
            shutil.copy(sqlite_template, missing)  # the database is back
            async with asyncio.timeout(20):
                errors = await sending
        assert statuses[:2] == [503, 503] and statuses[-1] == 200, statuses
        assert errors == []
    finally:
        down.should_exit = True
        await task

    # A refused message is final: the SDKs report it and do not send it again.
    for sdk, session in (
        (SegmentClient, segment_request._session),
        (RudderClient, rudder_request._session),
    ):
        with Responses(session) as statuses:
            errors = await _send_in_background(sdk, server.url, user_id="null", event="Nobody")
        assert statuses == [400]
        assert [(e.status, e.code) for e in errors] == [(400, "INVALID_IDENTITY")]


# ---------------------------------------------------------------- source mapping


@pytest.mark.parametrize(
    ("kind", "context", "source"),
    [
        ("track", {"library": {"name": "analytics.js"}}, "WEB"),
        ("track", {"library": {"name": "@segment/analytics-next"}}, "WEB"),
        ("track", {"library": {"name": "RudderLabs JavaScript SDK"}}, "WEB"),
        ("screen", {"library": {"name": "analytics-ios"}}, "IOS"),
        ("track", {"library": {"name": "analytics-swift"}}, "IOS"),
        ("track", {"library": {"name": "analytics-android"}}, "ANDROID"),
        ("track", {"library": {"name": "analytics-kotlin"}}, "ANDROID"),
        ("track", {"library": {"name": "analytics-python"}}, "SERVER"),
        ("track", {"library": {"name": "analytics-node"}, "userAgent": CHROME_MAC}, "SERVER"),
        ("screen", {"library": {"name": "analytics-python"}}, "SERVER"),
        ("page", {"library": {"name": "analytics-python"}}, "WEB"),
        ("track", {"library": {"name": "analytics-react-native"}, "os": {"name": "iOS"}}, "IOS"),
        (
            "track",
            {"library": {"name": "analytics-python"}, "device": {"type": "android"}},
            "ANDROID",
        ),
        ("track", {"userAgent": CHROME_MAC}, "WEB"),
        ("track", {}, "SERVER"),
        ("track", {"library": "not an object", "device": None}, "SERVER"),
    ],
)
def test_source_from_library_device_and_os(kind: str, context: dict, source: str) -> None:
    assert source_of(kind, context) == source
