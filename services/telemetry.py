"""Counters of what ingestion did, exported by the server's /metrics route.

Kept in services so that every ingestion path (GraphQL, Heap, Segment) counts in one place.
With several worker processes each process counts its own share (see the README).
"""

from __future__ import annotations

from prometheus_client import Counter

EVENTS_INGESTED = Counter("usertrail_events_ingested_total", "Events stored", ["environment"])
DUPLICATES = Counter(
    "usertrail_events_duplicate_total",
    "Events skipped as already seen (idempotency keys)",
    ["environment"],
)
ITEM_ERRORS = Counter("usertrail_item_errors_total", "Refused batch items, by error code", ["code"])


def record_ingestion(
    environment_id: int, *, accepted: int, duplicates: int, codes: list[str]
) -> None:
    """Count one batch's stored events, duplicates and refused items."""
    environment = str(environment_id)
    if accepted:
        EVENTS_INGESTED.labels(environment).inc(accepted)
    if duplicates:
        DUPLICATES.labels(environment).inc(duplicates)
    for code in codes:
        ITEM_ERRORS.labels(code).inc()
