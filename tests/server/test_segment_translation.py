"""Segment messages as items of the ingestion service (server/segment_translation.py): messages
in, items with their message positions and Segment's field names out; no server, no database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from server.segment_translation import Plan, translate
from services.clock import to_micros
from services.errors import Problem

RECEIVED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RECEIVED_US = to_micros(RECEIVED)


async def _plan(messages: list[Any], **options: Any) -> Plan:
    options = {"shared": {}, "sent_at": None, "received_us": RECEIVED_US, **options}
    return await translate(messages, **options)


def _problem(field: str | None, index: int, code: str = "INVALID_INPUT") -> Problem:
    """A problem as the service reports it: its own field name, the index of its item."""
    return Problem(code, "the service refused it", field, index)


async def test_a_track_with_both_ids_is_a_link_and_an_event_at_its_message() -> None:
    plan = await _plan(
        [
            {"type": "group", "userId": "ada", "groupId": "acme"},
            {
                "type": "track",
                "event": "Report Exported",
                "userId": "ada",
                "anonymousId": "anon-1",
                "messageId": "m-1",
                "properties": {"format": "csv", "size": {"rows": 10}},
                "context": {"library": {"name": "analytics.js", "version": "2.1"}},
            },
        ]
    )
    assert plan.ignored == 1
    assert plan.problems == []
    [link] = plan.links.items
    assert (link.anonymous_id, link.identity, link.explicit) == ("anon-1", "ada", False)
    assert plan.links.positions == [1]
    [event] = plan.events.items
    assert plan.events.positions == [1]
    assert (event.event, event.identity, event.anonymous_id) == ("Report Exported", "ada", None)
    assert event.source == "WEB"
    assert event.idempotency_key == "m-1"
    assert event.properties == {"format": "csv", "size.rows": 10}
    assert event.context == {"library": "analytics.js/2.1"}
    # The service's names for the event's fields are said as Segment spells them.
    assert plan.events.problems(
        [_problem("idempotencyKey", 0), _problem("identity", 0), _problem("properties.x", 0)]
    ) == [
        _problem("messageId", 1),
        _problem("userId", 1),
        _problem("properties.x", 1),
    ]
    assert plan.links.problems([_problem("anonymousId", 0)]) == [_problem("anonymousId", 1)]


async def test_a_page_reads_its_context_and_names_the_nested_fields() -> None:
    plan = await _plan(
        [
            {
                "type": "page",
                "anonymousId": "anon-2",
                "name": "Pricing",
                "context": {
                    "page": {"url": "https://shop.example.com/pricing", "path": "/pricing"},
                    "campaign": {"name": "spring", "source": "newsletter"},
                    "userAgent": "Mozilla/5.0",
                    "sessionId": 1733054400000,
                },
            }
        ]
    )
    assert plan.links.items == []
    [event] = plan.events.items
    assert (event.event, event.anonymous_id, event.identity) == ("pageview", "anon-2", None)
    assert event.source == "WEB"
    assert event.session_id == "1733054400000"
    assert event.properties == {
        "name": "Pricing",
        "url": "https://shop.example.com/pricing",
        "path": "/pricing",
        "utm_campaign": "spring",
        "utm_source": "newsletter",
    }
    assert event.context == {"userAgent": "Mozilla/5.0", "url": "https://shop.example.com/pricing"}
    assert plan.events.problems(
        [_problem("context.url", 0), _problem("sessionId", 0), _problem("context.ip", 0)]
    ) == [
        _problem("context.page.url", 0),
        _problem("context.sessionId", 0),
        _problem("context.ip", 0),
    ]


async def test_rudderstack_original_timestamp_is_the_name_of_the_event_time() -> None:
    plan = await _plan(
        [
            {"type": "track", "event": "A", "userId": "ada", "timestamp": "2026-12-01T11:00:00Z"},
            {
                "type": "track",
                "event": "B",
                "userId": "ada",
                "originalTimestamp": "2026-12-01T11:30:00Z",
            },
        ]
    )
    first, second = plan.events.items
    assert first.timestamp == datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    assert second.timestamp == datetime(2026, 12, 1, 11, 30, tzinfo=UTC)
    assert plan.events.problems([_problem("timestamp", 0), _problem("timestamp", 1)]) == [
        _problem("timestamp", 0),
        _problem("originalTimestamp", 1),
    ]


async def test_timestamps_are_corrected_by_the_batch_sent_at() -> None:
    # The client's clock is 10 minutes fast: sentAt says 12:10 when the server receives at 12:00.
    plan = await _plan(
        [{"type": "track", "event": "A", "userId": "ada", "timestamp": "2026-12-01T12:05:00Z"}],
        sent_at="2026-12-01T12:10:00Z",
    )
    [event] = plan.events.items
    assert event.timestamp == datetime(2026, 12, 1, 11, 55, tzinfo=UTC)


async def test_alias_is_an_explicit_link_whose_anonymous_id_is_the_previous_id() -> None:
    plan = await _plan(
        [
            {"type": "identify", "userId": "ada", "traits": {"plan": "pro"}},
            {"type": "alias", "previousId": "anon-3", "userId": "ada"},
        ]
    )
    [link] = plan.links.items
    assert (link.anonymous_id, link.identity, link.explicit) == ("anon-3", "ada", True)
    assert plan.aliases() == {1}
    assert plan.links.problems([_problem("anonymousId", 0, "ALREADY_IDENTIFIED")]) == [
        _problem("previousId", 1, "ALREADY_IDENTIFIED")
    ]


async def test_identify_traits_are_user_properties_named_traits() -> None:
    plan = await _plan(
        [
            {
                "type": "identify",
                "userId": "ada",
                "anonymousId": "anon-4",
                "traits": {
                    "id": "ada",
                    "userId": "ada",
                    "email": "ada@example.com",
                    "address": {"city": "Berlin"},
                    "orders": [{"id": 1}],
                },
                "context": {"traits": {"plan": "pro", "email": "old@example.com"}},
            }
        ]
    )
    assert plan.links.positions == [0]
    assert plan.events.items == []
    [traits] = plan.traits.items
    assert (traits.identity, traits.anonymous_id) == ("ada", None)
    assert traits.properties == {
        "plan": "pro",
        "email": "ada@example.com",
        "address.city": "Berlin",
        "orders": '[{"id":1}]',
    }
    assert plan.traits.problems(
        [_problem("properties.plan", 0), _problem("properties", 0), _problem("identity", 0)]
    ) == [_problem("traits.plan", 0), _problem("traits", 0), _problem("userId", 0)]


async def test_a_link_is_asked_once_per_anonymous_id_and_user() -> None:
    message = {"type": "track", "event": "A", "userId": "ada", "anonymousId": "anon-5"}
    plan = await _plan([message, message, {**message, "userId": "bob"}])
    assert plan.links.positions == [0, 2]
    assert plan.events.positions == [0, 1, 2]


async def test_refused_messages_are_problems_at_their_position_the_others_are_planned() -> None:
    plan = await _plan(
        [
            "not an object",
            {"type": "track", "event": "A", "userId": "ada"},
            {"type": "wink", "userId": "ada"},
            {"type": "track", "event": "A"},
            {"type": "track", "event": "A", "userId": "ada", "messageId": ["m"]},
            {"type": "alias", "userId": "ada"},
            {"type": "track", "event": "A", "userId": "ada", "originalTimestamp": "soon"},
            {"type": "screen", "userId": "ada", "name": "Home"},
        ]
    )
    assert [(p.index, p.field, p.code) for p in plan.problems] == [
        (0, None, "INVALID_MESSAGE"),
        (2, "type", "INVALID_TYPE"),
        (3, "userId", "MISSING_USER"),
        (4, "messageId", "INVALID_ID"),
        (5, "previousId", "MISSING_USER"),
        (6, "originalTimestamp", "INVALID_TIMESTAMP"),
    ]
    assert plan.events.positions == [1, 7]
    assert [e.event for e in plan.events.items] == ["A", "screenview"]


async def test_a_message_whose_event_is_refused_keeps_its_link() -> None:
    plan = await _plan(
        [{"type": "track", "event": "A", "userId": "ada", "anonymousId": "a-6", "timestamp": "?"}]
    )
    assert [(p.index, p.field) for p in plan.problems] == [(0, "timestamp")]
    assert plan.links.positions == [0]
    assert plan.events.items == []


async def test_the_batch_context_is_each_message_context_underneath() -> None:
    plan = await _plan(
        [
            {"type": "track", "event": "A", "userId": "ada"},
            {"type": "track", "event": "B", "userId": "ada", "context": {"ip": "192.0.2.9"}},
        ],
        shared={"ip": "203.0.113.7", "library": {"name": "analytics-ios"}},
    )
    first, second = plan.events.items
    assert first.context == {"ip": "203.0.113.7", "library": "analytics-ios"}
    assert second.context == {"ip": "192.0.2.9", "library": "analytics-ios"}  # its own ip
    assert (first.source, second.source) == ("IOS", "IOS")


@pytest.mark.parametrize("size", [1, 31, 32, 33, 100])
async def test_every_message_is_read_once_in_order_whatever_the_slices(size: int) -> None:
    messages = [{"type": "track", "event": f"e{n}", "userId": "ada"} for n in range(size)]
    messages[size // 2] = {"type": "track", "userId": "ada"}  # no event name: left to the service
    plan = await _plan(messages)
    assert plan.events.positions == list(range(size))
    assert [e.event for e in plan.events.items] == [m.get("event") for m in messages]
