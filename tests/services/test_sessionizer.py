"""Stored sessions equal the pure rules whatever the arrival order and batching (SPEC §2)."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.db import Database
from services import environments, ingest
from tests.factories import (
    RawEvent,
    case_events,
    event_sets,
    expected_partition,
    spec_cases,
    stored_partition,
)

EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


async def _ingest(db: Database, batches: list[list[RawEvent]]) -> int:
    environment = await environments.ensure(db, name=f"prop-{secrets.token_hex(6)}")
    for batch in batches:
        outcome = await ingest.track(
            db, environment_id=environment.id, items=[e.track_item() for e in batch]
        )
        assert outcome.problems == [] and outcome.accepted == len(batch)
    return environment.id


def _split(events: list[RawEvent], cuts: list[int]) -> list[list[RawEvent]]:
    bounds = sorted({c % (len(events) + 1) for c in cuts} | {0, len(events)})
    return [events[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


@pytest.mark.parametrize("case", spec_cases(), ids=lambda c: c["name"])
@pytest.mark.parametrize("order", ["in order", "reversed", "one by one"])
async def test_spec_case_in_any_arrival(db: Database, case: dict, order: str) -> None:
    events = case_events(case)
    batches = {
        "in order": [events],
        "reversed": [[e] for e in reversed(events)],
        "one by one": [[e] for e in events],
    }[order]
    environment_id = await _ingest(db, batches)
    want = {frozenset(s["events"]) for s in case["sessions"]}
    assert await stored_partition(db, environment_id) == want


@given(data=st.data(), raw=event_sets(users=("7", "8"), max_size=30))
@EXAMPLES
async def test_any_permutation_and_batching_gives_the_pure_sessions(
    db: Database, data: st.DataObject, raw: list[RawEvent]
) -> None:
    arrival = data.draw(st.permutations(raw))
    cuts = data.draw(st.lists(st.integers(0, 100), max_size=6))
    environment_id = await _ingest(db, _split(list(arrival), cuts))
    assert await stored_partition(db, environment_id) == expected_partition(raw)


async def test_late_client_event_regroups_a_long_run_of_server_only_sessions(db: Database) -> None:
    """Server events every 20 minutes; a client event capturing the first shifts every window."""
    from datetime import timedelta

    from tests.factories import BASE

    server = [
        RawEvent(f"s{i}", "9", "SERVER", BASE + timedelta(minutes=20 * i), name="Ping")
        for i in range(40)
    ]
    late = RawEvent("late", "9", "WEB", BASE - timedelta(minutes=10))
    environment_id = await _ingest(db, [server, [late]])
    assert await stored_partition(db, environment_id) == expected_partition([*server, late])
    assert frozenset({"late", "s0"}) in await stored_partition(db, environment_id)
