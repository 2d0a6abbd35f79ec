"""What the hostile query tests share: a keyed production server over demo data, a /healthz
watch that runs beside an attack, and a snapshot of what is stored.

The server runs in the test's own event loop (tests/conftest.start_server): an attack that
blocks the server's loop delays the watch's polls just as it delays every other client, so
the watch's worst latency is the longest the server was blocked.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from models import Event, Segment, Session, User
from models.db import Database
from services import demo, environments, keys
from tests.conftest import start_server

T = TypeVar("T")

# Generous bounds against exponential blow-ups, not benchmarks (2 shared cores).
QUICK = 2.0  # seconds for a refusal or an answer
HEALTHY = 1.5  # seconds the slowest /healthz poll may take while an attack runs
POLL_EVERY = 0.05
# What no client should read: statements, tracebacks, modules, driver names.
INTERNALS = re.compile(
    r"\bSELECT\b|\bFROM\b|Traceback|\.py\b|sqlalchemy|sqlite3|asyncpg|json_extract|File \"",
    re.IGNORECASE,
)


@dataclass
class Shop:
    """A production server (dev=False) with one environment, `shop`, and a key per scope."""

    url: str
    db: Database
    environment_id: int
    keys: dict[str, str]
    http: httpx.AsyncClient
    app_id: str = ""

    async def graphql(self, scope: str, query: str, **variables: Any) -> httpx.Response:
        """POST an operation with the environment's key of `scope`."""
        return await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {self.keys[scope]}"},
        )

    async def data(self, scope: str, query: str, **variables: Any) -> dict[str, Any]:
        """The `data` of an operation that must answer without GraphQL errors."""
        response = await self.graphql(scope, query, **variables)
        assert response.status_code == 200 and not errors_of(response), response.text[:500]
        return dict(response.json()["data"])

    async def segment(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """POST to the Segment route `/v1/{path}` as a browser SDK does, with the ingest key."""
        return await self.http.post(f"/v1/{path}", json=body, auth=(self.keys["ingest"], ""))

    async def heap(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """POST to the Heap route `/api/{path}` with nothing but the public app id."""
        return await self.http.post(f"/api/{path}", json={"app_id": self.app_id, **body})


@asynccontextmanager
async def open_shop(
    database_url: str,
    *,
    people: int = 0,
    statement_timeout: float | None = None,
    **settings: Any,
) -> AsyncIterator[Shop]:
    """A production server over `database_url`, with `people` demo people in `shop`."""
    settings["dev"] = False
    if statement_timeout is not None:
        settings["statement_timeout"] = statement_timeout
    running, server, task = await start_server(database_url, **settings)
    try:
        db = running.db
        environment = await environments.ensure(db, name="shop")
        made = {
            scope: (await keys.create(db, environment="shop", scope=scope))[1]
            for scope in keys.SCOPES
        }
        if people:
            batches = demo.generate(users=people, days=14, seed=7)
            await demo.load(db, environment_id=environment.id, batches=batches)
        async with httpx.AsyncClient(base_url=running.url, timeout=120) as client:
            yield Shop(running.url, db, environment.id, made, client, environment.app_id)
    finally:
        server.should_exit = True
        await task


@dataclass
class HealthWatch:
    """Polls /healthz until stopped; `worst` is the slowest answer (or wait for one)."""

    url: str
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _poll(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    response = await client.get("/healthz")
                    if response.status_code != 200:
                        self.failures.append(f"HTTP {response.status_code}")
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                self.latencies.append(time.perf_counter() - started)
                await asyncio.sleep(POLL_EVERY)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)

    def assert_healthy(self) -> None:
        """/healthz answered 200 every time, and quickly, while the attack ran."""
        assert self.latencies, "the watch never polled"
        assert not self.failures, self.failures
        assert self.worst < HEALTHY, f"/healthz took {self.worst:.2f} s during the attack"


@asynccontextmanager
async def watching_health(url: str) -> AsyncIterator[HealthWatch]:
    """A HealthWatch polling while the block runs (its first poll done before the block)."""
    watch = HealthWatch(url)
    watch._task = asyncio.create_task(watch._poll())
    while not watch.latencies and not watch._task.done():
        await asyncio.sleep(0.01)
    try:
        yield watch
    finally:
        await asyncio.sleep(POLL_EVERY * 2)  # a poll after the attack answered
        watch._stop.set()
        await watch._task


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    """The call's result and how long it took, in seconds."""
    started = time.perf_counter()
    result = await call
    return result, time.perf_counter() - started


async def stored(shop: Shop) -> dict[str, Any]:
    """What the environment holds: counts of users, sessions, events, and the segments."""
    where = {
        "users": User.__table__,
        "sessions": Session.__table__,
        "events": Event.__table__,
    }
    async with shop.db.read() as conn:
        found: dict[str, Any] = {
            name: await conn.scalar(
                select(func.count()).where(table.c.environment_id == shop.environment_id)
            )
            for name, table in where.items()
        }
        segments = Segment.__table__
        rows = await conn.execute(
            select(segments.c.id, segments.c.name, segments.c.filter)
            .where(segments.c.environment_id == shop.environment_id)
            .order_by(segments.c.id)
        )
        found["segments"] = [tuple(row) for row in rows]
    return found


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    """The GraphQL errors of a response, checked to carry no internals."""
    assert response.status_code in (200, 400), response.text[:500]
    errors: list[dict[str, Any]] = response.json().get("errors") or []
    for error in errors:
        assert not INTERNALS.search(error["message"]), error["message"]
    return errors


def one_error(response: httpx.Response, code: str) -> dict[str, Any]:
    """The single GraphQL error of a response, which must have `code`."""
    errors = errors_of(response)
    assert [e.get("extensions", {}).get("code") for e in errors] == [code], errors
    return errors[0]


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the server logged as an error or with a traceback (it runs in the test process)."""
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def send_half_and_close(
    url: str, path: str, body: bytes, *, headers: dict[str, str], chunked: bool
) -> None:
    """POST headers announcing `body`, half of it, then close: a client leaving mid-body."""
    address = urlsplit(url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    half = body[: len(body) // 2]
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(len(body))}
    sent = {"Host": address.netloc, "Content-Type": "application/json", **headers, **framing}
    head = "".join(f"{name}: {value}\r\n" for name, value in sent.items())
    writer.write(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode())
    writer.write(f"{len(body):x}\r\n".encode() + half if chunked else half)
    await writer.drain()
    await asyncio.sleep(0.1)  # the server is reading the body when the client leaves
    writer.close()
    await writer.wait_closed()


async def wait_for_log(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    """The records whose message contains `text`, waiting up to 5 s for the first one."""
    for _ in range(200):
        if any(text in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.025)
    return [r for r in caplog.records if text in r.getMessage()]
