"""A merge gives the sessions of the union, whenever it happens among the batches (SPEC §1)."""

from __future__ import annotations

import secrets

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from models import Event, User
from models.db import Database
from services import environments, ingest
from tests.factories import RawEvent, event_sets, expected_partition, stored_partition


@given(data=st.data(), raw=event_sets(users=("500", "600"), max_size=25))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_merge_at_any_point_gives_the_sessions_of_the_union(
    db: Database, data: st.DataObject, raw: list[RawEvent]
) -> None:
    environment = await environments.ensure(db, name=f"merge-{secrets.token_hex(6)}")
    env = environment.id
    arrival = data.draw(st.permutations(raw))
    merge_at = data.draw(st.integers(0, len(arrival)))
    # User 600 is identified from the start; 500 is anonymous and is merged into it.
    await ingest.add_user_properties(
        db,
        environment_id=env,
        items=[ingest.UserPropertiesItem(properties={"plan": "pro"}, user_id="600")],
    )
    await ingest.identify(db, environment_id=env, user_id="600", identity="ida")
    for index, event in enumerate(arrival):
        if index == merge_at:
            await _merge(db, env)
        outcome = await ingest.track(db, environment_id=env, items=[event.track_item()])
        assert outcome.accepted == 1
    if merge_at == len(arrival):
        await _merge(db, env)
    union = [RawEvent(e.key, "600", e.source, e.time, e.session_id, e.name) for e in raw]
    assert await stored_partition(db, env) == expected_partition(union)
    async with db.read() as conn:
        users = (
            (
                await conn.execute(
                    select(User.__table__.c.user_id).where(User.__table__.c.environment_id == env)
                )
            )
            .scalars()
            .all()
        )
        events = await conn.scalar(
            select(func.count())
            .select_from(Event.__table__)
            .where(Event.__table__.c.environment_id == env)
        )
    assert users == [600] and events == len(raw)


async def _merge(db: Database, env: int) -> None:
    # The anonymous user must exist before it can be identified.
    await ingest.add_user_properties(
        db,
        environment_id=env,
        items=[ingest.UserPropertiesItem(properties={"seen": True}, user_id="500")],
    )
    done = await ingest.identify(db, environment_id=env, user_id="500", identity="ida")
    assert done.user_id == 600
