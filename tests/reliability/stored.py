"""What reliability tests read back: stored events by key, identities, routes, batches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from models import Event, User, UserAlias
from models.db import Database
from tests.reliability.workload import Request

E, U, A = Event.__table__, User.__table__, UserAlias.__table__


@dataclass(frozen=True)
class StoredEvent:
    user_id: int
    session_id: int
    key: str


async def stored_events(db: Database, environment_id: int) -> list[StoredEvent]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(E.c.user_id, E.c.session_id, E.c.properties).where(
                E.c.environment_id == environment_id
            )
        )
        return [StoredEvent(r.user_id, r.session_id, r.properties.get("k", "")) for r in rows]


def duplicates(stored: Iterable[StoredEvent]) -> dict[str, int]:
    """Keys stored more than once, with their counts."""
    return {k: n for k, n in Counter(e.key for e in stored).items() if n > 1}


async def identity_owners(db: Database, environment_id: int) -> dict[str, list[int]]:
    """Identity -> the users holding it (in the users table), to check it is exactly one."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(U.c.identity, U.c.user_id).where(
                U.c.environment_id == environment_id, U.c.identity.is_not(None)
            )
        )
        owners: dict[str, list[int]] = {}
        for row in rows:
            owners.setdefault(row.identity, []).append(row.user_id)
        aliases = await conn.execute(
            select(A.c.alias, A.c.user_id).where(
                A.c.environment_id == environment_id, A.c.kind == "identity"
            )
        )
        for row in aliases:
            assert owners.get(row.alias) == [row.user_id], f"alias {row.alias} disagrees"
        return owners


async def user_ids(db: Database, environment_id: int) -> set[int]:
    async with db.read() as conn:
        rows = await conn.execute(select(U.c.user_id).where(U.c.environment_id == environment_id))
        return {r.user_id for r in rows}


async def routes_of(db: Database, environment_id: int, user_id: str) -> int | None:
    """The user a userId routes to now: itself, or the user it was merged into."""
    async with db.read() as conn:
        merged = await conn.scalar(
            select(A.c.user_id).where(
                A.c.environment_id == environment_id, A.c.kind == "user_id", A.c.alias == user_id
            )
        )
        if merged is not None:
            return int(merged)
        own = await conn.scalar(
            select(U.c.user_id).where(
                U.c.environment_id == environment_id, U.c.user_id == int(user_id)
            )
        )
        return int(own) if own is not None else None


async def check_batches(
    db: Database, environment_id: int, requests: dict[int, Request], acknowledged: set[int]
) -> Counter[str]:
    """Each batch's valid events stored wholly or not at all, acknowledged ones wholly,
    nothing twice, no refused item; the stored keys with their counts."""
    stored = await stored_events(db, environment_id)
    assert duplicates(stored) == {}
    assert "" not in {e.key for e in stored}, "a refused item was stored"
    present = Counter(e.key for e in stored)
    halves = {}
    for index, request in requests.items():
        found = sum(present[e.key] for e in request.events)
        if found not in (0, len(request.events)):
            halves[index] = (found, len(request.events))
        if index in acknowledged:
            assert found == len(request.events), f"acknowledged batch {index} lost events"
    assert halves == {}, f"batches stored by halves: {halves}"
    return present
