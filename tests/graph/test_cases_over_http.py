"""Every worked case of the spec, sent through the GraphQL API of a real server."""

from __future__ import annotations

import random

import pytest

from tests.factories import case_events, spec_cases
from tests.support import USER_TIMELINE, Api


def _splits(events: list, seed: int) -> list[list]:
    rng = random.Random(seed)
    shuffled = events[:]
    rng.shuffle(shuffled)
    batches, start = [], 0
    while start < len(shuffled):
        size = rng.randint(1, len(shuffled) - start)
        batches.append(shuffled[start : start + size])
        start += size
    return batches


ORDERS = {
    "in order": lambda events: [events],
    "reversed": lambda events: [[e] for e in reversed(events)],
    "random split 1": lambda events: _splits(events, 1),
    "random split 2": lambda events: _splits(events, 2),
    "random split 3": lambda events: _splits(events, 3),
}


@pytest.mark.parametrize("case", spec_cases(), ids=lambda c: c["name"])
@pytest.mark.parametrize("order", list(ORDERS))
async def test_case_through_graphql(api: Api, case: dict, order: str) -> None:
    events = case_events(case, user="4242")
    for batch in ORDERS[order](events):
        result = await api.track_batch([e.graphql_input() for e in batch])
        assert result == {"accepted": len(batch), "duplicates": 0, "errors": []}
    user = (await api.gql(USER_TIMELINE, userId="4242"))["user"]
    got = sorted(
        (
            s["node"]["origin"],
            s["node"]["source"],
            sorted(e["node"]["properties"]["k"] for e in s["node"]["events"]["edges"]),
        )
        for s in user["sessions"]["edges"]
    )
    want = sorted((s["origin"], s["source"], sorted(s["events"])) for s in case["sessions"])
    assert got == want
    assert user["eventCount"] == len(events)
    assert user["sessionCount"] == len(case["sessions"])
