"""The pure session rules: the spec's worked cases and invariants for random event sets."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings

from services.clock import to_micros
from services.sessionize import INACTIVITY_US, SERVER_SESSION_US, TimelineEvent, sessionize
from tests.factories import BASE, case_events, event_sets, spec_cases


@pytest.mark.parametrize("case", spec_cases(), ids=lambda c: c["name"])
def test_spec_case(case: dict) -> None:
    events = case_events(case)
    timeline = [
        TimelineEvent(i, to_micros(e.time), e.source, e.session_id) for i, e in enumerate(events)
    ]
    got = sorted(
        (s.origin, s.source, sorted(events[e.id].key for e in s.events))
        for s in sessionize(timeline)
    )
    want = sorted((s["origin"], s["source"], sorted(s["events"])) for s in case["sessions"])
    assert got == want


def _timeline(raw: list) -> list[TimelineEvent]:
    return [
        TimelineEvent(
            i, to_micros(e.time), e.source, e.session_id if e.source != "SERVER" else None
        )
        for i, e in enumerate(raw)
    ]


@given(event_sets())
@settings(max_examples=300)
def test_rules_hold_for_random_events(raw: list) -> None:
    timeline = _timeline(raw)
    sessions = sessionize(timeline)
    assert sorted(e.id for s in sessions for e in s.events) == sorted(e.id for e in timeline)
    for session in sessions:
        client = [e for e in session.events if e.source != "SERVER"]
        server = [e for e in session.events if e.source == "SERVER"]
        if session.origin == "SERVER":
            assert not client
            assert session.end_us - session.start_us < SERVER_SESSION_US
            continue
        assert {e.source for e in client} == {session.source}
        timeout = INACTIVITY_US[session.source]
        if session.client_session_id is None:
            gaps = [b.time_us - a.time_us for a, b in zip(client, client[1:], strict=False)]
            assert all(gap < timeout for gap in gaps)
        assert session.active_until_us == client[-1].time_us + timeout
        assert all(client[0].time_us <= e.time_us < session.active_until_us for e in server)


@given(event_sets(), event_sets())
@settings(max_examples=100)
def test_input_order_does_not_matter(raw: list, _unused: list) -> None:
    timeline = _timeline(raw)
    shuffled = timeline[:]
    random.Random(len(raw)).shuffle(shuffled)
    assert [s.event_ids for s in sessionize(timeline)] == [
        s.event_ids for s in sessionize(shuffled)
    ]


def test_sessions_starting_together_take_server_events_regardless_of_event_ids() -> None:
    """Ties in start time are broken by source, not by ids (which follow arrival order)."""
    at = to_micros(BASE)
    kinds = [("WEB", None), ("IOS", None), ("WEB", "x"), ("SERVER", None)]
    results = set()
    for order in itertools.permutations(range(4)):
        timeline = [
            TimelineEvent(order[i], at, source, session_id)
            for i, (source, session_id) in enumerate(kinds)
        ]
        by_id = {e.id: e.source + (e.client_session_id or "") for e in timeline}
        results.add(
            frozenset(frozenset(by_id[e.id] for e in s.events) for s in sessionize(timeline))
        )
    assert results == {
        frozenset({frozenset({"WEBx", "SERVER"}), frozenset({"WEB"}), frozenset({"IOS"})})
    }
