"""Group commit (services/batching.py): requests that arrive while a write runs are written
together, each with its own result; a request that fails fails alone."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from models.db import Database
from services import environments, ingest
from services.batching import GroupWriter, Run, in_slices
from services.ingest import TrackItem
from tests.factories import BASE


@pytest.fixture
def sqlite_only(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("only SQLite merges writes (PostgreSQL writes run concurrently)")


async def test_requests_arriving_during_a_write_are_merged(db: Database, sqlite_only: None) -> None:
    batches: list[list[str]] = []
    release = asyncio.Event()

    async def run(conn: AsyncConnection, requests: Sequence[str]) -> list[str]:
        batches.append(list(requests))
        if len(batches) == 1:
            await release.wait()  # the first write is slow: the others queue up behind it
        await conn.execute(text("SELECT 1"))
        return [r.upper() for r in requests]

    writer: GroupWriter = GroupWriter(db)
    first = asyncio.create_task(writer.submit(run, "a", 1))
    await asyncio.sleep(0.01)
    rest = [asyncio.create_task(writer.submit(run, name, 1)) for name in "bcd"]
    await asyncio.sleep(0.01)
    release.set()
    assert await first == "A"
    assert [await task for task in rest] == ["B", "C", "D"]
    assert batches == [["a"], ["b", "c", "d"]]


async def test_a_merged_write_is_bounded_in_items(db: Database, sqlite_only: None) -> None:
    batches: list[list[int]] = []

    async def run(conn: AsyncConnection, requests: Sequence[int]) -> list[int]:
        batches.append(list(requests))
        return list(requests)

    writer: GroupWriter = GroupWriter(db, max_items=5)
    assert await asyncio.gather(*(writer.submit(run, n, 2) for n in range(5))) == list(range(5))
    assert all(len(batch) * 2 <= 5 for batch in batches)
    assert sum(batches, []) == list(range(5))


async def test_a_failing_request_fails_alone(db: Database, sqlite_only: None) -> None:
    async def run(conn: AsyncConnection, requests: Sequence[str]) -> list[str]:
        await conn.execute(text("SELECT 1"))
        if "poison" in requests:
            raise ValueError("poison")
        return list(requests)

    writer: GroupWriter = GroupWriter(db)
    answers = await asyncio.gather(
        *(writer.submit(run, name, 1) for name in ("x", "y", "poison", "z")), return_exceptions=True
    )
    assert answers[:2] == ["x", "y"] and answers[3] == "z"
    assert isinstance(answers[2], ValueError)


async def test_a_cancelled_caller_leaves_the_others_answered(
    db: Database, sqlite_only: None
) -> None:
    release = asyncio.Event()

    async def run(conn: AsyncConnection, requests: Sequence[str]) -> list[str]:
        await release.wait()
        return list(requests)

    writer: GroupWriter = GroupWriter(db)
    first = asyncio.create_task(writer.submit(run, "a", 1))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(writer.submit(run, "b", 1))
    kept = asyncio.create_task(writer.submit(run, "c", 1))
    await asyncio.sleep(0.01)
    gone.cancel()
    release.set()
    assert (await first, await kept) == ("a", "c")


def _event(n: int, user: str, key: str | None = None) -> TrackItem:
    return TrackItem(
        event="Order Completed",
        user_id=user,
        timestamp=BASE + timedelta(minutes=n),
        properties={"n": n},
        idempotency_key=key,
    )


async def test_concurrent_track_calls_keep_their_own_outcomes(db: Database) -> None:
    """Whether merged (SQLite) or not: each call's counts, indexes and duplicates are its own,
    and a key sent by two calls at once is stored once."""
    environment_id = (await environments.ensure(db, name=f"merge-{secrets.token_hex(4)}")).id
    calls = [
        [_event(0, "1", "k1"), _event(1, "2"), _event(2, "1", "shared")],
        [_event(3, "2", "shared"), _event(4, "3", "k4")],
        [_event(5, "1", "k1-again"), TrackItem(event="", user_id="1")],
        [_event(6, "4"), _event(7, "4"), _event(8, "4", "k8"), _event(9, "4", "k8")]
        + [_event(10, "4", "k4")],  # the key of an event of the second call
    ]
    outcomes = await asyncio.gather(
        *(ingest.track(db, environment_id=environment_id, items=items) for items in calls)
    )
    first, second, third, fourth = outcomes
    assert (third.accepted, [(p.index, p.code) for p in third.problems]) == (
        1,
        [(1, "INVALID_EVENT_NAME")],
    )
    # "shared" and "k4" are stored once each, for whichever call came first; "k8" once
    assert first.accepted + second.accepted + fourth.accepted == 7
    assert [o.duplicates for o in outcomes] != [0, 0, 0, 0]
    assert sum(o.duplicates for o in outcomes) == 3
    assert {0, 1} <= set(first.stored) <= {0, 1, 2}
    assert {0, 1, 2} <= set(fourth.stored) <= {0, 1, 2, 4}  # 3 repeats "k8"
    async with db.read() as conn:
        stored = await conn.scalar(
            text("SELECT count(*) FROM events WHERE environment_id = :e"), {"e": environment_id}
        )
    assert stored == sum(o.accepted for o in outcomes) == 8
    assert all(len(o.stored) == o.accepted for o in outcomes)


async def test_requests_of_several_kinds_share_a_write(db: Database, sqlite_only: None) -> None:
    calls: list[tuple[str, list[str]]] = []
    release = asyncio.Event()

    async def slow(conn: AsyncConnection, requests: Sequence[str]) -> list[str]:
        await release.wait()
        return list(requests)

    def kind(name: str) -> Run:
        async def run(conn: AsyncConnection, requests: Sequence[str]) -> list[str]:
            calls.append((name, list(requests)))
            return [f"{name}:{r}" for r in requests]

        return run

    links, tracks = kind("link"), kind("track")
    writer = GroupWriter(db)
    first = asyncio.create_task(writer.submit(slow, "a", 1))
    await asyncio.sleep(0.01)
    rest = [
        asyncio.create_task(writer.submit(run, name, 1))
        for run, name in ((tracks, "b"), (links, "c"), (tracks, "d"))
    ]
    await asyncio.sleep(0.01)
    release.set()
    assert await first == "a"
    assert [await task for task in rest] == ["track:b", "link:c", "track:d"]
    assert calls == [("track", ["b", "d"]), ("link", ["c"])]  # one write, each run once


async def test_preparation_lets_the_event_loop_run_between_slices() -> None:
    turns = 0

    async def other_work() -> None:  # e.g. a write waiting to send its next statement
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    seen: list[tuple[int, list[int], int]] = []
    async for start, part in in_slices(list(range(70)), size=32):
        seen.append((start, list(part), turns))
    other.cancel()
    assert [(start, part) for start, part, _ in seen] == [
        (0, list(range(32))),
        (32, list(range(32, 64))),
        (64, list(range(64, 70))),
    ]
    turns_at = [t for *_, t in seen]
    assert turns_at[0] < turns_at[1] < turns_at[2]  # the other task ran between slices
