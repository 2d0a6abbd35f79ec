"""Query shapes of the Users & Sessions pages: latency over HTTP, SQL statements in-process.

Latency: `runs` sequential requests per shape (after five warm-up requests) from one client
to a `usertrail serve` subprocess; p50 and p95 by nearest rank. Statements: the same shapes
against `server.app.create_app` in this process (httpx ASGITransport), reading the server's
`Database.statement_count` before and after, at a small and a large page size: the count
must not grow with the page. The segment pair (issue 9) runs the FILTERED_USERS filter inline
and saved as a segment (created once per database, found by name afterwards), one request of
each in turn, so that their ratio does not measure the machine's drift between two blocks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from server.app import create_app
from server.settings import Settings

USER_NODE = "userId displayName lastSeen sessionCount properties"
USERS_PAGE = f"""query($first: Int!) {{ users(first: $first) {{
  edges {{ node {{ {USER_NODE} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
USERS_FILTER = """{events: [{
  event: {type: "click", where: [{property: "target_text", op: EQUALS, value: "Add to cart"}]},
  atLeast: 2}]}"""
USERS_CONNECTION = f"edges {{ node {{ {USER_NODE} }} }} pageInfo {{ hasNextPage endCursor }}"
FILTERED_USERS = f"""query($first: Int!) {{ users(first: $first, filter: {USERS_FILTER}) {{
  {USERS_CONNECTION} }} }}"""
# Issue 9: the same filter saved as a segment, queried by its id.
SEGMENT_NAME = "bench: did click 'Add to cart' ≥ 2"
SEGMENT_USERS = f"""query($first: Int!, $segment: ID!) {{
  users(first: $first, filter: {{segmentId: $segment}}) {{ {USERS_CONNECTION} }} }}"""
SEGMENTS = "{ segments { id name } }"
CREATE_SEGMENT = f"""mutation($name: String!) {{
  createSegment(input: {{name: $name, filter: {USERS_FILTER}}}) {{
    segment {{ id name }} errors {{ field message code }} }} }}"""
TIMELINE = """query($userId: String!, $first: Int!) { user(userId: $userId) {
  userId displayName properties sessionCount
  sessions(first: $first) { edges { node {
    id startTime endTime source browser platform landingPage eventCount
    events(first: 50) { edges { node { id type name time source properties } } } } } } } }"""
SESSIONS_PAGE = """query($first: Int!) {
  sessions(first: $first, filter: {event: {type: "Order Completed"}}) {
    edges { node { id startTime endTime source browser platform deviceType landingPage
      eventCount user { userId displayName } } }
    pageInfo { hasNextPage endCursor } } }"""
NESTED = """query($first: Int!) { users(first: $first) { edges { node {
  userId identity lastSeen
  sessions(first: 5) { edges { node { startTime
    events(first: 10) { edges { node { type time properties } } } } } } } } } }"""
# Issue 16: the same, each user's oldest sessions and each session's latest events read
# backward (Relay's last/before): the same statements as forward.
NESTED_BACKWARD = NESTED.replace("sessions(first: 5)", "sessions(last: 5)").replace(
    "events(first: 10)", "events(last: 10)"
)


def _edges(connection: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [edge["node"] for edge in (connection or {}).get("edges", [])]


def _users_returned(data: dict[str, Any]) -> str:
    return f"{len(_edges(data['users']))} users"


def _timeline_returned(data: dict[str, Any]) -> str:
    sessions = _edges((data["user"] or {}).get("sessions"))
    events = sum(len(_edges(s["events"])) for s in sessions)
    return f"{len(sessions)} sessions, {events} events"


def _sessions_returned(data: dict[str, Any]) -> str:
    return f"{len(_edges(data['sessions']))} sessions"


def _nested_returned(data: dict[str, Any]) -> str:
    users = _edges(data["users"])
    sessions = [s for u in users for s in _edges(u["sessions"])]
    events = sum(len(_edges(s["events"])) for s in sessions)
    return f"{len(users)} users, {len(sessions)} sessions, {events} events"


@dataclass(frozen=True, slots=True)
class Shape:
    """One query of the Users & Sessions pages, at two page sizes."""

    key: str
    label: str
    query: str
    pages: tuple[int, int]  # (small, large): statements at both; latency at large
    returned: Callable[[dict[str, Any]], str]
    needs_user: bool = False
    needs_segment: bool = False

    def variables(self, first: int, user_id: str, segment_id: str | None = None) -> dict[str, Any]:
        """The query's variables for a page of `first`."""
        found: dict[str, Any] = {"first": first}
        if self.needs_user:
            found["userId"] = user_id
        if self.needs_segment:
            found["segment"] = segment_id
        return found


SHAPES = (
    Shape("users_page", "users page (50, default filter)", USERS_PAGE, (10, 50), _users_returned),
    Shape(
        "filtered_users",
        "users: did click 'Add to cart' ≥ 2",
        FILTERED_USERS,
        (10, 50),
        _users_returned,
    ),
    Shape(
        "timeline",
        "user timeline (20 sessions × ≤50 events)",
        TIMELINE,
        (5, 20),
        _timeline_returned,
        needs_user=True,
    ),
    Shape(
        "sessions_page",
        "sessions page: did 'Order Completed'",
        SESSIONS_PAGE,
        (10, 50),
        _sessions_returned,
    ),
    Shape(
        "nested",
        "nested users→sessions(5)→events(10)",
        NESTED,
        (10, 50),
        _nested_returned,
    ),
    Shape(
        "nested_backward",
        "nested users→sessions(last 5)→events(last 10)",
        NESTED_BACKWARD,
        (10, 50),
        _nested_returned,
    ),
    Shape(
        "segment_inline",
        "segment pair: inline filter (as above)",
        FILTERED_USERS,
        (10, 50),
        _users_returned,
    ),
    Shape(
        "segment_saved",
        "segment pair: users(filter: {segmentId})",
        SEGMENT_USERS,
        (10, 50),
        _users_returned,
        needs_segment=True,
    ),
)
# (saved, inline): the saved form's p50 over the inline one's (issue 9: ≤ 1.10).
SEGMENT_PAIR = ("segment_saved", "segment_inline")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


async def post(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The `data` of a GraphQL request; raises on HTTP or GraphQL errors."""
    answer = await client.post("/graphql", json={"query": query, "variables": variables})
    body = answer.json()
    if answer.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"query failed ({answer.status_code}): {str(body)[:400]}")
    return dict(body["data"])


WARM_UP = 5  # requests of each before the measured ones (a fresh server's first are slower)
Request = tuple[httpx.AsyncClient, str, dict[str, Any], Callable[[dict[str, Any]], str]]


async def latencies(
    requests: list[Request], *, runs: int, max_seconds: float
) -> list[dict[str, Any]]:
    """p50/p95 of each request (client, query, variables, what it returned) over `runs` rounds
    that send each request once, in turn (fewer rounds if they would take longer than
    `max_seconds` each): a slow spell of the machine falls on all of them alike, which matters
    where their ratio is the figure."""
    answers = []
    for client, query, variables, _ in requests:
        for _ in range(WARM_UP):
            data = await post(client, query, variables)
        answers.append(data)
    timings: list[list[float]] = [[] for _ in requests]
    budget = time.perf_counter() + max_seconds * len(requests)
    while len(timings[0]) < runs and (len(timings[0]) < 5 or time.perf_counter() < budget):
        for spent, (client, query, variables, _) in zip(timings, requests, strict=True):
            started = time.perf_counter()
            await post(client, query, variables)
            spent.append((time.perf_counter() - started) * 1000)
    return [
        {
            "p50_ms": round(percentile(spent, 0.5), 2),
            "p95_ms": round(percentile(spent, 0.95), 2),
            "runs": len(spent),
            "returned": returned(data),
        }
        for spent, data, (*_, returned) in zip(timings, answers, requests, strict=True)
    ]


async def ensure_segment(client: httpx.AsyncClient) -> str:
    """The id of the bench's segment (USERS_FILTER saved), created unless it exists by name."""
    for segment in (await post(client, SEGMENTS, {}))["segments"]:
        if segment["name"] == SEGMENT_NAME:
            return str(segment["id"])
    payload = (await post(client, CREATE_SEGMENT, {"name": SEGMENT_NAME}))["createSegment"]
    if payload["errors"] or not payload["segment"]:
        raise RuntimeError(f"createSegment failed: {payload['errors']}")
    return str(payload["segment"]["id"])


async def measure(
    base_url: str, user_id: str, *, runs: int, max_seconds: float
) -> dict[str, dict[str, Any]]:
    """Latency of every shape against the server at `base_url`."""
    results = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as client:
        segment_id = await ensure_segment(client)
        # The segment pair's ratio is a figure: its two shapes are measured in turn.
        pair = [s for s in SHAPES if s.key in SEGMENT_PAIR]
        batches = [[s] for s in SHAPES if s.key not in SEGMENT_PAIR] + ([pair] if pair else [])
        for shapes in batches:
            found = await latencies(
                [
                    (client, s.query, s.variables(s.pages[1], user_id, segment_id), s.returned)
                    for s in shapes
                ],
                runs=runs,
                max_seconds=max_seconds,
            )
            results.update({s.key: f for s, f in zip(shapes, found, strict=True)})
    return {s.key: results[s.key] for s in SHAPES}


async def statement_counts(database_url: str, user_id: str) -> dict[str, dict[str, int]]:
    """SQL statements per shape at its small and large page size, counted in-process."""
    app = create_app(Settings(database_url=database_url, dev=True))
    results: dict[str, dict[str, int]] = {}
    async with app.router.lifespan_context(app):
        db = app.state.usertrail.db
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await post(client, "{ __typename }", {})
            segment_id = await ensure_segment(client)
            for shape in SHAPES:
                counts = {}
                for size, first in zip(("small", "large"), shape.pages, strict=True):
                    variables = shape.variables(first, user_id, segment_id)
                    await post(client, shape.query, variables)  # environment, caches warm
                    before = db.statement_count
                    await post(client, shape.query, variables)
                    counts[f"{size}_page_{first}"] = db.statement_count - before
                results[shape.key] = counts
    return results
