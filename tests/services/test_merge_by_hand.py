"""A merge by hand (services/users.merge_users) gives the sessions of the union, whenever it
happens among the batches, as a merge by identify does (SPEC §1, §2)."""

from __future__ import annotations

import secrets

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models import SegmentMember, User, UserAlias
from models.db import Database
from services import environments, ingest, static_segments, users
from tests.factories import RawEvent, event_sets, expected_partition, stored_partition

M = SegmentMember.__table__


@given(data=st.data(), raw=event_sets(users=("500", "600"), max_size=25))
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_merge_by_hand_at_any_point_gives_the_sessions_of_the_union(
    db: Database, data: st.DataObject, raw: list[RawEvent]
) -> None:
    environment = await environments.ensure(db, name=f"by-hand-{secrets.token_hex(6)}")
    env = environment.id
    arrival = data.draw(st.permutations(raw))
    merge_at = data.draw(st.integers(0, len(arrival)))
    for user in ("500", "600"):  # both exist before the merge, neither identified
        await ingest.add_user_properties(
            db, environment_id=env, items=[ingest.UserPropertiesItem({"k": user}, user_id=user)]
        )
    for index, event in enumerate(arrival):
        if index == merge_at:
            await _merge(db, env)
        outcome = await ingest.track(db, environment_id=env, items=[event.track_item()])
        assert outcome.accepted == 1
    if merge_at == len(arrival):
        await _merge(db, env)
    union = [RawEvent(e.key, "600", e.source, e.time, e.session_id, e.name) for e in raw]
    assert await stored_partition(db, env) == expected_partition(union)


async def _merge(db: Database, env: int) -> None:
    done = await users.merge_users(db, environment_id=env, into="600", from_="500")
    assert (done.user_id, done.merged) == (600, True)


async def test_memberships_and_routes_after_a_merge_by_hand(db: Database) -> None:
    env = (await environments.ensure(db, name=f"rows-{secrets.token_hex(6)}")).id
    for user in ("1", "2", "3"):
        await ingest.add_user_properties(
            db, environment_id=env, items=[ingest.UserPropertiesItem({"k": user}, user_id=user)]
        )
    both = await static_segments.create(
        db, environment_id=env, name="both", description=None, user_filter=None, user_ids=["1", "2"]
    )
    source_only = await static_segments.create(
        db, environment_id=env, name="one", description=None, user_filter=None, user_ids=["1", "3"]
    )
    await users.merge_users(db, environment_id=env, into="2", from_="1")
    again = await users.merge_users(db, environment_id=env, into="2", from_="1")
    assert (again.user_id, again.merged) == (2, False)
    U, A = User.__table__, UserAlias.__table__
    async with db.read() as conn:
        listed = await conn.execute(
            select(M.c.segment_id, M.c.user_id).where(M.c.environment_id == env)
        )
        rows = {tuple(row) for row in listed}
        left = set(
            (await conn.execute(select(U.c.user_id).where(U.c.environment_id == env))).scalars()
        )
        routed = await conn.execute(
            select(A.c.kind, A.c.alias, A.c.user_id).where(A.c.environment_id == env)
        )
        aliases = {tuple(row) for row in routed}
    assert rows == {(both.id, 2), (source_only.id, 2), (source_only.id, 3)}
    assert left == {2, 3}
    assert aliases == {("user_id", "1", 2)}
