"""A bounded load run on loopback: a fixed number of mixed requests against a server subprocess.

    .venv/bin/python -m tests.reliability.load_run [--requests 2000] [--clients 16]
        [--workers 2] [--database-url URL] [--seed 1]

Starts `usertrail serve --dev` on a free loopback port (a fresh SQLite file in a temp dir
unless --database-url names a migrated database), then sends exactly --requests requests
from --clients concurrent clients: about 60% ingestion (GraphQL trackBatch, Heap bulk track,
Segment batch; 10 events each, with idempotency keys) and 40% queries (the users list, one
user's timeline, the sessions page). Prints throughput, p50/p99 latency per kind and the
error count (any non-2xx answer or GraphQL error). Exits 1 when there were errors.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.processes import ServerProcess
from tests.support import TRACK_BATCH

EVENTS_PER_REQUEST = 10
USERS = 200
QUERY_USERS = """
query {
  users(first: 20) { edges { node { userId eventCount lastSeen } } pageInfo { hasNextPage } }
}"""
QUERY_USER = """
query($userId: String) {
  user(userId: $userId) {
    userId sessionCount
    sessions(first: 10) { edges { node { startTime eventCount
      events(first: 20) { edges { node { type time } } } } } }
  }
}"""
QUERY_SESSIONS = """
query { sessions(first: 20) { edges { node { startTime source eventCount } } } }
"""


@dataclass
class Result:
    """What a load run measured."""

    requests: int = 0
    events: int = 0
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, kind: str | None, q: float) -> float:
        values = sorted(v for k, vs in self.latencies.items() if kind in (None, k) for v in vs)
        if not values:
            return 0.0
        return values[min(len(values) - 1, round(q * (len(values) - 1)))]

    def report(self) -> str:
        lines = [
            f"{self.requests} requests ({self.events} events) in {self.seconds:.1f} s: "
            f"{self.throughput:.0f} requests/s, {self.events / self.seconds:.0f} events/s",
            f"latency p50 {self.percentile(None, 0.5) * 1000:.1f} ms, "
            f"p99 {self.percentile(None, 0.99) * 1000:.1f} ms",
        ]
        for kind in sorted(self.latencies):
            values = self.latencies[kind]
            lines.append(
                f"  {kind:<14} {len(values):>5}  p50 {self.percentile(kind, 0.5) * 1000:7.1f} ms"
                f"  p99 {self.percentile(kind, 0.99) * 1000:7.1f} ms"
                f"  mean {statistics.fmean(values) * 1000:7.1f} ms"
            )
        lines.append(f"errors: {len(self.errors)}")
        lines += [f"  {error}" for error in self.errors[:10]]
        return "\n".join(lines)


class Mix:
    """The requests of a run, drawn from a seeded generator."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.now = datetime.now(UTC)
        self.sent = 0

    def _time(self) -> str:
        return (self.now - timedelta(minutes=self.rng.uniform(5, 24 * 60))).isoformat()

    def _user(self) -> str:
        return str(7_000_000 + self.rng.randrange(USERS))

    def _key(self) -> str:
        self.sent += 1
        return f"load-{self.now.timestamp():.0f}-{self.sent}"

    def next(self) -> tuple[str, str, dict[str, Any], int]:
        """(kind, path, JSON body, events carried) of the next request."""
        roll = self.rng.random()
        if roll < 0.25:
            events = [
                {
                    "event": self.rng.choice(["pageview", "click"]),
                    "userId": self._user(),
                    "source": self.rng.choice(["WEB", "IOS"]),
                    "timestamp": self._time(),
                    "properties": {"path": f"/p/{self.rng.randrange(50)}"},
                    "idempotencyKey": self._key(),
                }
                for _ in range(EVENTS_PER_REQUEST)
            ]
            body = {"query": TRACK_BATCH, "variables": {"events": events}}
            return "graphql-track", "/graphql", body, EVENTS_PER_REQUEST
        if roll < 0.45:
            events = [
                {
                    "event": "Invoice Paid",
                    "user_id": self._user(),
                    "timestamp": self._time(),
                    "properties": {"amount": self.rng.randrange(1, 500)},
                    "idempotency_key": self._key(),
                }
                for _ in range(EVENTS_PER_REQUEST)
            ]
            return "heap-track", "/api/track", {"app_id": "1", "events": events}, len(events)
        if roll < 0.6:
            messages = [
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"customer-{self.rng.randrange(USERS)}@example.com",
                    "timestamp": self._time(),
                    "properties": {"total": self.rng.randrange(1, 500)},
                    "messageId": self._key(),
                }
                for _ in range(EVENTS_PER_REQUEST)
            ]
            return "segment-batch", "/v1/batch", {"batch": messages, "writeKey": "k"}, 10
        if roll < 0.75:
            return "query-users", "/graphql", {"query": QUERY_USERS}, 0
        if roll < 0.9:
            body = {"query": QUERY_USER, "variables": {"userId": self._user()}}
            return "query-user", "/graphql", body, 0
        return "query-sessions", "/graphql", {"query": QUERY_SESSIONS}, 0


def _error(kind: str, response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return f"{kind}: HTTP {response.status_code} {response.text[:200]}"
    body = response.json()
    if isinstance(body, dict) and body.get("errors"):
        return f"{kind}: {body['errors'][:1]}"
    if kind == "graphql-track" and body["data"]["trackBatch"]["errors"]:
        return f"{kind}: {body['data']['trackBatch']['errors'][:1]}"
    return None


async def run_load(base_url: str, *, requests: int, clients: int, seed: int = 1) -> Result:
    """Send `requests` mixed requests from `clients` concurrent clients; what was measured."""
    mix = Mix(seed)
    plan = [mix.next() for _ in range(requests)]
    result = Result(requests=requests, events=sum(p[3] for p in plan))
    queue: asyncio.Queue[tuple[str, str, dict[str, Any], int]] = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            while not queue.empty():
                kind, path, body, _ = queue.get_nowait()
                started = time.perf_counter()
                try:
                    response = await http.post(path, json=body, auth=_auth(path))
                    error = _error(kind, response)
                except httpx.HTTPError as failure:
                    error = f"{kind}: {type(failure).__name__}: {failure}"
                result.latencies.setdefault(kind, []).append(time.perf_counter() - started)
                if error is not None:
                    result.errors.append(error)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    result.seconds = time.perf_counter() - started
    return result


def _auth(path: str) -> tuple[str, str] | None:
    return ("load-run", "") if path.startswith("/v1/") else None


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", help="a database to use (default: a fresh SQLite file)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="usertrail-load-"))
    url = args.database_url or f"sqlite+aiosqlite:///{directory / 'load.db'}"
    server = ServerProcess(url, directory, workers=args.workers)
    try:
        await server.start()
        print(f"server: {server.url}, {args.workers} worker(s), database {url}", flush=True)
        result = await run_load(
            server.url, requests=args.requests, clients=args.clients, seed=args.seed
        )
    finally:
        await server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    print(f"{args.clients} clients, {args.workers} worker(s)")
    print(result.report())
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
