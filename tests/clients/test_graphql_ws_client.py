"""The `graphql-ws` npm client (graphql-transport-ws, what Apollo and Relay apps subscribe
with) receives live events from a real server, through every ingestion route and filtered.

tests/clients/graphql_ws pins the packages (package.json and its lock); they are installed
on first run into its node_modules, which git ignores (tests/node_packages.py: skipped with
the reason without node or npm, failed instead under CI).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.node_packages import install
from tests.server.live_clients import WAIT_SECONDS, send_everywhere, ws_url

FOLDER = Path(__file__).parent / "graphql_ws"
PINNED = ("graphql-ws", "ws", "graphql")


async def _node_subscriber(
    node: str, server: RunningServer, count: int, live_filter: dict[str, Any] | None = None
) -> asyncio.subprocess.Process:
    arguments = [str(FOLDER / "subscribe.mjs"), ws_url(server.url), str(count)]
    if live_filter is not None:
        arguments.append(json.dumps(live_filter))
    process = await asyncio.create_subprocess_exec(
        node, *arguments, cwd=FOLDER, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), WAIT_SECONDS)
    assert line.decode().strip() == "connected", line
    return process


async def _messages(process: asyncio.subprocess.Process) -> list[dict[str, Any]]:
    out, err = await asyncio.wait_for(process.communicate(), WAIT_SECONDS)
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


async def _subscribed(server: RunningServer, count: int) -> None:
    hub = server.app.state.usertrail.live  # type: ignore[attr-defined]
    for _ in range(WAIT_SECONDS * 100):
        if hub.subscriber_count() >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the subscriptions never reached the server's hub")


async def test_graphql_ws_receives_every_route_and_filters(server: RunningServer) -> None:
    node = install(FOLDER, *PINNED, what="the graphql-ws client tests")
    everything = await _node_subscriber(node, server, 8)
    heap_only = await _node_subscriber(node, server, 2, {"identity": "heap@example.com"})
    await _subscribed(server, 2)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        sent = await send_everywhere(http, first=1)
    received = await _messages(everything)
    assert {m["event"]["properties"]["n"] for m in received} == sent
    assert all(m["dropped"] == 0 and m["event"]["session"]["id"] for m in received)
    heap = await _messages(heap_only)
    assert [m["event"]["type"] for m in heap] == ["Heap One", "Heap Bulk"]
    assert {m["event"]["user"]["identity"] for m in heap} == {"heap@example.com"}
