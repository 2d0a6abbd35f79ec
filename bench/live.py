"""Live events: ingest → receive latency, and the server's memory under a stalled subscriber.

A fresh server process (bench/server.py) per database. A subscriber (graphql-transport-ws,
by hand with `websockets`) subscribes to `liveEvents`; single events are then tracked one
after the other, each timed from the request's start to the message's arrival (on
PostgreSQL the path goes through NOTIFY after the commit and the server's LISTEN). Then a
second subscriber stops reading while batches of events are stored: the server's peak RSS
before and after shows whether a slow client grows its memory (each subscription's queue is
bounded; what does not fit is dropped and counted).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import websockets
from rich.table import Table

from bench.server import ServerProcess

TRACK = "mutation($i: TrackInput!) { track(input: $i) { accepted } }"
BATCH = "mutation($e: [TrackInput!]!) { trackBatch(events: $e) { accepted } }"
LIVE = "subscription { liveEvents(filter: {type: %s}) { dropped event { type properties } } }"
STALLED_BATCH = 500
# Users of their own (far above the data set's ids): the figures after this stage's see none.
FLOOD_USERS = 9_000_000_000_000


async def _subscriber(url: str, event_type: str, **options: Any) -> Any:
    ws = await websockets.connect(
        url.replace("http://", "ws://") + "/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        **options,
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    query = LIVE % json.dumps(event_type)
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
    return ws


async def _latencies(client: httpx.AsyncClient, url: str, events: int) -> dict[str, Any]:
    ws = await _subscriber(url, "Bench Live")
    try:
        # The protocol does not acknowledge a subscription: wait for a first event to arrive.
        while True:
            await _track(client, -1)
            try:
                await asyncio.wait_for(ws.recv(), 0.5)
                break
            except TimeoutError:
                continue
        times = []
        for n in range(events):
            started = time.perf_counter()
            await _track(client, n)
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            times.append((time.perf_counter() - started) * 1000)
            assert message["payload"]["data"]["liveEvents"]["event"]["properties"]["n"] == n
    finally:
        await ws.close()
    times.sort()
    return {
        "events": events,
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
        "max_ms": round(times[-1], 2),
    }


async def _track(client: httpx.AsyncClient, n: int) -> None:
    body = {"event": "Bench Live", "userId": str(FLOOD_USERS - 1), "properties": {"n": n}}
    answer = (await client.post("/graphql", json={"query": TRACK, "variables": {"i": body}})).json()
    if answer.get("errors"):
        raise RuntimeError(answer["errors"])


async def _flood(client: httpx.AsyncClient, batches: int) -> None:
    for _ in range(batches):
        padding = {f"p{i}": secrets.token_hex(500) for i in range(2)}  # random: no compression
        events = [
            {"event": "Bench Flood", "userId": str(FLOOD_USERS + i), "properties": padding}
            for i in range(STALLED_BATCH)
        ]
        body = {"query": BATCH, "variables": {"e": events}}
        (await client.post("/graphql", json=body)).raise_for_status()
    await asyncio.sleep(1)  # the last notifications are read and queued (or dropped)


async def _stalled(
    client: httpx.AsyncClient, server: ServerProcess, batches: int
) -> dict[str, Any]:
    """The same flood three times: twice without a subscriber (what repeating it costs
    ingestion alone), then with a subscriber that never reads. The third flood growing the
    peak RSS no more than the second (plus the bounded queue) shows that a stalled subscriber
    does not grow the server's memory."""
    start = server.peak_rss_mb
    await _flood(client, batches)
    once = server.peak_rss_mb
    await _flood(client, batches)
    twice = server.peak_rss_mb
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    # No compression: the socket buffers hold what they would with any client.
    ws = await _subscriber(
        server.url, "Bench Flood", sock=sock, max_queue=4, compression=None, ping_interval=None
    )
    try:
        await _flood(client, batches)
        stalled = server.peak_rss_mb
        metrics = (await client.get("/metrics")).text
    finally:
        await ws.close()
    if start is None or once is None or twice is None or stalled is None:
        raise RuntimeError("the server's VmHWM could not be read")
    return {
        "events": batches * STALLED_BATCH,
        "dropped": int(_sample(metrics, "usertrail_live_dropped_events_total")),
        "queue_high_water": int(_sample(metrics, "usertrail_live_queue_high_water")),
        "peak_rss_mb": [round(start, 1), round(once, 1), round(twice, 1), round(stalled, 1)],
        "repeat_growth_mb": round(twice - once, 1),  # a flood again, nobody subscribed
        "stalled_growth_mb": round(stalled - twice, 1),  # the same, a stalled subscriber
    }


def _sample(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise RuntimeError(f"/metrics has no {name}")


async def measure(
    url: str, log: Path, *, events: int = 200, flood_batches: int = 40
) -> dict[str, Any]:
    """The figures of one database."""
    async with (
        ServerProcess(url, log) as server,
        httpx.AsyncClient(base_url=server.url, timeout=600) as client,
    ):
        latency = await _latencies(client, server.url, events)
        stalled = await _stalled(client, server, flood_batches)
    return {"latency": latency, "stalled": stalled}


def add_rows(table: Table, results: dict[str, Any]) -> None:
    """Rows for the bench's table: live latency and memory per database."""
    figures = results.get("live") or {}
    dialects = ("sqlite", "postgresql")
    table.add_row("[bold]Live events[/] (bench/live.py): liveEvents over graphql-transport-ws")
    table.add_row(
        "  track → message received, p50",
        *(f"{f['latency']['p50_ms']} ms" if (f := figures.get(d)) else "—" for d in dialects),
        " / ".join(
            f"p95 {f['latency']['p95_ms']} ms, max {f['latency']['max_ms']} ms"
            f" ({f['latency']['events']} events)"
            for d in dialects
            if (f := figures.get(d))
        ),
        "within a second (issue 21)",
    )
    table.add_row(
        "  server peak RSS growth over a flood, stalled subscriber",
        *(
            f"{f['stalled']['stalled_growth_mb']:+.1f} MB" if (f := figures.get(d)) else "—"
            for d in dialects
        ),
        " / ".join(
            f"{f['stalled']['repeat_growth_mb']:+.1f} MB for the same flood unsubscribed; "
            f"{f['stalled']['events']:,} events, {f['stalled']['dropped']:,} dropped, "
            f"queue ≤ {f['stalled']['queue_high_water']}"
            for d in dialects
            if (f := figures.get(d))
        ),
        "about the unsubscribed flood's: flat (issue 21)",
    )
