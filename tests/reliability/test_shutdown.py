"""SIGTERM stops a server gracefully: requests in flight finish and are stored, then it exits.

uvicorn stops accepting connections on SIGTERM and waits up to `timeout_graceful_shutdown`
(server/cli.py) for the requests it is serving. The test holds the SQLite write lock while
the batches arrive, so that every one of them is still waiting for the database when the
signal comes; then it lets go (well within the database's busy timeout).
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.reliability.conftest import Spawn, default_environment
from tests.reliability.stored import stored_events
from tests.support import TRACK_BATCH

BATCHES = 4
EVENTS = 300


def _batch(number: int) -> list[dict[str, object]]:
    rng = random.Random(number)
    start = datetime.now(UTC) - timedelta(hours=6)
    return [
        {
            "event": "pageview",
            "userId": str(8000 + rng.randrange(50)),
            "source": "WEB",
            "timestamp": (start + timedelta(seconds=rng.randrange(5 * 3600))).isoformat(),
            "properties": {"k": f"b{number}-{i}"},
        }
        for i in range(EVENTS)
    ]


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_finishes_requests_in_flight(
    sqlite_url: str, spawn: Spawn, workers: int
) -> None:
    server = await spawn(sqlite_url, workers=workers)
    writer = sqlite3.connect(make_url(sqlite_url).database or "", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the write lock every batch needs
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            sending = [
                asyncio.create_task(
                    client.post(
                        "/graphql", json={"query": TRACK_BATCH, "variables": {"events": _batch(n)}}
                    )
                )
                for n in range(BATCHES)
            ]
            await asyncio.sleep(1.0)  # every batch read, its transaction waiting for the lock
            assert not any(task.done() for task in sending), "a batch did not wait"
            server.terminate()
            await asyncio.sleep(0.5)
            writer.execute("COMMIT")  # the batches can go on now
            answers = await asyncio.gather(*sending)
            assert await server.wait_exit(30) in (0, -signal.SIGTERM)  # uvicorn re-raises it
            with pytest.raises(httpx.ConnectError):  # and it takes no new request
                await client.get("/healthz")
    finally:
        writer.close()

    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["trackBatch"]["accepted"] == EVENTS, answer.text
    db, environment_id = await default_environment(sqlite_url)
    try:
        assert len(await stored_events(db, environment_id)) == BATCHES * EVENTS
    finally:
        await db.dispose()
