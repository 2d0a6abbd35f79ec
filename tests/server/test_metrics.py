"""/metrics exposes request and ingestion figures in Prometheus' text format.

Dev mode answers anyone (on loopback); outside it, the operator's USERTRAIL_METRICS_KEY reads
everything and an admin API key only the samples of its own environment."""

from __future__ import annotations

import re

import httpx

from services import environments, keys
from tests.conftest import RunningServer, start_server
from tests.server.conftest import Tenants
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


# ------------------------------------------------------------- who may read /metrics

METRICS_KEY = "operator-metrics-key-0123456789"


async def test_metrics_need_a_key_outside_dev_mode(database_url: str) -> None:
    """The operator's key reads everything; an admin key only its own environment's samples."""
    running, server, task = await start_server(database_url, dev=False, metrics_key=METRICS_KEY)
    try:
        db = running.db
        alpha, beta = (
            await environments.ensure(db, name="alpha"),
            await environments.ensure(db, name="beta"),
        )
        made = {
            (name, scope): (await keys.create(db, environment=name, scope=scope))[1]
            for name in ("alpha", "beta")
            for scope in keys.SCOPES
        }
        async with httpx.AsyncClient(base_url=running.url, timeout=60) as http:
            for environment in (alpha, beta):
                sent = await http.post(
                    "/api/track",
                    json={"app_id": environment.app_id, "identity": "ann", "event": "Paid"},
                )
                assert sent.status_code == 200, sent.text

            async def metrics(key: str | None) -> httpx.Response:
                headers = {} if key is None else {"authorization": f"Bearer {key}"}
                return await http.get("/metrics", headers=headers)

            nobody = await metrics(None)
            assert nobody.status_code == 401
            assert nobody.headers["www-authenticate"].startswith("Bearer")
            assert (await metrics("utk_not-a-key")).status_code == 401
            basic = await http.get("/metrics", headers={"authorization": "Basic b3A6"})
            assert basic.status_code == 401
            for scope in ("read", "ingest"):
                refused = await metrics(made[("alpha", scope)])
                assert refused.status_code == 403, scope
                assert "admin" in refused.json()["errors"][0]["message"]
                assert "usertrail_" not in refused.text

            operator = await metrics(METRICS_KEY)
            assert operator.status_code == 200
            for environment in (alpha, beta):
                name = f'usertrail_events_ingested_total{{environment="{environment.id}"}}'
                assert _value(operator.text, name) >= 1
            assert "usertrail_http_requests_total" in operator.text

            admin = await metrics(made[("alpha", "admin")])
            assert admin.status_code == 200
            assert admin.headers["content-type"].startswith("text/plain")
            ingested = f'usertrail_events_ingested_total{{environment="{alpha.id}"}}'
            assert _value(admin.text, ingested) >= 1
            samples = [line for line in admin.text.splitlines() if not line.startswith("#")]
            assert samples and all(f'environment="{alpha.id}"' in line for line in samples)
            assert f'environment="{beta.id}"' not in admin.text
            assert "usertrail_http_requests_total" not in admin.text
    finally:
        server.should_exit = True
        await task


async def test_metrics_without_an_operator_key_take_admin_keys_only(
    tenants: Tenants,
) -> None:
    assert (await tenants.http.get("/metrics")).status_code == 401
    wrong = await tenants.http.get("/metrics", headers={"authorization": "Bearer utk_x"})
    assert wrong.status_code == 401
    admin = await tenants.http.get(
        "/metrics", headers={"authorization": f"Bearer {tenants.beta.keys['admin']}"}
    )
    assert admin.status_code == 200
    assert f'environment="{tenants.alpha.environment_id}"' not in admin.text
