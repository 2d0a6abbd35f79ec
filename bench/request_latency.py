"""One request's latency: a 1000-event `trackBatch` of realistic ~1.7 KB click events.

The largest batch the API accepts must be stored within 6 s (issue 16). That is a figure of
the machine, so it is measured here, on a quiet server per database; the test suite only
checks that such a batch fits the limits and is stored (tests/server/test_limits.py, with the
same events). Each request carries fresh events (new idempotency keys), its body serialised
before the clock starts; one smaller batch warms the server up first.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.databases import Databases
from bench.server import ServerProcess

EVENTS = 1000  # the most one trackBatch takes (services/limits.py MAX_BATCH)
TARGET_SECONDS = 6.0
TRACK_BATCH = """mutation($events: [TrackInput!]!) {
  trackBatch(events: $events) { accepted duplicates errors { index code } } }"""
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


def realistic_event(n: int) -> dict[str, Any]:
    """A realistic client event of about 1.7 KB (a property at its 1024-character limit)."""
    return {
        "event": "click",
        "userId": str(10_000 + n % 50),
        "source": "WEB",
        "timestamp": f"2026-03-02T10:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z",
        "idempotencyKey": f"evt-{n:08d}",
        "context": {
            "url": f"https://shop.example.com/products/{n}?utm_source=newsletter&utm_medium=email",
            "userAgent": CHROME,
            "referrer": "https://www.google.com/",
            "title": "Product page — Example Shop",
        },
        "properties": {
            "hierarchy": "@body;|@div;#app;.layout;|@main;.content;|@section;.product;"
            f"[data-id={n}];|@div;.actions;|@button;.btn;.btn-primary;.add-to-cart;|",
            "target_text": "Add to cart",
            "price": 49.9,
            "currency": "EUR",
            "sku": f"SKU-{n:06d}",
            "category": "shoes/running/trail",
            "experiment": "checkout-v2",
            "note": "x" * 1000,
        },
    }


def batch_body(first: int, count: int = EVENTS) -> bytes:
    """A `trackBatch` request of `count` realistic events numbered from `first`."""
    events = [realistic_event(n) for n in range(first, first + count)]
    return orjson.dumps({"query": TRACK_BATCH, "variables": {"events": events}})


async def _post(client: httpx.AsyncClient, body: bytes, count: int) -> float:
    """Seconds until the answer to one request; raises unless every event was stored."""
    started = time.perf_counter()
    answer = await client.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    seconds = time.perf_counter() - started
    payload = answer.json().get("data") or {}
    stored = (payload.get("trackBatch") or {}).get("accepted")
    if answer.status_code != 200 or stored != count:
        raise RuntimeError(f"trackBatch answered {answer.status_code}: {answer.text:.300}")
    return seconds


async def measure(database_url: str, *, runs: int, log: Path) -> dict[str, Any]:
    """p50 and max seconds of `runs` requests of EVENTS events each, into `database_url`."""
    bodies = [batch_body(1_000_000 * (run + 1)) for run in range(runs)]
    async with ServerProcess(database_url, log) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=300) as client:
            await _post(client, batch_body(0, 100), 100)
            seconds = [await _post(client, body, EVENTS) for body in bodies]
    return {
        "events": EVENTS,
        "body_bytes": len(bodies[0]),
        "runs": runs,
        "p50_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
    }


async def run(
    databases: Databases, dialects: list[str], *, runs: int, say: Callable[[str], None]
) -> dict[str, Any]:
    """The figure on every dialect, each on a fresh database."""
    results: dict[str, Any] = {}
    for dialect in dialects:
        say(f"one {EVENTS}-event trackBatch request on {dialect}, {runs} times")
        label = "latency"
        url = await databases.of(dialect, label)
        log = databases.directory / f"server-{dialect}-{label}.log"
        results[dialect] = await measure(url, runs=runs, log=log)
    return results
