"""Location from the client's IP (issue 21), through a real server and real clients.

A server given a MaxMind DB file the test writes (tests/geoip_database.py) locates client
events by `context.ip`, else by the request's address, honouring trusted proxies; the
location shows where the API and the page show the first session's (`initialLocation`, the
`Initial …` properties, the session's `location`). Expectations are written out by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from segment.analytics import Client as SegmentClient
from sqlalchemy import select

from models import Event, User
from tests.conftest import RunningServer, start_server
from tests.geoip_database import BERLIN, BOXFORD, LONDON, SWEDEN, write_geoip_database

CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
FIRST_SESSION = """
query($userId: String, $identity: String) {
  user(userId: $userId, identity: $identity) {
    userId
    initialLocation { country region city }
    properties
    firstSession { source location { country region city } }
  }
}"""
TRACK_BATCH = """
mutation($events: [TrackInput!]!) {
  trackBatch(events: $events) { accepted errors { index field code message } }
}"""
TRACK = """
mutation($input: TrackInput!) {
  track(input: $input) { accepted errors { field code message } }
}"""
NOWHERE = {"initialLocation": None, "firstSessionLocation": None, "initial": {}}


def _ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


@pytest.fixture(scope="module")
def geoip_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_geoip_database(tmp_path_factory.mktemp("geoip") / "test-city.mmdb")


class ServerClient(httpx.AsyncClient):
    """An HTTP client of a running server, which also reads its database."""

    def __init__(self, running: RunningServer):
        super().__init__(base_url=running.url, timeout=60)
        self.running = running


async def _serve(database_url: str, **settings: Any) -> AsyncIterator[ServerClient]:
    running, server, task = await start_server(database_url, **settings)
    try:
        async with ServerClient(running) as http:
            yield http
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def located(database_url: str, geoip_db: Path) -> AsyncIterator[ServerClient]:
    """A server with the GeoIP database, behind a trusted proxy on loopback (and on 10/8)."""
    async for http in _serve(
        database_url, geoip_db=str(geoip_db), trusted_proxies=("127.0.0.0/8", "10.0.0.0/8")
    ):
        yield http


@pytest.fixture
async def untrusting(database_url: str, geoip_db: Path) -> AsyncIterator[ServerClient]:
    """A server with the GeoIP database whose only trusted proxies are elsewhere (10/8)."""
    async for http in _serve(database_url, geoip_db=str(geoip_db), trusted_proxies=("10.0.0.0/8",)):
        yield http


@pytest.fixture
async def plain(database_url: str) -> AsyncIterator[ServerClient]:
    """A server without a GeoIP database (the setting unset)."""
    async for http in _serve(database_url):
        yield http


async def _gql(http: ServerClient, query: str, **variables: Any) -> Any:
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


async def _where(http: ServerClient, **who: str) -> dict[str, Any]:
    """Where the page shows the user's first session: initialLocation, the Initial
    properties, and the first session's own location."""
    user = (await _gql(http, FIRST_SESSION, **who))["user"]
    assert user is not None, who
    first = user["firstSession"]
    return {
        "initialLocation": user["initialLocation"],
        "firstSessionLocation": first["location"] if first else None,
        "initial": {
            key: value
            for key, value in user["properties"].items()
            if key in ("Initial Country", "Initial Region", "Initial City")
        },
    }


def _shown(location: dict[str, str | None]) -> dict[str, Any]:
    initial = {
        "Initial Country": location["country"],
        "Initial Region": location["region"],
        "Initial City": location["city"],
    }
    return {
        "initialLocation": location,
        "firstSessionLocation": location,
        "initial": {key: value for key, value in initial.items() if value is not None},
    }


async def _contexts(http: ServerClient, **who: str) -> list[dict[str, Any]]:
    """The stored contexts of a user's events (what the database keeps of the IP)."""
    running = http.running
    column = User.identity if "identity" in who else User.user_id
    value = who.get("identity") or int(who["userId"])
    async with running.db.read() as conn:
        rows = await conn.execute(
            select(Event.context)
            .join(
                User,
                (User.environment_id == Event.environment_id) & (User.user_id == Event.user_id),
            )
            .where(column == value)
            .order_by(Event.time_us)
        )
        return [row.context for row in rows]


def _web(ip: str | None = None, **more: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"userAgent": CHROME, "url": "https://shop.example.com/", **more}
    if ip is not None:
        context["ip"] = ip
    return context


# ------------------------------------------------------------------------- Segment


async def test_segment_sdk_page_with_context_ip_locates_the_first_session(
    located: ServerClient,
) -> None:
    running = located.running
    client = SegmentClient("any-write-key", host=running.url, sync_mode=True)
    when = datetime.now(UTC) - timedelta(minutes=30)
    await asyncio.to_thread(
        client.page,
        user_id="ada@example.com",
        name="Home",
        properties={"url": "https://shop.example.com/"},
        context={"ip": "81.2.69.142", "userAgent": CHROME},
        timestamp=when,
    )
    # A later session elsewhere does not move the first session's location.
    await asyncio.to_thread(
        client.page,
        user_id="ada@example.com",
        name="Home",
        context={"ip": "2.125.160.218", "userAgent": CHROME},
        timestamp=when + timedelta(minutes=25),
    )
    assert await _where(located, identity="ada@example.com") == _shown(LONDON)
    # The IP address is not kept, only the location it gave.
    assert [c.get("location") for c in await _contexts(located, identity="ada@example.com")] == [
        LONDON,
        BOXFORD,
    ]
    assert all("ip" not in c for c in await _contexts(located, identity="ada@example.com"))


async def test_segment_batch_context_ip_and_the_batch_context(located: ServerClient) -> None:
    library = {"name": "analytics.js", "version": "2.11.1"}
    batch = [
        {"type": "track", "event": "Viewed", "userId": "bo", "timestamp": _ago(9)},
        {
            "type": "track",
            "event": "Viewed",
            "userId": "cy",
            "timestamp": _ago(9),
            "context": {"ip": "2a02:8010::7", "library": library},
        },
        {
            "type": "page",
            "userId": "di",
            "timestamp": _ago(9),
            "context": {"ip": "89.160.20.9", "library": library},
        },
    ]
    response = await located.post(
        "/v1/batch",
        json={"batch": batch, "context": {"ip": "81.2.69.10", "library": library}},
        auth=("any-write-key", ""),
    )
    assert response.status_code == 200, response.text
    assert await _where(located, identity="bo") == _shown(LONDON)  # the batch's context
    assert await _where(located, identity="cy") == _shown(BERLIN)  # its own, over the batch's
    assert await _where(located, identity="di") == _shown(SWEDEN)  # a country alone


async def test_the_clients_own_location_wins_over_its_ip(located: ServerClient) -> None:
    message = {
        "type": "page",
        "userId": "eve",
        "timestamp": _ago(5),
        "context": {
            "ip": "81.2.69.142",
            "userAgent": CHROME,
            "location": {"country": "France", "region": "Île-de-France", "city": "Paris"},
        },
    }
    response = await located.post("/v1/page", json=message, auth=("any-write-key", ""))
    assert response.status_code == 200, response.text
    assert await _where(located, identity="eve") == _shown(
        {"country": "France", "region": "Île-de-France", "city": "Paris"}
    )


# ------------------------------------------------------------------------- GraphQL


async def test_graphql_track_batch_items_with_context_ip(located: ServerClient) -> None:
    events = [
        {"event": "pageview", "userId": "101", "source": "WEB", "timestamp": _ago(8),
         "context": _web("2.125.160.218")},
        {"event": "pageview", "userId": "102", "source": "IOS", "timestamp": _ago(8),
         "context": {"ip": "2a02:8010::1"}},
        # Addresses that are not the public internet's locate nothing, even where the
        # database lists them; so does an address the database lacks, or no address at all.
        {"event": "pageview", "userId": "103", "source": "WEB", "timestamp": _ago(8),
         "context": _web("10.1.2.3")},
        {"event": "pageview", "userId": "104", "source": "WEB", "timestamp": _ago(8),
         "context": _web("127.0.0.1")},
        {"event": "pageview", "userId": "105", "source": "WEB", "timestamp": _ago(8),
         "context": _web("8.8.8.8")},
        {"event": "pageview", "userId": "106", "source": "WEB", "timestamp": _ago(8),
         "context": _web("not an address")},
    ]  # fmt: skip
    result = (await _gql(located, TRACK_BATCH, events=events))["trackBatch"]
    assert result == {"accepted": 6, "errors": []}
    assert await _where(located, userId="101") == _shown(BOXFORD)
    assert await _where(located, userId="102") == _shown(BERLIN)
    for user_id in ("103", "104", "105", "106"):
        assert await _where(located, userId=user_id) == NOWHERE, user_id
        assert all("ip" not in c for c in await _contexts(located, userId=user_id))


# ------------------------------------------------------------------------- Heap


async def test_heap_track_with_context_ip_locates_the_server_side_event(
    located: ServerClient,
) -> None:
    response = await located.post(
        "/api/track",
        json={
            "app_id": "11",
            "events": [
                {"identity": "fay", "event": "Purchase", "context": {"ip": "81.2.69.20"}},
                # Server-side: the request's address (here a trusted proxy's client) is the
                # server's, never the user's.
                {"identity": "fay", "event": "Refund"},
            ],
        },
        headers={"X-Forwarded-For": "2.125.160.218"},
    )
    assert response.status_code == 200, response.text
    contexts = await _contexts(located, identity="fay")
    assert sorted(contexts, key=len) == [{}, {"location": LONDON}]
    # SPEC §2: a session's fields come from its first client event; a server-only session
    # has none, and Initial properties come from client sessions only.
    assert await _where(located, identity="fay") == NOWHERE


# ------------------------------------------------- the request's address and proxies


async def test_client_events_without_ip_take_the_trusted_proxys_client(
    located: ServerClient,
) -> None:
    async def track(user_id: str, forwarded_for: str, source: str = "WEB") -> None:
        event = {"event": "pageview", "userId": user_id, "source": source, "timestamp": _ago(4),
                 "context": _web()}  # fmt: skip
        response = await located.post(
            "/graphql",
            json={"query": TRACK, "variables": {"input": event}},
            headers={"X-Forwarded-For": forwarded_for},
        )
        assert response.json()["data"]["track"]["errors"] == [], response.text

    await track("201", "81.2.69.142")
    # Proxies append: the client is the rightmost address that is no trusted proxy, and what
    # the client wrote to the left of it is not believed.
    await track("202", "2.125.160.218, 81.2.69.142, 10.0.0.7")
    # Only trusted proxies in the chain: the client is unknown, not a proxy's address.
    await track("203", "10.0.0.9")
    # A server-side event is never located by the request's address.
    await track("204", "81.2.69.142", source="SERVER")
    assert await _where(located, userId="201") == _shown(LONDON)
    assert await _where(located, userId="202") == _shown(LONDON)
    assert await _where(located, userId="203") == NOWHERE
    assert await _contexts(located, userId="204") == [{"url": "https://shop.example.com/",
                                                       "userAgent": CHROME}]  # fmt: skip

    # Segment: a browser library's page through the proxy; a server library's track.
    messages = [
        {"type": "page", "userId": "gus", "timestamp": _ago(3),
         "context": {"library": {"name": "analytics.js"}}},
        {"type": "track", "event": "Invoice Paid", "userId": "hal", "timestamp": _ago(3),
         "context": {"library": {"name": "analytics-python"}}},
    ]  # fmt: skip
    response = await located.post(
        "/v1/batch",
        json={"batch": messages},
        auth=("any-write-key", ""),
        headers={"X-Forwarded-For": "2a02:8010::9"},
    )
    assert response.status_code == 200, response.text
    assert await _where(located, identity="gus") == _shown(BERLIN)
    assert [c.get("location") for c in await _contexts(located, identity="hal")] == [None]


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    untrusting: ServerClient,
) -> None:
    event = {"event": "pageview", "userId": "301", "source": "WEB", "timestamp": _ago(2),
             "context": _web()}  # fmt: skip
    response = await untrusting.post(
        "/graphql",
        json={"query": TRACK, "variables": {"input": event}},
        headers={"X-Forwarded-For": "81.2.69.142"},
    )
    assert response.json()["data"]["track"]["errors"] == [], response.text
    # The peer (127.0.0.1) is the client: a loopback address, which locates nothing.
    assert await _where(untrusting, userId="301") == NOWHERE
    # An explicit context.ip is still used.
    event = {**event, "userId": "302", "context": _web("81.2.69.142")}
    await _gql(untrusting, TRACK, input=event)
    assert await _where(untrusting, userId="302") == _shown(LONDON)


# ------------------------------------------------------------------ without the setting


async def test_without_a_database_the_clients_location_is_kept_as_before(
    plain: ServerClient,
) -> None:
    berlin = {"country": "Germany", "region": "Berlin", "city": "Berlin"}
    events = [
        {"event": "pageview", "userId": "401", "source": "WEB", "timestamp": _ago(6),
         "context": _web("81.2.69.142", location=berlin)},
        {"event": "pageview", "userId": "402", "source": "WEB", "timestamp": _ago(6),
         "context": _web("81.2.69.142")},
    ]  # fmt: skip
    response = await plain.post(
        "/graphql",
        json={"query": TRACK_BATCH, "variables": {"events": events}},
        headers={"X-Forwarded-For": "81.2.69.142"},
    )
    assert response.json()["data"]["trackBatch"]["accepted"] == 2, response.text
    assert await _where(plain, userId="401") == _shown(berlin)
    assert await _where(plain, userId="402") == NOWHERE
    # The IP address is not stored without a database either.
    assert [c.get("ip") for c in await _contexts(plain, userId="402")] == [None]
