"""Anonymous-id links (Segment identify/alias, messages with both ids) in one batch do what
the same links do one at a time: first-seen ids are aliased together, the rest in order."""

from __future__ import annotations

import secrets

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models import User, UserAlias
from models.db import Database
from services import environments, ingest, links

ANONYMOUS = ("a0", "a1", "a2", "a3")
IDENTITIES = ("i0", "i1", "i2")

link_lists = st.lists(
    st.builds(
        links.AnonymousLink,
        anonymous_id=st.sampled_from(ANONYMOUS),
        identity=st.sampled_from(IDENTITIES),
        explicit=st.booleans(),
    ),
    max_size=8,
)


async def _state(db: Database, environment_id: int) -> dict[str, str | None]:
    """Each anonymous id's route, as the identity of the user it reaches (None: anonymous)."""
    # Two reads, joined here: on Citus aliases (by alias) and users (by user_id) are not
    # co-located, and a join of them would need repartitioning.
    async with db.read() as conn:
        aliases = await conn.execute(
            select(UserAlias.alias, UserAlias.user_id).where(
                UserAlias.environment_id == environment_id, UserAlias.kind == "anonymous_id"
            )
        )
        identities = dict(
            (
                await conn.execute(
                    select(User.user_id, User.identity).where(User.environment_id == environment_id)
                )
            ).all()
        )
    return {alias: identities[user] for alias, user in aliases if user in identities}


async def _identity_of(db: Database, environment_id: int, user_id: int) -> str | None:
    async with db.read() as conn:
        return await conn.scalar(
            select(User.identity).where(
                User.environment_id == environment_id, User.user_id == user_id
            )
        )


async def _summary(
    db: Database, environment_id: int, outcome: ingest.Outcome, offset: int = 0
) -> tuple[int, list[tuple[int | None, str]], dict[int, str | None]]:
    users = {
        index + offset: await _identity_of(db, environment_id, user)
        for index, user in outcome.users.items()
    }
    problems = [
        (p.index + offset if p.index is not None else None, p.code) for p in outcome.problems
    ]
    return outcome.accepted, problems, users


async def _apply(db: Database, environment_id: int, batch: list[links.AnonymousLink]) -> None:
    if batch:
        await links.link_anonymous_ids(db, environment_id=environment_id, links=batch)


@given(before=link_lists, batch=link_lists, seen=st.lists(st.sampled_from(ANONYMOUS), max_size=3))
@example(  # a1 -> i0 waits for a0's alias (it shares i0); a1 -> i1 must wait for a1 -> i0
    before=[],
    batch=[
        links.AnonymousLink("a0", "i0"),
        links.AnonymousLink("a0", "i2", explicit=True),
        links.AnonymousLink("a1", "i0"),
        links.AnonymousLink("a1", "i1"),
    ],
    seen=[],
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_a_batch_of_links_equals_the_links_one_at_a_time(
    db: Database,
    before: list[links.AnonymousLink],
    batch: list[links.AnonymousLink],
    seen: list[str],
) -> None:
    together = (await environments.ensure(db, name=f"together-{secrets.token_hex(6)}")).id
    apart = (await environments.ensure(db, name=f"apart-{secrets.token_hex(6)}")).id
    for env in (together, apart):  # some anonymous users with events, some links made earlier
        for anonymous in seen:
            await ingest.track(
                db,
                environment_id=env,
                items=[ingest.TrackItem(event="pageview", anonymous_id=anonymous, source="WEB")],
            )
        await _apply(db, env, before)

    outcome = await links.link_anonymous_ids(db, environment_id=together, links=batch)
    batched = await _summary(db, together, outcome)
    accepted, problems, users = 0, [], {}
    for index, link in enumerate(batch):
        one = await links.link_anonymous_ids(db, environment_id=apart, links=[link])
        a, p, u = await _summary(db, apart, one, offset=index)
        accepted, problems, users = accepted + a, problems + p, users | u

    assert batched == (accepted, problems, users)
    assert await _state(db, together) == await _state(db, apart)
