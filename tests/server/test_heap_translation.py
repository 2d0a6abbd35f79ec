"""Heap objects as items of the ingestion service (server/heap_api.py's pure translation)."""

from __future__ import annotations

from server.heap_api import track_item, translate, user_properties_item
from services.errors import Problem


def test_heap_events_are_server_items_at_their_positions_with_heap_names() -> None:
    placed, refused = translate(
        [
            {"identity": 42, "event": "Paid", "idempotency_key": "k-1", "session_id": "s"},
            "not an object",
            {"user_id": "7", "event": "Paid", "timestamp": 1733054400000},
        ],
        track_item,
    )
    assert refused == [Problem("INVALID_BODY", "each item must be a JSON object", None, 1)]
    assert placed.positions == [0, 2]
    first, second = placed.items
    assert (first.identity, first.source, first.idempotency_key) == ("42", "SERVER", "k-1")
    assert (second.user_id, second.timestamp) == ("7", 1733054400000)
    found = [
        Problem("MISSING_USER", "no", "userId", 0),
        Problem("INVALID_IDEMPOTENCY_KEY", "no", "idempotencyKey", 0),
        Problem("INVALID_PROPERTY_VALUE", "no", "properties.userId", 1),
        Problem("BATCH_TOO_LARGE", "no", "events", 1),
    ]
    assert placed.problems(found) == [
        Problem("MISSING_USER", "no", "user_id", 0),
        Problem("INVALID_IDEMPOTENCY_KEY", "no", "idempotency_key", 0),
        Problem("INVALID_PROPERTY_VALUE", "no", "properties.userId", 2),
        Problem("BATCH_TOO_LARGE", "no", None, 2),  # the item itself
    ]


def test_heap_users_are_user_properties_items() -> None:
    placed, refused = translate(
        [{"identity": "ada", "properties": {"plan": "pro"}}], user_properties_item
    )
    assert refused == []
    [item] = placed.items
    assert (item.identity, item.user_id, item.properties) == ("ada", None, {"plan": "pro"})
