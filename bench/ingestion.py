"""Ingestion throughput over real HTTP, beside the raw insert rate of the same rows (the limit).

The events are the demo population's (services/demo.py): web pageviews and clicks with
hierarchies, app events, server events. Each route gets them in its own wire format, in
batches of 500, pre-serialised before the clock starts, from `concurrency` clients at once,
into a fresh database behind a fresh `usertrail serve` process; one extra batch of other
events warms the server up first. The limit inserts the same rows into an equally fresh
events table: `executemany` per batch in its own transaction (SQLite, with the server's
pragmas) or one COPY per batch (PostgreSQL, asyncpg `copy_records_to_table`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count as counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from bench.databases import Databases, asyncpg_dsn
from bench.server import ServerProcess
from models.distribution import SESSION_SETTINGS
from services import demo
from services.autocapture import split_url
from services.clock import to_micros
from services.ingest import TrackItem

TRACK_BATCH = """mutation($events: [TrackInput!]!) {
  trackBatch(events: $events) { accepted duplicates errors { index code message } } }"""
WRITE_KEY = "bench-write-key"
BATCH_SIZE = 500  # events per request
CONCURRENCY = 4  # clients sending at once
SEGMENT_LIBRARIES = {
    "WEB": "analytics.js",
    "IOS": "analytics-ios",
    "ANDROID": "analytics-android",
    "SERVER": "analytics-python",
}


def demo_events(count: int, *, seed: int, days: int = 14) -> list[TrackItem]:
    """The first `count` events the demo population of `seed` sends."""
    found: list[TrackItem] = []
    for batch in demo.generate(users=max(count, 1000), days=days, seed=seed):
        found += batch.events
        if len(found) >= count:
            break
    return found[:count]


# ------------------------------------------------------------------------- wire formats


def graphql_body(items: Sequence[TrackItem]) -> dict[str, Any]:
    """A `trackBatch` request."""
    events = []
    for item in items:
        fields = {
            "event": item.event,
            "userId": item.user_id,
            "identity": item.identity,
            "source": item.source,
            "timestamp": item.timestamp,
            "properties": item.properties or None,
            "context": item.context or None,
        }
        events.append({k: v for k, v in fields.items() if v is not None})
    return {"query": TRACK_BATCH, "variables": {"events": events}}


def heap_body(items: Sequence[TrackItem]) -> dict[str, Any]:
    """A Heap bulk `/api/track` request: server-side events by user_id or identity."""
    events = []
    for item in items:
        event: dict[str, Any] = {"event": item.event, "timestamp": item.timestamp}
        if item.user_id is not None:  # the API takes one id: a client login sends both
            event["user_id"] = item.user_id
        else:
            event["identity"] = item.identity
        event["properties"] = {**_url_properties(item), **(item.properties or {})}
        events.append(event)
    return {"app_id": "bench", "events": events}


def segment_body(items: Sequence[TrackItem], run: str) -> dict[str, Any]:
    """A Segment `/v1/batch` request; every message has a messageId, as SDKs send."""
    messages = []
    for number, item in enumerate(items):
        context = item.context or {}
        message: dict[str, Any] = {
            "messageId": f"{run}-{number}-{hashlib.blake2b(repr(item).encode()).hexdigest()}",
            "timestamp": item.timestamp,
            "context": {"library": {"name": SEGMENT_LIBRARIES[item.source], "version": "1"}},
        }
        if item.identity is not None:
            message["userId"] = item.identity
        if item.user_id is not None:
            message["anonymousId"] = f"anon-{item.user_id}"
        if item.source == "WEB":
            page = {k: context[k] for k in ("url", "title", "referrer") if k in context}
            message["context"] |= {"userAgent": context.get("userAgent"), "page": page}
        elif item.source in ("IOS", "ANDROID"):
            message["context"]["app"] = {
                "name": context.get("appName"),
                "version": context.get("appVersion"),
            }
        properties = dict(item.properties or {})
        if item.event == "pageview":
            message |= {"type": "page", "name": context.get("title"), "properties": properties}
        elif item.event == "screenview":
            message |= {"type": "screen", "name": properties.pop("name", None)}
            message["properties"] = properties
        else:
            message |= {"type": "track", "event": item.event, "properties": properties}
        messages.append(message)
    return {"batch": messages, "sentAt": datetime.now(UTC).isoformat(timespec="milliseconds")}


def _url_properties(item: TrackItem) -> dict[str, Any]:
    return dict(split_url((item.context or {}).get("url")))


@dataclass(frozen=True, slots=True)
class Route:
    """An ingestion endpoint: its path, wire format and headers."""

    name: str
    path: str
    body: Callable[[Sequence[TrackItem], str], dict[str, Any]]
    headers: dict[str, str]

    def accepted(self, answer: dict[str, Any]) -> int:
        """Events the answer says were stored; raises when any was refused."""
        if self.path == "/graphql":
            if answer.get("errors"):
                raise RuntimeError(f"trackBatch failed: {answer['errors'][:1]}")
            payload = answer["data"]["trackBatch"]
            if payload["errors"]:
                raise RuntimeError(f"trackBatch refused items: {payload['errors'][:2]}")
            return int(payload["accepted"])
        return int(answer["accepted"])


SEGMENT_AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
ROUTES = (
    Route("GraphQL trackBatch", "/graphql", lambda items, run: graphql_body(items), {}),
    Route("Heap /api/track (bulk)", "/api/track", lambda items, run: heap_body(items), {}),
    Route("Segment /v1/batch", "/v1/batch", segment_body, {"authorization": SEGMENT_AUTH}),
)


# ------------------------------------------------------------------------------ HTTP


def request_bodies(
    route: Route, events: Sequence[TrackItem], batch_size: int, run: str
) -> list[bytes]:
    """`events` in `route`'s wire format, serialised, `batch_size` to a request."""
    return [
        orjson.dumps(route.body(events[i : i + batch_size], run))
        for i in range(0, len(events), batch_size)
    ]


async def _route_exists(client: httpx.AsyncClient, route: Route) -> bool:
    answer = await client.post(route.path, content=b"{}", headers=route.headers)
    return answer.status_code != 404


async def _send(
    client: httpx.AsyncClient, route: Route, bodies: list[bytes], concurrency: int
) -> int:
    """POST every body, `concurrency` at a time; the number of events the server accepted."""
    queue = list(reversed(bodies))
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        while queue:
            body = queue.pop()
            answer = await client.post(
                route.path,
                content=body,
                headers={"content-type": "application/json", **route.headers},
            )
            if answer.status_code != 200:
                raise RuntimeError(
                    f"{route.path} answered {answer.status_code}: {answer.text:.300}"
                )
            accepted += route.accepted(answer.json())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return accepted


async def measure_route(
    route: Route,
    database_url: str,
    events: list[TrackItem],
    warmup: list[TrackItem],
    *,
    batch_size: int,
    concurrency: int,
    log: Path,
) -> dict[str, Any]:
    """Events per second through `route` into `database_url`, and the server's peak RSS."""
    run = f"{route.path}-{time.time_ns()}"
    bodies = request_bodies(route, events, batch_size, run)
    async with ServerProcess(database_url, log) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=300) as client:
            if not await _route_exists(client, route):
                return {"skipped": f"{route.path} does not exist yet"}
            await _send(client, route, [orjson.dumps(route.body(warmup, run + "-w"))], 1)
            started = time.perf_counter()
            accepted = await _send(client, route, bodies, concurrency)
            seconds = time.perf_counter() - started
        rss = server.peak_rss_mb
    return {
        "events": accepted,
        "seconds": round(seconds, 3),
        "events_per_second": round(accepted / seconds, 1),
        "peak_rss_mb": round(rss, 1) if rss is not None else None,
    }


# ------------------------------------------------------------------------------ limit

EVENT_COLUMNS = (
    "environment_id",
    "user_id",
    "id",
    "session_id",
    "type",
    "time_us",
    "source",
    "client_session_id",
    "properties",
    "context",
    "replay",
    "received_us",
    "idempotency_key",
)


def raw_rows(items: Sequence[TrackItem], environment_id: int = 1) -> list[tuple[Any, ...]]:
    """The events-table rows of `items`, as the ingestion service would roughly store them."""
    received = time.time_ns() // 1000
    ids = counter(1)
    rows = []
    for item in items:
        if item.user_id is not None:
            user = int(item.user_id)
        else:
            digest = hashlib.blake2b(str(item.identity).encode(), digest_size=6).digest()
            user = int.from_bytes(digest, "big")
        context = item.context or {}
        properties = {**_url_properties(item), **(item.properties or {})}
        for key in ("title", "referrer"):
            if context.get(key):
                properties.setdefault(key, context[key])
        stamp = to_micros(datetime.fromisoformat(item.timestamp))
        rows.append(
            (
                environment_id,
                user,
                next(ids),
                user,
                item.event,
                stamp,
                item.source,
                None,
                orjson.dumps(properties).decode(),
                orjson.dumps(context).decode(),
                False,
                received,
                None,
            )
        )
    return rows


def sqlite_limit(path: Path, rows: list[tuple[Any, ...]], batch_size: int) -> float:
    """Events per second of executemany into the (migrated, empty) events table at `path`."""
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000"):
        connection.execute(f"PRAGMA {pragma}")
    statement = (
        f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})"
    )
    started = time.perf_counter()
    for offset in range(0, len(rows), batch_size):
        connection.execute("BEGIN")
        connection.executemany(statement, rows[offset : offset + batch_size])
        connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return len(rows) / seconds


async def postgres_limit(url: str, rows: list[tuple[Any, ...]], batch_size: int) -> float:
    """Events per second of one COPY per batch into the (migrated, empty) events table, on a
    connection set up as the server's are (on Citus: the connections it keeps per worker)."""
    conn = await asyncpg.connect(asyncpg_dsn(url), server_settings=dict(SESSION_SETTINGS))
    try:
        started = time.perf_counter()
        for offset in range(0, len(rows), batch_size):
            await conn.copy_records_to_table(
                "events", records=rows[offset : offset + batch_size], columns=EVENT_COLUMNS
            )
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return len(rows) / seconds


async def run(
    databases: Databases,
    dialects: list[str],
    *,
    events: int,
    batch_size: int,
    concurrency: int,
    seed: int,
    say: Callable[[str], None],
    rounds: int = 1,
) -> dict[str, Any]:
    """Every route on every dialect, and each dialect's limit, `rounds` times (round-robin, so
    that a slow spell of the machine falls on all of them): each figure is the median round,
    with every round's rate beside it."""
    items = demo_events(events + batch_size, seed=seed)
    warmup, measured = items[:batch_size], items[batch_size:]
    rows = raw_rows(measured)
    results: dict[str, Any] = {}
    for dialect in dialects:
        found: dict[str, list[dict[str, Any]]] = {}
        for round_number in range(1, rounds + 1):
            of = f" (round {round_number} of {rounds})" if rounds > 1 else ""
            for number, route in enumerate(ROUTES):
                label = f"ingest{number}r{round_number}"
                url = await databases.of(dialect, label)
                say(f"ingestion: {route.name} on {dialect}, {len(measured):,} events{of}")
                found.setdefault(route.name, []).append(
                    await measure_route(
                        route,
                        url,
                        measured,
                        warmup,
                        batch_size=batch_size,
                        concurrency=concurrency,
                        log=databases.directory / f"server-{dialect}-{label}.log",
                    )
                )
            say(f"ingestion: raw insert limit on {dialect}{of}")
            found.setdefault("limit", []).append(
                await _limit(databases, dialect, f"limitr{round_number}", rows, batch_size)
            )
        results[dialect] = {name: median_round(runs) for name, runs in found.items()}
    return results


async def _limit(
    databases: Databases, dialect: str, label: str, rows: list[tuple[Any, ...]], batch_size: int
) -> dict[str, Any]:
    if dialect == "sqlite":
        await databases.sqlite(label)
        rate = await asyncio.to_thread(sqlite_limit, databases.sqlite_path(label), rows, batch_size)
        return {"method": "executemany", "events_per_second": round(rate, 1)}
    rate = await postgres_limit(await databases.of(dialect, label), rows, batch_size)
    return {"method": "COPY", "events_per_second": round(rate, 1)}


def median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate (the lower middle one of an even count), with every
    round's rate in `rounds` and the largest peak RSS of all rounds; a skipped route's first
    answer."""
    measured = [run for run in runs if "events_per_second" in run]
    if not measured:
        return runs[0]
    ordered = sorted(measured, key=lambda run: run["events_per_second"])
    middle = dict(ordered[(len(ordered) - 1) // 2])
    if len(runs) > 1:
        middle["rounds"] = [run.get("events_per_second") for run in runs]
        rss = [run["peak_rss_mb"] for run in measured if run.get("peak_rss_mb") is not None]
        if rss:
            middle["peak_rss_mb"] = max(rss)
    return middle
