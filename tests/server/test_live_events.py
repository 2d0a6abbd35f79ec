"""liveEvents over graphql-transport-ws on a real server: every ingestion route reaches the
subscribers, filters, keys and scopes, and a subscriber that stops reading (bounded queue,
dropped events counted in the stream)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import time
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import RunningServer, start_server
from tests.server.conftest import Tenants
from tests.server.live_clients import (
    WAIT_SECONDS,
    Subscriber,
    errors_of,
    raw_connection,
    received,
    send_everywhere,
    subscribe,
)

NODE_SESSION = "query($id: ID!) { node(id: $id) { ... on Event { session { id } } } }"
TRACK_BATCH = "mutation($e: [TrackInput!]!) { trackBatch(events: $e) { accepted } }"


async def subscribed(server: RunningServer, count: int) -> None:
    """Wait until the server's hub holds `count` subscriptions (graphql-transport-ws has no
    acknowledgement of a subscribe)."""
    hub = server.app.state.usertrail.live  # type: ignore[attr-defined]
    deadline = time.monotonic() + WAIT_SECONDS
    while hub.subscriber_count() < count:
        assert time.monotonic() < deadline, "the subscription never reached the hub"
        await asyncio.sleep(0.01)


async def test_events_from_every_route_reach_the_subscriber(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    async with Subscriber(server.url) as subscriber:
        await subscribed(server, 1)
        sent = await send_everywhere(http, first=1)
        await subscriber.wait_for(lambda s: s.numbers() >= sent, "every event")
        await asyncio.sleep(0.2)  # nothing else arrives
    assert sorted(subscriber.numbers()) == sorted(sent)
    assert len(subscriber.events) == len(sent)
    assert all(m["dropped"] == 0 for m in subscriber.messages)
    by_n = {e["properties"]["n"]: e for e in subscriber.events}
    assert by_n[1]["type"] == "Signed Up" and by_n[1]["user"]["userId"] == "501"
    assert by_n[1]["serverSide"] is True and by_n[1]["source"] == "SERVER"
    assert by_n[3]["user"]["identity"] == "five-oh-two@example.com"
    assert by_n[3]["source"] == "WEB" and by_n[3]["serverSide"] is False
    assert by_n[4]["type"] == "Heap One" and by_n[4]["user"]["identity"] == "heap@example.com"
    assert by_n[8]["type"] == "Segment Track"
    for event in subscriber.events:  # the nested session is the one the API shows
        node = (
            await http.post(
                "/graphql",
                json={
                    "query": NODE_SESSION,
                    "variables": {"id": event["id"]},
                },
            )
        ).json()
        assert node["data"]["node"]["session"]["id"] == event["session"]["id"]


async def test_filters(server: RunningServer, http: httpx.AsyncClient) -> None:
    filters: dict[str, dict[str, Any]] = {
        "user": {"userId": "501"},
        "identity": {"identity": "heap@example.com"},
        "type": {"type": "Heap Bulk"},
        "client": {"serverSide": False},
        "server": {"serverSide": True},
        "web": {"sources": ["WEB"]},
        "heap user's bulk": {"identity": "heap@example.com", "type": "Heap Bulk"},
    }
    # What each filter lets through, from what send_everywhere sends (numbered from 1).
    expected = {
        "user": {1},
        "identity": {4, 5},
        "type": {5, 6},
        "client": {2, 3},
        "server": {1, 4, 5, 6, 7, 8},
        "web": {2, 3},
        "heap user's bulk": {5},
    }
    subscribers = {name: Subscriber(server.url, live_filter=f) for name, f in filters.items()}
    everything = Subscriber(server.url)
    for subscriber in [*subscribers.values(), everything]:
        await subscriber.__aenter__()
    try:
        await subscribed(server, len(filters) + 1)
        sent = await send_everywhere(http, first=1)
        await everything.wait_for(lambda s: s.numbers() >= sent, "every event")
        for name, subscriber in subscribers.items():
            await subscriber.wait_for(lambda s, n=name: s.numbers() >= expected[n], name)
        await asyncio.sleep(0.3)  # the last events have reached every subscriber
        assert {name: s.numbers() for name, s in subscribers.items()} == expected
    finally:
        for subscriber in [*subscribers.values(), everything]:
            await subscriber.__aexit__(None, None, None)


async def test_bad_filter_is_an_error_naming_the_field(server: RunningServer) -> None:
    async with raw_connection(server.url) as ws:
        await subscribe(ws, {"userId": "1", "identity": "x"})
        errors = errors_of(await received(ws))
        assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "userId"}
        await subscribe(ws, {"userId": "not a number"}, id="2")
        errors = errors_of(await received(ws))
        assert errors[0]["extensions"] == {"code": "INVALID_USER_ID", "field": "userId"}


# ---------------------------------------------------------------------- keys and scopes


async def _refused_at_init(url: str, payload: dict[str, Any]) -> int | None:
    async with websockets.connect(
        url.replace("http://", "ws://") + "/graphql", subprotocols=["graphql-transport-ws"]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), WAIT_SECONDS)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_keys_and_scopes(tenants: Tenants) -> None:
    alpha = tenants.alpha
    assert await _refused_at_init(tenants.url, {}) == 4403
    assert await _refused_at_init(tenants.url, {"Authorization": "Bearer utk_" + "A" * 43}) == 4403
    assert (
        await _refused_at_init(tenants.url, {"Authorization": f"Bearer {tenants.revoked}"}) == 4403
    )
    # An ingest key connects but may not read the stream.
    async with raw_connection(
        tenants.url, {"Authorization": f"Bearer {alpha.keys['ingest']}"}
    ) as ws:
        await subscribe(ws)
        errors = errors_of(await received(ws))
        assert errors[0]["extensions"]["code"] == "FORBIDDEN", errors
        assert errors[0]["extensions"]["requiredScope"] == "read"
    # A read key streams its own environment's events, not another's.
    async with Subscriber(tenants.url, key=alpha.keys["read"]) as subscriber:
        headers = {"authorization": f"Bearer {alpha.keys['read']}"}
        async with raw_connection(tenants.url, additional_headers=headers) as by_header:
            await subscribe(by_header)
            track = "mutation($i: TrackInput!) { track(input: $i) { accepted } }"
            for tenant, n in ((tenants.beta, 1), (alpha, 2)):
                for _ in range(50):  # until the subscriptions are in place (no ack in the protocol)
                    response = await tenants.graphql(
                        tenant.keys["ingest"],
                        track,
                        i={"event": "Keyed", "userId": "9", "properties": {"n": n}},
                    )
                    assert response.json()["data"]["track"]["accepted"] == 1
                    if tenant is tenants.beta:
                        break
                    if subscriber.numbers():
                        break
                    await asyncio.sleep(0.1)
            await subscriber.wait_for(lambda s: 2 in s.numbers(), "alpha's event")
            message = await received(by_header)
            assert message["payload"]["data"]["liveEvents"]["event"]["properties"] == {"n": 2}
    assert subscriber.numbers() == {2}


async def test_origins_in_dev_mode(server: RunningServer) -> None:
    url = server.url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        url, subprotocols=["graphql-transport-ws"], origin="http://localhost:5173"
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
    for origin in ("https://evil.example", "http://10.0.0.1"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(
                url, subprotocols=["graphql-transport-ws"], origin=origin
            ):
                pass
        assert refused.value.response.status_code == 403


async def test_origins_outside_dev_mode(tenants: Tenants) -> None:
    url = tenants.url.replace("http://", "ws://") + "/graphql"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            url, subprotocols=["graphql-transport-ws"], origin="https://evil.example"
        ):
            pass
    assert refused.value.response.status_code == 403
    # A page on the server's own origin may connect (and still needs a key).
    async with raw_connection(
        tenants.url,
        {"Authorization": f"Bearer {tenants.alpha.keys['read']}"},
        origin=tenants.url,
    ):
        pass


# ------------------------------------------------------------------- a stalled subscriber


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


async def test_a_stalled_subscriber_is_bounded_and_told_what_it_lost(
    database_url: str,
) -> None:
    queue = 100
    running, server, task = await start_server(database_url, live_queue=queue)
    try:
        # A client that stops reading: a small receive buffer, no compression (which would
        # let the socket buffers absorb thousands of messages), and websockets stops reading
        # the socket once a few frames wait unread.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", int(running.url.rsplit(":", 1)[1])))
        async with raw_connection(running.url, sock=sock, max_queue=4, compression=None) as ws:
            await subscribe(ws)
            await subscribed(running, 1)
            # Batches smaller than the queue: only a stalled send can fill it. 4,000
            # messages of ~2 KB of random text outgrow the socket buffers (~4 MB at most).
            batches, size = 80, 50
            async with httpx.AsyncClient(base_url=running.url, timeout=120) as http:
                # The metrics are the process's: other tests' servers may have run in it.
                metrics = (await http.get("/metrics")).text
                queued_before = _metric(metrics, "usertrail_live_queued_events")
                dropped_before = _metric(metrics, "usertrail_live_dropped_events_total")
                for b in range(batches):
                    padding = {f"p{i}": secrets.token_hex(500) for i in range(2)}
                    events = [
                        {
                            "event": "Flood",
                            "userId": str(b * size + i + 1),
                            "properties": {"n": b * size + i, **padding},
                        }
                        for i in range(size)
                    ]
                    body = {"query": TRACK_BATCH, "variables": {"e": events}}
                    answer = (await http.post("/graphql", json=body)).json()
                    assert answer["data"]["trackBatch"]["accepted"] == size
                    metrics = (await http.get("/metrics")).text
                    assert _metric(metrics, "usertrail_live_queued_events") <= queued_before + queue
                deadline = time.monotonic() + WAIT_SECONDS
                while True:
                    metrics = (await http.get("/metrics")).text
                    if _metric(metrics, "usertrail_live_dropped_events_total") > dropped_before:
                        break
                    assert time.monotonic() < deadline, "nothing was dropped"
                    await asyncio.sleep(0.05)
                assert _metric(metrics, "usertrail_live_queued_events") <= queued_before + queue
            # Reading again: every event either arrives or is counted as dropped, in order.
            arrived: list[int] = []
            dropped = 0
            while len(arrived) + dropped < batches * size:
                message = await received(ws)
                assert message["type"] == "next", message
                live = message["payload"]["data"]["liveEvents"]
                dropped += live["dropped"]
                if live["event"] is not None:
                    arrived.append(live["event"]["properties"]["n"])
            assert dropped > 0
            assert len(arrived) + dropped == batches * size
            assert arrived == sorted(arrived)  # in the order they were stored
    finally:
        server.should_exit = True
        await task


async def test_a_subscription_over_http_says_to_use_websocket(http: httpx.AsyncClient) -> None:
    body = {"query": "subscription { liveEvents { dropped } }"}
    answer = (await http.post("/graphql", json=body)).json()
    assert answer["data"] is None
    [error] = answer["errors"]
    assert error["extensions"] == {"code": "SUBSCRIPTION_NEEDS_WEBSOCKET"}
    assert "graphql-transport-ws" in error["message"]
