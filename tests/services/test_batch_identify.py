"""Client events sent with both userId and identity identify their users: a batch of them does
what the same events do one at a time (first identifications together, merges in order)."""

from __future__ import annotations

import secrets
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models import Event, User, UserAlias
from models.db import Database
from services import environments, ingest

USER_IDS = ("11", "12", "13", "14")
IDENTITIES = ("i0", "i1", "i2")
START_MS = 1_790_000_000_000  # 2026-09-21

items = st.lists(
    st.tuples(st.sampled_from(USER_IDS), st.sampled_from((*IDENTITIES, None))), max_size=10
)


def _item(user_id: str, identity: str | None, n: int) -> ingest.TrackItem:
    return ingest.TrackItem(
        event="pageview",
        user_id=user_id,
        identity=identity,
        source="WEB",
        timestamp=START_MS + n * 1000,
    )


async def _people(db: Database, environment_id: int) -> dict[str, tuple[str | None, int]]:
    """Per userId sent: the identity of the user it reaches now, and that user's events."""
    people: dict[str, tuple[str | None, int]] = {}
    async with db.read() as conn:
        users = {
            row.user_id: row.identity
            for row in await conn.execute(
                select(User.user_id, User.identity).where(User.environment_id == environment_id)
            )
        }
        aliases = {
            row.alias: row.user_id
            for row in await conn.execute(
                select(UserAlias.alias, UserAlias.user_id).where(
                    UserAlias.environment_id == environment_id, UserAlias.kind == "user_id"
                )
            )
        }
        events = Counter(
            (
                await conn.execute(
                    select(Event.user_id).where(Event.environment_id == environment_id)
                )
            ).scalars()
        )
    for user_id in USER_IDS:
        user = aliases.get(user_id, int(user_id))
        if user in users:
            people[user_id] = (users[user], events[user])
    return people


@given(before=items, batch=items)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_a_batch_identifies_as_the_events_one_at_a_time(
    db: Database, before: list[tuple[str, str | None]], batch: list[tuple[str, str | None]]
) -> None:
    together = (await environments.ensure(db, name=f"together-{secrets.token_hex(6)}")).id
    apart = (await environments.ensure(db, name=f"apart-{secrets.token_hex(6)}")).id
    for env in (together, apart):
        for n, (user_id, identity) in enumerate(before):
            await ingest.track(db, environment_id=env, items=[_item(user_id, identity, n)])

    sent = [_item(user_id, identity, 100 + n) for n, (user_id, identity) in enumerate(batch)]
    outcome = (
        await ingest.track(db, environment_id=together, items=sent) if sent else ingest.Outcome()
    )
    assert outcome.accepted == len(sent)  # a refused identification still stores its event
    accepted, problems = 0, []
    for index, item in enumerate(sent):
        one = await ingest.track(db, environment_id=apart, items=[item])
        accepted += one.accepted
        problems += [(index, p.code) for p in one.problems]

    assert (outcome.accepted, [(p.index, p.code) for p in outcome.problems]) == (
        accepted,
        problems,
    )
    assert await _people(db, together) == await _people(db, apart)
