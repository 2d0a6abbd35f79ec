"""CORS on real servers: preflights and requests per route family, origins allowed and refused.

Requests carry the headers a browser sends (`Origin`, and for a preflight
`Access-Control-Request-Method` / `-Headers`); what a browser would then let the page read
is decided by the `Access-Control-Allow-*` headers asserted here. No answer ever carries
`Access-Control-Allow-Credentials`.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import orjson
import pytest

from models.db import Database
from services import environments, keys
from tests.conftest import start_server

APP = "https://app.example.com"
SHOP = "https://shop.example.com"
EVIL = "https://evil.example"
USERS = "{ users(first: 1) { edges { node { userId } } } }"
TRACK = """mutation($events: [TrackInput!]!) { trackBatch(events: $events) { accepted } }"""


@dataclass
class Keyed:
    """A real server outside dev mode with an environment, its app id and keys of each scope."""

    http: httpx.AsyncClient
    db: Database
    app_id: str
    keys: dict[str, str]


StartKeyed = Callable[..., Awaitable[Keyed]]


@pytest.fixture
async def start_keyed(database_url: str) -> AsyncIterator[StartKeyed]:
    """Starts production servers with the given settings; stops them at teardown."""
    running_servers = []

    async def start(**settings: object) -> Keyed:
        running, server, task = await start_server(database_url, dev=False, **settings)
        running_servers.append((server, task))
        environment = await environments.ensure(running.db, name="main")
        made = {
            scope: (await keys.create(running.db, environment="main", scope=scope))[1]
            for scope in keys.SCOPES
        }
        client = httpx.AsyncClient(base_url=running.url, timeout=60)
        clients.append(client)
        return Keyed(client, running.db, environment.app_id, made)

    clients: list[httpx.AsyncClient] = []
    yield start
    for client in clients:
        await client.aclose()
    for server, task in running_servers:
        server.should_exit = True
        await task


def preflight(origin: str, method: str = "POST", headers: str | None = None) -> dict[str, str]:
    """The headers of a browser's preflight from `origin`."""
    sent = {"origin": origin, "access-control-request-method": method}
    if headers is not None:
        sent["access-control-request-headers"] = headers
    return sent


def allow_headers(response: httpx.Response) -> set[str]:
    return {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}


def assert_refused_preflight(response: httpx.Response) -> None:
    """A preflight the browser fails: 4xx and no Access-Control-* header at all."""
    assert 400 <= response.status_code < 500, response.text
    assert not [k for k in response.headers if k.startswith("access-control-")], response.headers


def assert_no_credentials(*responses: httpx.Response) -> None:
    for response in responses:
        assert "access-control-allow-credentials" not in response.headers, response.headers


def segment_message(write_key: str, event: str) -> bytes:
    """A message as analytics.js posts it to /v1/t: text/plain, the write key in the body."""
    return orjson.dumps(
        {
            "writeKey": write_key,
            "anonymousId": "browser-1",
            "event": event,
            "context": {"library": {"name": "analytics.js", "version": "npm:next-1.70.0"}},
        }
    )


async def events_of(server: Keyed, anonymous_id: str = "browser-1") -> int:
    """How many events the environment holds (read with the read key)."""
    answer = await server.http.post(
        "/graphql",
        json={"query": "{ users(first: 10) { edges { node { eventCount } } } }"},
        headers={"authorization": f"Bearer {server.keys['read']}"},
    )
    edges = answer.json()["data"]["users"]["edges"]
    return sum(edge["node"]["eventCount"] for edge in edges)


# ------------------------------------------------------------------ outside dev mode


async def test_graphql_sends_no_cors_headers_by_default(start_keyed: StartKeyed) -> None:
    server = await start_keyed()
    asked = await server.http.options(
        "/graphql", headers=preflight(APP, headers="authorization,content-type")
    )
    assert_refused_preflight(asked)
    answer = await server.http.post(
        "/graphql",
        json={"query": USERS},
        headers={"origin": APP, "authorization": f"Bearer {server.keys['read']}"},
    )
    assert answer.status_code == 200 and answer.json()["data"]["users"]["edges"] == []
    assert "access-control-allow-origin" not in answer.headers
    assert_no_credentials(asked, answer)


async def test_graphql_preflight_and_requests_from_a_listed_origin(start_keyed: StartKeyed) -> None:
    server = await start_keyed(cors_origins=(APP, "http://localhost:5173"))
    asked = await server.http.options(
        "/graphql", headers=preflight(APP, headers="authorization,content-type")
    )
    assert asked.status_code == 200
    assert asked.headers["access-control-allow-origin"] == APP
    assert {"GET", "POST", "OPTIONS"} <= set(
        asked.headers["access-control-allow-methods"].split(", ")
    )
    assert {"authorization", "content-type"} <= allow_headers(asked)
    assert int(asked.headers["access-control-max-age"]) > 0
    assert "origin" in asked.headers["vary"].lower()

    read = {"origin": APP, "authorization": f"Bearer {server.keys['read']}"}
    posted = await server.http.post("/graphql", json={"query": USERS}, headers=read)
    got = await server.http.get("/graphql", params={"query": USERS}, headers=read)
    for answer in (posted, got):
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["users"]["edges"] == []
        assert answer.headers["access-control-allow-origin"] == APP
        assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()
    # A refusal reaches the page too, so that it can say why.
    unauthenticated = await server.http.post(
        "/graphql", json={"query": USERS}, headers={"origin": APP}
    )
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["access-control-allow-origin"] == APP

    # A listed loopback origin is an origin like any other outside dev mode.
    local = await server.http.options(
        "/graphql", headers=preflight("http://localhost:5173", headers="content-type")
    )
    assert local.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert_no_credentials(asked, posted, got, unauthenticated, local)


async def test_graphql_refuses_origins_not_listed(start_keyed: StartKeyed) -> None:
    server = await start_keyed(cors_origins=(APP,))
    for origin in (EVIL, "https://app.example.com.evil.example", "http://app.example.com", "null"):
        asked = await server.http.options(
            "/graphql", headers=preflight(origin, headers="authorization,content-type")
        )
        assert_refused_preflight(asked)
        answer = await server.http.post(
            "/graphql",
            json={"query": USERS},
            headers={"origin": origin, "authorization": f"Bearer {server.keys['read']}"},
        )
        assert not [k for k in answer.headers if k.startswith("access-control-")], origin
        assert "origin" in answer.headers["vary"].lower()
        assert_no_credentials(asked, answer)
    # A header the API does not take fails the preflight of a listed origin too.
    odd = await server.http.options("/graphql", headers=preflight(APP, headers="x-forwarded-for"))
    assert_refused_preflight(odd)


async def test_any_origin_with_star_and_never_credentials(start_keyed: StartKeyed) -> None:
    server = await start_keyed(cors_origins=("*",))
    asked = await server.http.options(
        "/graphql", headers=preflight(EVIL, headers="authorization,content-type")
    )
    assert asked.status_code == 200
    assert asked.headers["access-control-allow-origin"] == "*"
    answer = await server.http.post(
        "/graphql",
        json={"query": USERS},
        headers={"origin": EVIL, "authorization": f"Bearer {server.keys['read']}"},
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    assert_no_credentials(asked, answer)


async def test_ingestion_routes_take_any_origin_by_default(start_keyed: StartKeyed) -> None:
    """analytics.js and RudderStack post from customers' sites; Heap senders with an app_id."""
    server = await start_keyed()
    ingest = server.keys["ingest"]
    simple = await server.http.post(
        "/v1/t",
        content=segment_message(ingest, "Clicked"),
        headers={"origin": SHOP, "content-type": "text/plain"},
    )
    assert simple.status_code == 200, simple.text
    assert simple.headers["access-control-allow-origin"] == "*"

    # RudderStack's browser SDK: JSON, Basic auth and AnonymousId, so the browser asks first.
    asked = await server.http.options(
        "/v1/batch", headers=preflight(SHOP, headers="authorization,content-type,anonymousid")
    )
    assert asked.status_code == 200
    assert asked.headers["access-control-allow-origin"] == "*"
    assert {"authorization", "content-type", "anonymousid", "content-encoding"} <= allow_headers(
        asked
    )
    assert "POST" in asked.headers["access-control-allow-methods"]
    basic = base64.b64encode(f"{ingest}:".encode()).decode()
    batch = await server.http.post(
        "/v1/batch",
        json={"batch": [{"type": "track", "event": "Batched", "anonymousId": "browser-1"}]},
        headers={"origin": SHOP, "authorization": f"Basic {basic}", "anonymousid": "YnJvd3Nlci0x"},
    )
    assert batch.status_code == 200, batch.text
    assert batch.headers["access-control-allow-origin"] == "*"

    heap_asked = await server.http.options(
        "/api/track", headers=preflight(SHOP, headers="content-type")
    )
    assert heap_asked.status_code == 200
    heap = await server.http.post(
        "/api/track",
        json={"app_id": server.app_id, "identity": "ann", "event": "Paid"},
        headers={"origin": SHOP},
    )
    assert heap.status_code == 200, heap.text
    assert heap.headers["access-control-allow-origin"] == "*"
    # A refused write key is readable by the page, so that the SDK can report it.
    refused = await server.http.post(
        "/v1/t",
        content=segment_message("not-a-key", "Clicked"),
        headers={"origin": SHOP, "content-type": "text/plain"},
    )
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "*"
    assert await events_of(server) == 3
    # /graphql stays closed to that origin, and routes outside both families answer no CORS.
    graphql = await server.http.options("/graphql", headers=preflight(SHOP))
    assert_refused_preflight(graphql)
    health = await server.http.get("/healthz", headers={"origin": SHOP})
    assert "access-control-allow-origin" not in health.headers
    assert_no_credentials(simple, asked, batch, heap_asked, heap, refused, health)


async def test_ingestion_origins_can_be_narrowed(start_keyed: StartKeyed) -> None:
    server = await start_keyed(cors_origins=(APP,), cors_ingest_origins=())
    shop = await server.http.options("/v1/batch", headers=preflight(SHOP, headers="content-type"))
    assert_refused_preflight(shop)
    answer = await server.http.post(
        "/v1/t",
        content=segment_message(server.keys["ingest"], "Clicked"),
        headers={"origin": SHOP, "content-type": "text/plain"},
    )
    assert "access-control-allow-origin" not in answer.headers
    # USERTRAIL_CORS_ORIGINS applies to the ingestion routes as well.
    app = await server.http.options("/api/track", headers=preflight(APP, headers="content-type"))
    assert app.status_code == 200 and app.headers["access-control-allow-origin"] == APP
    assert_no_credentials(shop, answer, app)


# -------------------------------------------------------------------------- dev mode


@pytest.fixture
async def dev_http(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    running, server, task = await start_server(database_url, dev=True)
    async with httpx.AsyncClient(base_url=running.url, timeout=60) as client:
        yield client
    server.should_exit = True
    await task


@pytest.mark.parametrize(
    "origin",
    ["http://localhost:5173", "http://127.0.0.1:8080", "http://[::1]:3000", "http://localhost"],
)
async def test_dev_mode_answers_pages_on_loopback(dev_http: httpx.AsyncClient, origin: str) -> None:
    asked = await dev_http.options(
        "/graphql", headers=preflight(origin, headers="content-type,authorization")
    )
    assert asked.status_code == 200
    assert asked.headers["access-control-allow-origin"] == origin
    answer = await dev_http.post("/graphql", json={"query": USERS}, headers={"origin": origin})
    assert answer.status_code == 200 and answer.json()["data"]["users"] is not None
    assert answer.headers["access-control-allow-origin"] == origin
    ingest = await dev_http.options("/v1/batch", headers=preflight(origin, headers="content-type"))
    assert ingest.headers["access-control-allow-origin"] == origin
    assert_no_credentials(asked, answer, ingest)


async def test_dev_mode_refuses_pages_on_other_origins(dev_http: httpx.AsyncClient) -> None:
    """A page on the internet cannot drive a keyless server: refused before any route runs."""
    for origin in (EVIL, "null", "http://localhost.evil.example:5173"):
        asked = await dev_http.options(
            "/graphql", headers=preflight(origin, headers="content-type")
        )
        assert_refused_preflight(asked)
        # A "simple" request needs no preflight: the server itself must refuse it.
        mutation = await dev_http.post(
            "/graphql",
            json={"query": TRACK, "variables": {"events": [{"event": "Pwned", "userId": "x"}]}},
            headers={"origin": origin},
        )
        assert mutation.status_code == 403
        assert mutation.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN_ORIGIN"
        segment = await dev_http.post(
            "/v1/t",
            content=segment_message("any", "Pwned"),
            headers={"origin": origin, "content-type": "text/plain"},
        )
        assert segment.status_code == 403 and segment.json()["code"] == "FORBIDDEN_ORIGIN"
        heap = await dev_http.post(
            "/api/track",
            json={"app_id": "any", "identity": "x", "event": "Pwned"},
            headers={"origin": origin},
        )
        assert heap.status_code == 403
        for answer in (asked, mutation, segment, heap):
            assert "access-control-allow-origin" not in answer.headers
    users = await dev_http.post("/graphql", json={"query": USERS})
    assert users.json()["data"]["users"]["edges"] == []  # nothing was stored


async def test_dev_mode_refuses_a_host_that_is_not_loopback(dev_http: httpx.AsyncClient) -> None:
    """A DNS-rebinding page talks to 127.0.0.1 under its own name, same-origin: no Origin."""
    answer = await dev_http.get(
        "/graphql", params={"query": USERS}, headers={"host": "rebind.evil.example:8000"}
    )
    assert answer.status_code == 403
    assert "host" in answer.json()["errors"][0]["message"]
    for host in ("evil.example", "localhost.", "192.168.1.10:8000"):
        refused = await dev_http.get("/healthz", headers={"host": host})
        assert refused.status_code == 403, host
        assert refused.json()["code"] == "FORBIDDEN_ORIGIN"
    # In-process clients name hosts like `testserver`: no public DNS name has no dot.
    for host in ("localhost:8000", "127.0.0.1", "127.1.2.3:80", "[::1]:8000", "testserver"):
        fine = await dev_http.get("/healthz", headers={"host": host})
        assert fine.status_code == 200, host
