"""The `graphql-ws` npm client (graphql-transport-ws, what Apollo and Relay apps subscribe
with) receives live events from a real server, through every ingestion route and filtered.

tests/clients/graphql_ws pins the packages (package.json and its lock); they are installed
on first run into its node_modules, which git ignores (tests/node_packages.py: skipped with
the reason without node or npm, failed instead under CI).
"""

from __future__ import annotations

import asyncio

import httpx

from tests.clients.node_subscriber import NodeSubscriber, node_for_graphql_ws
from tests.conftest import RunningServer
from tests.server.live_clients import WAIT_SECONDS, send_everywhere


async def _subscribed(server: RunningServer, count: int) -> None:
    hub = server.app.state.usertrail.live  # type: ignore[attr-defined]
    for _ in range(WAIT_SECONDS * 100):
        if hub.subscriber_count() >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the subscriptions never reached the server's hub")


async def test_graphql_ws_receives_every_route_and_filters(server: RunningServer) -> None:
    node = node_for_graphql_ws()
    everything = await NodeSubscriber(node, server.url, 8).start()
    heap_only = await NodeSubscriber(node, server.url, 2, {"identity": "heap@example.com"}).start()
    try:
        await _subscribed(server, 2)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            sent = await send_everywhere(http, first=1)
        received = await everything.finished()
        assert {m["event"]["properties"]["n"] for m in received} == sent
        assert all(m["dropped"] == 0 and m["event"]["session"]["id"] for m in received)
        heap = await heap_only.finished()
        assert [m["event"]["type"] for m in heap] == ["Heap One", "Heap Bulk"]
        assert {m["event"]["user"]["identity"] for m in heap} == {"heap@example.com"}
    finally:
        await everything.stop()
        await heap_only.stop()
