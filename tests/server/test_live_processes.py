"""Live events across processes on PostgreSQL (LISTEN/NOTIFY): subscribers on one server's
worker processes receive every event stored by any process of any server on the database,
through every ingestion route; Python (`gql`) and Node (`graphql-ws`) subscribers alike.

Each server is `usertrail serve` in processes of its own (tests/reliability/processes.py).
A subscription has no acknowledgement in graphql-transport-ws, so each test first sends probe
events until every subscriber has heard one: from then on its LISTEN is in place.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.node_subscriber import NodeSubscriber, node_for_graphql_ws
from tests.reliability.processes import ServerProcess
from tests.server.live_clients import WAIT_SECONDS, Subscriber, send_everywhere

pytestmark = pytest.mark.postgres

PROBE = """mutation {
  track(input: {event: "Probe", userId: "1", properties: {n: "probe"}}) { accepted }
}"""


@pytest.fixture
async def servers(postgres_url: str, tmp_path: Path) -> AsyncIterator[list[ServerProcess]]:
    """Server A with two worker processes and server B with one, on one database."""
    started = [
        ServerProcess(postgres_url, tmp_path, workers=2),
        ServerProcess(postgres_url, tmp_path, workers=1),
    ]
    try:
        await asyncio.gather(*(server.start() for server in started))
        yield started
    finally:
        for server in started:
            await server.stop()


async def probe_until_heard(http: httpx.AsyncClient, listeners: list[Any]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not all("probe" in listener.numbers() for listener in listeners):
        assert time.monotonic() < deadline, "a subscriber never heard a probe"
        answer = (await http.post("/graphql", json={"query": PROBE})).json()
        assert answer["data"]["track"]["accepted"] == 1, answer
        await asyncio.sleep(0.1)


async def until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not done():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_python_subscribers_hear_events_stored_by_other_processes(
    servers: list[ServerProcess],
) -> None:
    a, b = servers
    # Several connections to A: with two workers, the kernel spreads them over both.
    subscribers = [Subscriber(a.url) for _ in range(4)] + [Subscriber(b.url)]
    for subscriber in subscribers:
        await subscriber.__aenter__()
    try:
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=60) as to_a,
            httpx.AsyncClient(base_url=b.url, timeout=60) as to_b,
        ):
            await probe_until_heard(to_b, subscribers)
            sent = await send_everywhere(to_b, first=1)  # another server's process
            sent |= await send_everywhere(to_a, first=101)  # A's workers, either of them
            sent |= await send_everywhere(to_a, first=201)
        for subscriber in subscribers:
            await until(lambda s=subscriber: s.numbers() >= sent, f"every event: {sent}")
        await asyncio.sleep(0.3)
        for subscriber in subscribers:
            assert subscriber.numbers() - {"probe"} == sent
            numbered = [e for e in subscriber.events if e["properties"]["n"] != "probe"]
            assert len(numbered) == len(sent)  # each once
            assert all(m["dropped"] == 0 for m in subscriber.messages)
    finally:
        for subscriber in subscribers:
            await subscriber.__aexit__(None, None, None)


async def test_node_subscriber_hears_events_stored_by_another_server(
    servers: list[ServerProcess],
) -> None:
    node = node_for_graphql_ws()
    a, b = servers
    subscriber = await NodeSubscriber(node, a.url, 16).start()
    try:
        async with httpx.AsyncClient(base_url=b.url, timeout=60) as to_b:
            await probe_until_heard(to_b, [subscriber])
            sent = await send_everywhere(to_b, first=1)
            sent |= await send_everywhere(to_b, first=101)
        messages = await subscriber.finished()
        numbered = [m["event"] for m in messages if m["event"]["properties"]["n"] != "probe"]
        assert sorted(e["properties"]["n"] for e in numbered) == sorted(sent)
    finally:
        await subscriber.stop()
