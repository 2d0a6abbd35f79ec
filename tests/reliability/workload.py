"""Generated ingestion workloads: people, their events, the requests that carry them
(GraphQL trackBatch, Heap bulk track, Segment batch), and clients that send them and say
what the server acknowledged (tests/reliability/stored.py reads back what was stored).

Every event carries its key as property `k` and as idempotency key (with a prefix), so a
retried request stores nothing twice and a stored event names its request.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from tests.factories import BASE, RawEvent
from tests.support import TRACK_BATCH

# An item every route refuses (a timestamp before 2000), sent among valid ones.
INVALID_TIME = "1990-01-01T00:00:00+00:00"


@dataclass(frozen=True)
class Person:
    """Someone using the product: the SDK's anonymous userId, and an identity if they log in."""

    user_id: str
    identity: str | None = None


def people(count: int, *, identified: int = 0, first_id: int = 9100) -> list[Person]:
    return [
        Person(str(first_id + i), f"person-{first_id + i}@example.com" if i < identified else None)
        for i in range(count)
    ]


def generate_events(
    rng: random.Random,
    persons: Iterable[Person],
    *,
    per_person: tuple[int, int] = (10, 30),
    prefix: str = "e",
    sources: tuple[str, ...] = ("WEB", "WEB", "IOS", "SERVER", "SERVER"),
) -> list[RawEvent]:
    """Events of every person on a minute grid over 8 hours (timeouts hit exactly), the
    first of each person from `sources[0]`; RawEvent.user is the person's userId."""
    events: list[RawEvent] = []
    for person in persons:
        count = rng.randint(*per_person)
        for i in range(count):
            source = sources[0] if i == 0 else rng.choice(sources)
            session_id = rng.choice([None, None, "s1", "s2"]) if source != "SERVER" else None
            minute = rng.randint(0, 8 * 60)
            events.append(
                RawEvent(
                    f"{prefix}{len(events)}",
                    person.user_id,
                    source,
                    BASE + timedelta(minutes=minute, seconds=rng.choice([0, 0, 17])),
                    session_id,
                    "pageview" if source != "SERVER" else "Invoice Paid",
                )
            )
    return events


def arrival_order(rng: random.Random, events: list[RawEvent]) -> list[RawEvent]:
    """Roughly in time order, with jitter; a fifth of the client events arrive at the end,
    as mobile batches do."""
    late = {e.key for e in events if e.source != "SERVER" and rng.random() < 0.2}
    jittered = sorted(
        (e for e in events if e.key not in late),
        key=lambda e: e.time + timedelta(minutes=rng.uniform(-90, 90)),
    )
    held = [e for e in events if e.key in late]
    rng.shuffle(held)
    return jittered + held


@dataclass
class Request:
    """One request of a workload: its route and events (plus `invalid` refused items)."""

    route: str  # graphql | heap | segment
    events: list[RawEvent]
    invalid: int = 0

    @property
    def size(self) -> int:
        return len(self.events) + self.invalid


def plan_requests(
    rng: random.Random,
    arrival: list[RawEvent],
    *,
    max_size: int = 25,
    heap_share: float = 0.5,
    invalid_share: float = 0.0,
) -> list[Request]:
    """Consecutive runs of the arrival order as requests: server events of a run go to the
    Heap API with probability `heap_share`, everything else through GraphQL."""
    requests: list[Request] = []
    start = 0
    while start < len(arrival):
        run = arrival[start : start + rng.randint(1, max_size)]
        start += len(run)
        server = [e for e in run if e.source == "SERVER"]
        if server and rng.random() < heap_share:
            requests.append(Request("heap", server))
            run = [e for e in run if e.source != "SERVER"]
        if run:
            requests.append(Request("graphql", run))
    for request in requests:
        if rng.random() < invalid_share:
            request.invalid = rng.randint(1, 2)
    return requests


@dataclass
class Answer:
    """What the server said to one request: acknowledged (2xx, or 400 with the valid items
    stored), unavailable (503 / GraphQL UNAVAILABLE) or lost (no answer)."""

    outcome: str  # acknowledged | unavailable | lost | failed
    status: int | None = None
    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def acknowledged(self) -> bool:
        return self.outcome == "acknowledged"


class Sender:
    """Sends workload requests to a server; events are routed as their person says."""

    def __init__(self, base_url: str, persons: Iterable[Person], *, key_prefix: str = ""):
        self.http = httpx.AsyncClient(base_url=base_url, timeout=60)
        self.by_user = {p.user_id: p for p in persons}
        self.key_prefix = key_prefix
        # Client events of identified people that also carry the identity (an identify call).
        self.identifying: set[str] = set()

    async def close(self) -> None:
        await self.http.aclose()

    def mark_identifying(self, rng: random.Random, events: list[RawEvent]) -> None:
        """The first client event of each identified person, and a third of the others."""
        seen: set[str] = set()
        for event in events:
            if event.source == "SERVER" or self.by_user[event.user].identity is None:
                continue
            if event.user not in seen or rng.random() < 0.3:
                self.identifying.add(event.key)
            seen.add(event.user)

    def graphql_item(self, event: RawEvent) -> dict[str, Any]:
        person = self.by_user[event.user]
        item = {**event.graphql_input(), "idempotencyKey": self.key_prefix + event.key}
        if event.source == "SERVER" and person.identity is not None:
            item |= {"userId": None, "identity": person.identity}
        elif event.key in self.identifying:
            item["identity"] = person.identity
        return item

    def heap_item(self, event: RawEvent) -> dict[str, Any]:
        person = self.by_user[event.user]
        who = {"identity": person.identity} if person.identity else {"user_id": event.user}
        return {
            "event": event.name,
            **who,
            "timestamp": event.time.isoformat(),
            "properties": {"k": event.key},
            "idempotency_key": self.key_prefix + event.key,
        }

    def segment_message(self, event: RawEvent) -> dict[str, Any]:
        person = self.by_user[event.user]
        who = {"userId": person.identity} if person.identity else {"anonymousId": event.user}
        return {
            "type": "track",
            "event": event.name,
            **who,
            "timestamp": event.time.isoformat(),
            "properties": {"k": event.key},
            "messageId": self.key_prefix + event.key,
        }

    async def send(self, request: Request) -> Answer:
        try:
            if request.route == "graphql":
                return await self._graphql(request)
            if request.route == "heap":
                return await self._heap(request)
            return await self._segment(request)
        except httpx.TransportError:
            return Answer("lost")

    async def _graphql(self, request: Request) -> Answer:
        items = [self.graphql_item(e) for e in request.events]
        items += [
            {"event": "broken", "userId": "1", "timestamp": INVALID_TIME}
            for _ in range(request.invalid)
        ]
        response = await self.http.post(
            "/graphql", json={"query": TRACK_BATCH, "variables": {"events": items}}
        )
        body = _json(response)
        headers = dict(response.headers)
        errors = body.get("errors") if isinstance(body, dict) else None
        if response.status_code == 200 and not errors:
            payload = body["data"]["trackBatch"]
            return Answer(
                "acknowledged",
                200,
                payload["accepted"],
                payload["duplicates"],
                len(payload["errors"]),
                body,
                headers,
            )
        codes = {(e.get("extensions") or {}).get("code") for e in errors or []}
        outcome = "unavailable" if codes == {"UNAVAILABLE"} else "failed"
        return Answer(outcome, response.status_code, body=body, headers=headers)

    async def _heap(self, request: Request) -> Answer:
        items = [self.heap_item(e) for e in request.events]
        items += [
            {"event": "broken", "user_id": "1", "timestamp": INVALID_TIME}
            for _ in range(request.invalid)
        ]
        response = await self.http.post("/api/track", json={"app_id": "1", "events": items})
        return _http_answer(response)

    async def _segment(self, request: Request) -> Answer:
        messages = [self.segment_message(e) for e in request.events]
        messages += [
            {"type": "track", "event": "broken", "anonymousId": "x", "timestamp": INVALID_TIME}
            for _ in range(request.invalid)
        ]
        response = await self.http.post(
            "/v1/batch", json={"batch": messages}, auth=("write-key", "")
        )
        return _http_answer(response)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"unparsable": response.text[:500]}


def _http_answer(response: httpx.Response) -> Answer:
    """Heap and Segment: 200, or 400 whose body counts the valid items stored all the same."""
    body = _json(response)
    headers = dict(response.headers)
    status = response.status_code
    if status == 503:
        return Answer("unavailable", status, body=body, headers=headers)
    if status in (200, 400) and isinstance(body, dict) and "accepted" in body:
        refused = len(body.get("errors", []))
        return Answer(
            "acknowledged", status, body["accepted"], body["duplicates"], refused, body, headers
        )
    return Answer("failed", status, body=body, headers=headers)


# ----------------------------------------------------------------------------- streaming


async def stream_requests(
    senders: list[Sender],
    requests: dict[int, Request],
    acknowledged: set[int],
    *,
    fault_after: int | None = None,
    fault: Callable[[], Awaitable[None]] | None = None,
) -> list[tuple[Request, Answer]]:
    """Send `requests` (by index) from every sender at once, each taking the next request
    when free; run `fault` once `fault_after` requests were acknowledged. Acknowledged
    indexes go into `acknowledged` (their counts checked); the other answers are returned."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in requests:
        queue.put_nowait(index)
    triggered = asyncio.Event()
    others: list[tuple[Request, Answer]] = []

    async def stream(sender: Sender) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            request = requests[index]
            answer = await sender.send(request)
            if answer.outcome == "lost" and fault is None:  # a kept-alive link to a dead server
                answer = await sender.send(request)
            if not answer.acknowledged:
                others.append((request, answer))
                continue
            assert answer.refused == request.invalid, answer
            assert answer.accepted + answer.duplicates == len(request.events), answer
            acknowledged.add(index)
            if fault_after is not None and len(acknowledged) >= fault_after:
                triggered.set()

    async def inject() -> None:
        assert fault is not None
        await triggered.wait()
        await fault()

    tasks = [stream(s) for s in senders]
    if fault is not None:
        tasks.append(inject())
    await asyncio.gather(*tasks)
    return others
