"""Initial properties (SPEC §7) written at ingestion equal a full recomputation from the
stored sessions, whatever batches the events arrive in: users without earlier events take
them from the sessions just written, others from a read of their earliest client session."""

from __future__ import annotations

import secrets
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models import User
from models.db import Database
from services import environments, ingest, initial_properties
from services.ingest import TrackItem
from tests.factories import BASE

U = User.__table__
MINUTE = 60_000_000
AGENTS = {
    "chrome": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "iphone": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
}
LANDINGS = [
    "https://shop.example/?utm_source=news&utm_medium=email",
    "https://shop.example/pricing",
    "https://shop.example/?utm_campaign=spring&utm_source=ads&utm_medium=cpc",
]
REFERRERS = [None, "https://www.google.com/", "https://twitter.com/x"]


@st.composite
def events(draw: st.DrawFn) -> list[TrackItem]:
    items = []
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, 300)) * MINUTE // 4  # minutes apart: several sessions
        source = draw(st.sampled_from(["WEB", "WEB", "SERVER", "IOS"]))
        context: dict[str, object] = {}
        if source == "WEB":
            context = {
                "userAgent": AGENTS[draw(st.sampled_from(sorted(AGENTS)))],
                "url": draw(st.sampled_from(LANDINGS)),
            }
            referrer = draw(st.sampled_from(REFERRERS))
            if referrer:
                context["referrer"] = referrer
        elif source == "IOS":
            context = {"os": "iOS 17.1", "device": {"model": "iPhone15,2"}}
        items.append(
            TrackItem(
                event=draw(st.sampled_from(["pageview", "click", "Order Completed"])),
                user_id="77",
                source=source,
                session_id=f"s{at // (40 * MINUTE)}" if source != "SERVER" else None,
                timestamp=BASE + timedelta(microseconds=at),
                context=context,
            )
        )
    return items


@given(items=events(), data=st.data())
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_written_initial_properties_equal_a_full_recomputation(
    db: Database, items: list[TrackItem], data: st.DataObject
) -> None:
    environment_id = (await environments.ensure(db, name=f"init-{secrets.token_hex(4)}")).id
    order = data.draw(st.permutations(items))
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(order)), max_size=3))))
    for start, end in zip([0, *cuts], [*cuts, len(order)], strict=False):
        if start < end:
            outcome = await ingest.track(db, environment_id=environment_id, items=order[start:end])
            assert not outcome.problems, outcome.problems

    async def autocaptured() -> dict[str, object]:
        async with db.read() as conn:
            return await conn.scalar(
                select(U.c.autocaptured).where(
                    U.c.environment_id == environment_id, U.c.user_id == 77
                )
            )

    written = await autocaptured()

    async def recompute(conn: object) -> None:
        await initial_properties.refresh_initial_properties(
            conn,
            environment_id=environment_id,
            user_ids=[77],  # type: ignore[arg-type]
        )

    await db.write(recompute)
    assert written == await autocaptured()


def _event(at_minutes: int, source: str) -> TrackItem:
    context = {"userAgent": AGENTS["chrome"], "url": LANDINGS[at_minutes % 3]}
    return TrackItem(
        event="pageview",
        user_id="78",
        source=source,
        timestamp=BASE + timedelta(minutes=at_minutes),
        context=context if source == "WEB" else {},
    )


async def test_a_later_batch_can_bring_the_earliest_client_session(db: Database) -> None:
    """Server events first, then a client session after them, then an earlier client session
    between the two: each later batch changes the user's earliest client session."""
    environment_id = (await environments.ensure(db, name=f"init-{secrets.token_hex(4)}")).id

    async def initial_landing() -> object:
        async with db.read() as conn:
            props = await conn.scalar(
                select(U.c.autocaptured).where(
                    U.c.environment_id == environment_id, U.c.user_id == 78
                )
            )
        return props.get("Initial Landing Page")

    for batch, landing in (
        ([_event(0, "SERVER"), _event(1, "SERVER")], None),
        ([_event(600, "WEB")], LANDINGS[600 % 3]),
        ([_event(301, "WEB")], LANDINGS[301 % 3]),
    ):
        outcome = await ingest.track(db, environment_id=environment_id, items=batch)
        assert not outcome.problems
        assert await initial_landing() == landing
