"""Concurrent writers through a real multi-worker server (SPEC §2, §9; issue 8).

Eight clients send interleaved events of the same twenty people through `usertrail serve
--workers 2`, over GraphQL trackBatch and the Heap bulk route, some requests twice (after
the answer, or racing the first send). Afterwards the stored sessions are those of a serial
ingestion of the same events, no event is stored twice, and identities are unique.
Concurrent identify calls merging the same anonymous users end in one consistent state.

On PostgreSQL writers of one user are serialised by advisory locks; on SQLite the two
worker processes share one file, and writers queue on its lock instead of failing.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest

from tests.factories import RawEvent, expected_partition, stored_partition
from tests.reliability.conftest import Spawn, default_environment
from tests.reliability.stored import duplicates, identity_owners, routes_of, stored_events, user_ids
from tests.reliability.workload import (
    Answer,
    Person,
    Request,
    Sender,
    arrival_order,
    generate_events,
    people,
    plan_requests,
)

CLIENTS = 8
WORKERS = 2
IDENTIFY = """
mutation($input: IdentifyInput!) {
  identify(input: $input) { merged user { userId identity } errors { code field message } }
}"""


async def _run(senders: list[Sender], jobs: list[Any], send: Any) -> list[tuple[Any, list[Any]]]:
    """Every job sent by one of the clients, each taking the next job as soon as it is free."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    done: list[tuple[Any, list[Any]]] = []

    async def client(sender: Sender) -> None:
        while not queue.empty():
            job = queue.get_nowait()
            done.append((job, await send(sender, job)))

    await asyncio.gather(*(client(s) for s in senders))
    return done


@dataclass
class Retried:
    """A request and how it is sent: once, again after the answer, or twice at once."""

    request: Request
    mode: str  # once | again | race


async def _send_retried(sender: Sender, job: Retried) -> list[Answer]:
    if job.mode == "race":
        return list(await asyncio.gather(sender.send(job.request), sender.send(job.request)))
    answers = [await sender.send(job.request)]
    if job.mode == "again":
        answers.append(await sender.send(job.request))
    return answers


async def _ingest_concurrently(
    url: str, persons: list[Person], requests: list[Request], rng: random.Random, events: list
) -> set[str]:
    """Send the requests from CLIENTS clients, some twice; the ways they were sent."""
    senders = [Sender(url, persons) for _ in range(CLIENTS)]
    for sender in senders:
        sender.mark_identifying(random.Random(7), events)
    jobs = [Retried(r, rng.choices(["once", "again", "race"], [8, 1, 1])[0]) for r in requests]
    try:
        done = await _run(senders, jobs, _send_retried)
    finally:
        for sender in senders:
            await sender.close()
    for job, answers in done:
        assert all(a.acknowledged and a.refused == 0 for a in answers), answers
        assert all(a.accepted + a.duplicates == len(job.request.events) for a in answers), answers
        assert sum(a.accepted for a in answers) == len(job.request.events), answers
    return {job.mode for job, _ in done}


async def test_eight_clients_through_two_workers_store_the_sessions_of_a_serial_ingestion(
    any_url: str, spawn: Spawn
) -> None:
    rng = random.Random(8)
    persons = people(20, identified=8)
    events = generate_events(rng, persons, per_person=(12, 30))
    requests = plan_requests(rng, arrival_order(rng, events), max_size=25)
    server = await spawn(any_url, workers=WORKERS)

    modes = await _ingest_concurrently(server.url, persons, requests, rng, events)
    assert modes == {"once", "again", "race"}

    db, environment_id = await default_environment(any_url)
    try:
        stored = await stored_events(db, environment_id)
        assert duplicates(stored) == {}
        assert sorted(e.key for e in stored) == sorted(e.key for e in events)
        assert await stored_partition(db, environment_id) == expected_partition(events)
        person_of = {e.key: e.user for e in events}
        users_of: dict[str, set[int]] = defaultdict(set)
        for event in stored:
            users_of[person_of[event.key]].add(event.user_id)
        assert all(len(users) == 1 for users in users_of.values()), users_of
        owners = await identity_owners(db, environment_id)
        assert owners == {
            p.identity: sorted(users_of[p.user_id]) for p in persons if p.identity is not None
        }
        # No stray users: every anonymous user of an identified person was merged away.
        assert await user_ids(db, environment_id) == {u for us in users_of.values() for u in us}
    finally:
        await db.dispose()


# --------------------------------------------------------------------- identify storm


@dataclass
class Identify:
    person: Person
    identity: str
    route: str  # graphql | heap


@dataclass
class Identified:
    outcome: str  # merged | kept | ALREADY_IDENTIFIED | ... | unavailable | failed
    user_id: str | None = None


async def _identify(sender: Sender, job: Identify | Request) -> list[Any]:
    if isinstance(job, Request):
        return [await sender.send(job)]
    who = {"user_id": job.person.user_id, "identity": job.identity}
    if job.route == "heap":
        response = await sender.http.post("/api/v1/identify", json={"app_id": "1", **who})
        body = response.json()
        if response.status_code == 200:
            return [Identified("merged" if body["merged"] else "kept", body["user_id"])]
        return [Identified(body.get("code", "failed"))]
    variables = {"input": {"userId": job.person.user_id, "identity": job.identity}}
    response = await sender.http.post("/graphql", json={"query": IDENTIFY, "variables": variables})
    body = response.json()
    if body.get("errors"):
        return [Identified("failed")]
    payload = body["data"]["identify"]
    if payload["errors"]:
        return [Identified(payload["errors"][0]["code"])]
    return [Identified("merged" if payload["merged"] else "kept", payload["user"]["userId"])]


async def test_concurrent_identify_calls_merge_each_anonymous_user_exactly_once(
    any_url: str, spawn: Spawn
) -> None:
    rng = random.Random(9)
    targets = [Person(f"t{i}", f"customer-{i}@example.com") for i in range(5)]
    anonymous = people(12, first_id=9300)
    contested = anonymous[:3]  # each asked to become two different customers at once
    setup = generate_events(rng, targets, per_person=(3, 8), prefix="t", sources=("SERVER",))
    setup += generate_events(rng, anonymous, per_person=(3, 10), prefix="a")
    later = generate_events(rng, anonymous, per_person=(2, 4), prefix="z")
    server = await spawn(any_url, workers=WORKERS)
    persons = [*targets, *anonymous]
    senders = [Sender(server.url, persons) for _ in range(CLIENTS)]
    try:
        ready = await _run(senders, plan_requests(rng, setup), _identify)
        assert all(a.acknowledged for _, answers in ready for a in answers)

        wanted = {p.user_id: targets[i % len(targets)] for i, p in enumerate(anonymous)}
        rivals = {p.user_id: targets[(i + 1) % len(targets)] for i, p in enumerate(contested)}
        jobs: list[Identify | Request] = [
            Identify(p, wanted[p.user_id].identity or "", route)
            for p in anonymous
            for route in ("graphql", "heap", "graphql")
        ]
        jobs += [Identify(p, rivals[p.user_id].identity or "", "heap") for p in contested]
        jobs += [Identify(p, rivals[p.user_id].identity or "", "graphql") for p in contested]
        jobs += plan_requests(rng, later, max_size=4, heap_share=0.3)
        rng.shuffle(jobs)
        done = await _run(senders, jobs, _identify)
    finally:
        for sender in senders:
            await sender.close()

    winner: dict[str, Person] = {}
    for person in anonymous:
        calls = [(j, a[0]) for j, a in done if isinstance(j, Identify) and j.person == person]
        merged = [job.identity for job, answer in calls if answer.outcome == "merged"]
        assert len(merged) == 1, (person, calls)  # merged exactly once
        winner[person.user_id] = next(t for t in targets if t.identity == merged[0])
        for job, answer in calls:
            expected = {"merged", "kept"} if job.identity == merged[0] else {"ALREADY_IDENTIFIED"}
            assert answer.outcome in expected, (person, job, answer)
        if person not in contested:
            assert winner[person.user_id] == wanted[person.user_id]
    for job, answers in done:
        if isinstance(job, Request):
            assert answers[0].acknowledged and answers[0].accepted == len(job.events), answers

    db, environment_id = await default_environment(any_url)
    try:
        owners = await identity_owners(db, environment_id)
        assert sorted(owners) == sorted(t.identity for t in targets if t.identity)
        assert all(len(users) == 1 for users in owners.values()), owners
        target_user = {t.user_id: owners[t.identity or ""][0] for t in targets}
        for person in anonymous:  # its userId routes to its customer; its own row is gone
            expected_user = target_user[winner[person.user_id].user_id]
            assert await routes_of(db, environment_id, person.user_id) == expected_user
        assert await user_ids(db, environment_id) == set(target_user.values())

        everything = [*setup, *later]
        stored = await stored_events(db, environment_id)
        assert duplicates(stored) == {}
        assert sorted(e.key for e in stored) == sorted(e.key for e in everything)
        union = [
            RawEvent(e.key, winner[e.user].user_id if e.user in winner else e.user, *_rest(e))
            for e in everything
        ]
        for target in targets:  # event counts add up: its own and those of everyone merged in
            want = sum(e.user == target.user_id for e in union)
            assert sum(s.user_id == target_user[target.user_id] for s in stored) == want
        assert await stored_partition(db, environment_id) == expected_partition(union)
    finally:
        await db.dispose()


def _rest(event: RawEvent) -> tuple[Any, ...]:
    return event.source, event.time, event.session_id, event.name


@pytest.mark.postgres
async def test_two_servers_on_one_postgres_database_interleave_safely(
    postgres_url: str, spawn: Spawn
) -> None:
    """Two server processes (not workers of one) on one database: §9's stateless servers."""
    rng = random.Random(10)
    persons = people(6, identified=3)
    events = generate_events(rng, persons, per_person=(10, 20))
    requests = plan_requests(rng, arrival_order(rng, events), max_size=10)
    first, second = await spawn(postgres_url), await spawn(postgres_url)
    halves = [requests[0::2], requests[1::2]]
    await asyncio.gather(
        *(
            _ingest_concurrently(s.url, persons, half, rng, events)
            for s, half in zip((first, second), halves, strict=True)
        )
    )
    db, environment_id = await default_environment(postgres_url)
    try:
        stored = await stored_events(db, environment_id)
        assert duplicates(stored) == {}
        assert len(stored) == len(events)
        assert await stored_partition(db, environment_id) == expected_partition(events)
    finally:
        await db.dispose()
