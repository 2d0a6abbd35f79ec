"""`links.link_and_track` (a Segment request's links and events in one write) stores what
`link_anonymous_ids` then `ingest.track` store, also when concurrent calls share a write."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models import Event, User, UserAlias
from models.db import Database
from services import environments, ingest, links
from services.ingest import TrackItem
from tests.services.test_anonymous_links import ANONYMOUS, IDENTITIES, link_lists

# Who sent an event: an anonymous id alone, an identity alone, or both (a client login).
senders = st.tuples(st.sampled_from((*ANONYMOUS, None)), st.sampled_from((*IDENTITIES, None)))
calls = st.lists(st.tuples(link_lists, st.lists(senders, max_size=4)), min_size=1, max_size=3)


def _items(call: int, sent: Sequence[tuple[str | None, str | None]]) -> list[TrackItem]:
    """Events named after their call and place, so that each can be found again."""
    return [
        TrackItem(
            event=f"c{call}e{n}",
            anonymous_id=anonymous,
            identity=identity if anonymous is not None or identity is not None else "i0",
            source="WEB",
            timestamp=f"2026-01-01T00:{call:02d}:{n:02d}Z",
        )
        for n, (anonymous, identity) in enumerate(sent)
    ]


async def _owners(db: Database, environment_id: int) -> dict[str, Any]:
    """Each event's user, named by its identity or, for an anonymous user, its anonymous ids."""
    async with db.read() as conn:
        aliases: dict[int, list[str]] = {}
        for row in await conn.execute(
            select(UserAlias.user_id, UserAlias.alias).where(
                UserAlias.environment_id == environment_id, UserAlias.kind == "anonymous_id"
            )
        ):
            aliases.setdefault(row.user_id, []).append(row.alias)
        identities = dict(
            (
                await conn.execute(
                    select(User.user_id, User.identity).where(User.environment_id == environment_id)
                )
            ).all()
        )
        rows = await conn.execute(
            select(Event.type, Event.user_id).where(Event.environment_id == environment_id)
        )
        return {
            row.type: identities[row.user_id] or tuple(sorted(aliases.get(row.user_id, [])))
            for row in rows
        }


def _said(outcome: ingest.Outcome) -> tuple[int, int, list[tuple[int | None, str]]]:
    return outcome.accepted, outcome.duplicates, [(p.index, p.code) for p in outcome.problems]


@given(made=calls)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_links_and_events_in_one_write_store_what_two_calls_store(
    db: Database, made: list[tuple[list[links.AnonymousLink], list[tuple[Any, Any]]]]
) -> None:
    together = (await environments.ensure(db, name=f"together-{secrets.token_hex(6)}")).id
    apart = (await environments.ensure(db, name=f"apart-{secrets.token_hex(6)}")).id

    async def one_write(number: int) -> tuple[Any, Any]:
        link_list, sent = made[number]
        linked, stored = await links.link_and_track(
            db, environment_id=together, links=link_list, items=_items(number, sent)
        )
        return _said(linked), _said(stored)

    if db.is_sqlite:  # concurrent calls: the group writer merges them, in the order they came
        combined = await asyncio.gather(*(one_write(n) for n in range(len(made))))
    else:  # concurrent writes could commit in any order: compare with one order
        combined = [await one_write(n) for n in range(len(made))]
    separate = []
    for number, (link_list, sent) in enumerate(made):
        linked = (
            await links.link_anonymous_ids(db, environment_id=apart, links=link_list)
            if link_list
            else ingest.Outcome()
        )
        stored = await ingest.track(db, environment_id=apart, items=_items(number, sent))
        separate.append((_said(linked), _said(stored)))

    assert list(combined) == separate
    assert await _owners(db, together) == await _owners(db, apart)


async def test_concurrent_calls_share_one_write(
    db: Database, environment_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not db.is_sqlite:
        pytest.skip("only SQLite merges writes (PostgreSQL writes run concurrently)")
    writes: list[int] = []
    run = links._links_then_events

    async def counted(conn: Any, requests: Sequence[Any]) -> Any:
        writes.append(len(requests))
        return await run(conn, requests)

    monkeypatch.setattr(links, "_links_then_events", counted)
    await asyncio.gather(
        *(
            links.link_and_track(
                db,
                environment_id=environment_id,
                links=[links.AnonymousLink(f"anon-{n}", f"person-{n}")],
                items=_items(n, [(f"anon-{n}", None)]),
            )
            for n in range(3)
        )
    )
    assert writes == [3]
    owners = await _owners(db, environment_id)
    assert owners == {f"c{n}e0": f"person-{n}" for n in range(3)}


async def test_concurrent_calls_with_crossing_users_take_no_retries(
    db: Database, environment_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Each call links one anonymous id and sends events of the other's: on PostgreSQL, one
    transaction taking key locks after user locks would deadlock here (and retry)."""
    caplog.set_level(logging.INFO, logger="models.db")
    for round_number in range(4):
        first, second = f"r{round_number}a1", f"r{round_number}a2"
        for anonymous in (first, second):  # both anonymous users exist beforehand
            await ingest.track(
                db,
                environment_id=environment_id,
                items=[TrackItem(event="pageview", anonymous_id=anonymous, source="WEB")],
            )
        await asyncio.gather(
            links.link_and_track(
                db,
                environment_id=environment_id,
                links=[links.AnonymousLink(first, f"r{round_number}i1")],
                items=[TrackItem(event="click", anonymous_id=second, source="WEB")],
            ),
            links.link_and_track(
                db,
                environment_id=environment_id,
                links=[links.AnonymousLink(second, f"r{round_number}i2")],
                items=[TrackItem(event="click", anonymous_id=first, source="WEB")],
            ),
        )
    assert [r.message for r in caplog.records if "retrying" in r.message] == []
    assert [r.message for r in caplog.records if r.levelno >= logging.WARNING] == []
