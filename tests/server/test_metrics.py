"""/metrics exposes request and ingestion figures in Prometheus' text format."""

from __future__ import annotations

import re

from services import environments
from tests.conftest import RunningServer
from tests.support import Api


def _value(text: str, sample: str) -> float:
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_metrics_count_requests_events_duplicates_and_errors(
    api: Api, server: RunningServer
) -> None:
    before = (await api.http.get("/metrics")).text
    events = [
        {"event": "Signed Up", "userId": "5", "idempotencyKey": "m-1"},
        {"event": "Signed Up", "userId": "5", "idempotencyKey": "m-1"},
        {"event": "", "userId": "5"},
    ]
    assert (await api.track_batch(events))["accepted"] == 1
    answer = await api.http.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    after = answer.text
    # The counters are per process: other tests' servers count their own environments.
    environment = await environments.ensure(server.db)  # dev mode's, where the batch went
    label = f'{{environment="{environment.id}"}}'
    for name, grew in [
        (f"usertrail_events_ingested_total{label}", 1),
        (f"usertrail_events_duplicate_total{label}", 1),
        ('usertrail_item_errors_total{code="INVALID_EVENT_NAME"}', 1),
    ]:
        assert _value(after, name) - _value(before, name) == grew, name
    requests = 'usertrail_http_requests_total{method="POST",route="/graphql",status="200"}'
    assert _value(after, requests) > _value(before, requests)
    assert "usertrail_http_request_seconds_bucket" in after
