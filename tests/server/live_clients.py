"""Live event subscribers for tests (the `gql` client over graphql-transport-ws, and the
protocol by hand with `websockets`), and events sent through every ingestion route."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import websockets
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

LIVE = """
subscription($filter: LiveEventFilter) {
  liveEvents(filter: $filter) {
    dropped
    event { id type source serverSide properties user { userId identity } session { id } }
  }
}"""
PROTOCOL = "graphql-transport-ws"
WAIT_SECONDS = 30  # generous: only a bound on a test that would otherwise hang


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/graphql"


class Subscriber:
    """A `gql` subscription to liveEvents; its messages collect in `messages`."""

    def __init__(self, base_url: str, *, live_filter: dict[str, Any] | None = None, key: str = ""):
        payload = {"Authorization": f"Bearer {key}"} if key else {}
        transport = WebsocketsTransport(
            url=ws_url(base_url),
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload=payload,
        )
        self.client = Client(transport=transport)
        self.request = GraphQLRequest(LIVE, variable_values={"filter": live_filter})
        self.messages: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Subscriber:
        session = await self.client.connect_async()

        async def collect() -> None:
            async for result in session.subscribe(self.request):
                self.messages.append(result["liveEvents"])

        self._task = asyncio.create_task(collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        if self._task.done():
            self._task.result()  # a subscription that failed says why
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.client.close_async()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [m["event"] for m in self.messages if m["event"] is not None]

    def numbers(self) -> set[Any]:
        """The `n` property of each event received."""
        return {e["properties"].get("n") for e in self.events}

    async def wait_for(self, done: Callable[[Subscriber], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not done(self):
            if self._task is not None and self._task.done():
                self._task.result()
            assert time.monotonic() < deadline, f"{what}: got {self.numbers()}"
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def raw_connection(
    base_url: str, payload: dict[str, Any] | None = None, **options: Any
) -> AsyncIterator[websockets.ClientConnection]:
    """A graphql-transport-ws connection written by hand, acknowledged."""
    async with websockets.connect(ws_url(base_url), subprotocols=[PROTOCOL], **options) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), WAIT_SECONDS))
        assert ack["type"] == "connection_ack", ack
        yield ws


async def subscribe(
    ws: Any, live_filter: dict[str, Any] | None = None, query: str = LIVE, id: str = "1"
) -> None:
    message = {"query": query, "variables": {"filter": live_filter}}
    await ws.send(json.dumps({"id": id, "type": "subscribe", "payload": message}))


async def received(ws: Any) -> dict[str, Any]:
    """The next `next` or `error` message (skipping `complete`)."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT_SECONDS))
        if message["type"] != "complete":
            return message


def errors_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The GraphQL errors of an `error` message, or of a `next` one."""
    assert message["type"] in ("error", "next"), message
    found: list[dict[str, Any]] = (
        message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    )
    return found


# ------------------------------------------------------------------ every ingestion route


async def send_everywhere(http: httpx.AsyncClient, first: int) -> set[int]:
    """Events numbered from `first` through GraphQL, Heap and Segment; their numbers."""
    n = first
    numbers: list[int] = []

    def next_n() -> int:
        nonlocal n
        numbers.append(n)
        n += 1
        return n - 1

    track = "mutation($i: TrackInput!) { track(input: $i) { accepted errors { message } } }"
    body = {"event": "Signed Up", "userId": "501", "properties": {"n": next_n()}}
    answer = (await http.post("/graphql", json={"query": track, "variables": {"i": body}})).json()
    assert answer["data"]["track"]["accepted"] == 1, answer
    batch = "mutation($e: [TrackInput!]!) { trackBatch(events: $e) { accepted } }"
    events = [
        {"event": "pageview", "userId": "502", "source": "WEB", "properties": {"n": next_n()}},
        # Both ids: a client login, identify and track at once.
        {
            "event": "click",
            "userId": "502",
            "identity": "five-oh-two@example.com",
            "source": "WEB",
            "properties": {"n": next_n()},
        },
    ]
    answer = (await http.post("/graphql", json={"query": batch, "variables": {"e": events}})).json()
    assert answer["data"]["trackBatch"]["accepted"] == 2, answer
    heap_one = {"app_id": "1", "identity": "heap@example.com", "event": "Heap One"}
    answer = (
        await http.post("/api/track", json={**heap_one, "properties": {"n": next_n()}})
    ).json()
    assert answer["accepted"] == 1, answer
    heap_bulk = {
        "app_id": "1",
        "events": [
            {"identity": "heap@example.com", "event": "Heap Bulk", "properties": {"n": next_n()}},
            {"identity": "bulk@example.com", "event": "Heap Bulk", "properties": {"n": next_n()}},
        ],
    }
    assert (await http.post("/api/track", json=heap_bulk)).json()["accepted"] == 2
    segment = [
        {
            "type": "track",
            "event": "Segment Track",
            "userId": "seg-1",
            "properties": {"n": next_n()},
        },
        {
            "type": "track",
            "event": "Segment Track",
            "anonymousId": "anon-1",
            "properties": {"n": next_n()},
        },
    ]
    answer = (await http.post("/v1/batch", json={"batch": segment}, auth=("dev-key", ""))).json()
    assert answer["accepted"] == 2, answer
    return set(numbers)
