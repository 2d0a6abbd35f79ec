"""Issue 17 point 9 (what tests/hostile/test_out_of_range.py leaves) replayed on a production
server by a client holding only the public ingest key, or no key: no schema, no GraphiQL, no
/metrics, no credentialed CORS on /v1, security headers on every answer, forged ids and
cursors past 2^63 answered without an error log, and a client leaving mid-body logged at
info without a traceback."""

from __future__ import annotations

import base64
import logging

import httpx
import orjson
import pytest

from services import ids
from tests.hostile.probing import (
    Shop,
    error_records,
    open_shop,
    send_half_and_close,
    wait_for_log,
)
from tests.hostile.test_out_of_range import CURSORS, HUGE, NODE
from tests.server.test_introspection import HTML, SCHEMA, THROUGH_FRAGMENT, TYPE
from tests.support import TRACK_BATCH

EVIL = "https://evil.example"


def _seen(http: httpx.AsyncClient) -> list[httpx.Response]:
    """Every answer `http` receives from now on."""
    answers: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        answers.append(response)

    http.event_hooks["response"].append(keep)
    return answers


def _bearer(key: str | None) -> dict[str, str]:
    return {} if key is None else {"authorization": f"Bearer {key}"}


def _basic(shop: Shop) -> str:
    """Basic credentials of the ingest key, as the Segment SDKs send the write key."""
    return base64.b64encode(f"{shop.keys['ingest']}:".encode()).decode()


def _assert_headers(answers: list[httpx.Response]) -> None:
    """nosniff and no-referrer on every answer; frame-ancestors on every HTML one."""
    assert answers
    for answer in answers:
        where = f"{answer.request.method} {answer.request.url.path} {answer.status_code}"
        assert answer.headers.get("x-content-type-options") == "nosniff", where
        assert answer.headers.get("referrer-policy") == "no-referrer", where
        if answer.headers.get("content-type", "").startswith("text/html"):
            policy = answer.headers.get("content-security-policy", "")
            assert "frame-ancestors 'none'" in policy, where


async def test_an_ingest_key_or_no_key_reads_no_schema_page_or_metrics(shop: Shop) -> None:
    answers = _seen(shop.http)
    for key in (shop.keys["ingest"], None):
        for query in (SCHEMA, TYPE, THROUGH_FRAGMENT):
            refused = await shop.http.post("/graphql", json={"query": query}, headers=_bearer(key))
            assert refused.status_code in (200, 400, 401, 403), refused.text
            assert not (refused.json().get("data") or {}), refused.text
            assert refused.status_code == 401 or refused.json()["errors"], refused.text
        for path in ("/graphql", "/graphiql"):
            page = await shop.http.get(path, headers={**HTML, **_bearer(key)})
            served = page.headers.get("content-type", "").startswith("text/html")
            assert not served and "<html" not in page.text.lower(), (path, page.status_code)
        # `/` is the Users & Sessions page: the API's client, holding no data (it asks for a
        # key), never GraphiQL.
        front = await shop.http.get("/", headers={**HTML, **_bearer(key)})
        assert "graphiql" not in front.text.lower(), front.status_code
        for auth in (_bearer(key), {"authorization": f"Basic {_basic(shop)}"}):
            metrics = await shop.http.get("/metrics", headers=auth)
            assert metrics.status_code in (401, 403), (auth, metrics.status_code)
            assert "usertrail_" not in metrics.text
    _assert_headers(answers)


async def test_v1_answers_an_evil_origin_without_credentials(shop: Shop) -> None:
    answers = _seen(shop.http)
    await shop.http.options(
        "/v1/batch",
        headers={
            "origin": EVIL,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        },
    )
    batch = {"batch": [{"type": "track", "userId": "cors@x.test", "event": "Clicked"}]}
    for path, body in (("/v1/batch", batch), ("/v1/track", batch["batch"][0])):
        for auth in ({"authorization": f"Basic {_basic(shop)}"}, {}):
            await shop.http.post(path, json=body, headers={"origin": EVIL, "cookie": "s=1", **auth})
    # The preflight, then each route with the key (stored) and without it (refused).
    assert [a.status_code for a in answers] == [200, 200, 401, 200, 401], answers
    for answer in answers:
        assert "access-control-allow-credentials" not in answer.headers, answer.headers
        assert answer.headers.get("access-control-allow-origin") in (None, "*"), answer.headers
    _assert_headers(answers)


async def test_the_graphiql_page_may_not_be_framed_when_switched_on(database_url: str) -> None:
    async with open_shop(database_url, introspection=True) as shop:
        answers = _seen(shop.http)
        page = await shop.http.get("/graphql", headers=HTML)
        assert page.headers["content-type"].startswith("text/html"), page.status_code
        assert page.headers["x-frame-options"] == "DENY"
        refused = await shop.graphql("ingest", SCHEMA)  # switched on, still not for ingest
        assert not (refused.json().get("data") or {}), refused.text
        _assert_headers(answers)


async def test_forged_ids_and_cursors_past_2_63_log_no_error(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    seeded = await shop.data("ingest", TRACK_BATCH, events=[{"event": "pageview", "userId": "5"}])
    assert seeded["trackBatch"]["accepted"] == 1
    answers = _seen(shop.http)
    for number in HUGE:
        for kind, parts in [("User", (number,)), ("Session", (5, number)), ("Event", (number, 1))]:
            found = await shop.data("read", NODE, id=ids.encode(kind, *parts))
            assert found == {"node": None}
        for query, kind, size in CURSORS:
            forged = ids.encode(kind, *[number] * size)
            for scope in ("read", "ingest"):
                errors = (await shop.graphql(scope, query, c=forged)).json()["errors"]
                codes = [e["extensions"]["code"] for e in errors]
                assert codes == (["BAD_USER_INPUT"] if scope == "read" else ["FORBIDDEN"]), errors
    assert not error_records(caplog), [r.getMessage() for r in error_records(caplog)]
    _assert_headers(answers)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_client_leaving_mid_body_logs_no_traceback(
    shop: Shop, caplog: pytest.LogCaptureFixture, chunked: bool
) -> None:
    caplog.set_level(logging.INFO)
    events = [{"identity": "a@x.test", "event": "Signed Up"}] * 40
    sends = {
        "/api/track": (orjson.dumps({"app_id": shop.app_id, "events": events}), {}),
        "/v1/batch": (
            orjson.dumps({"batch": [{"type": "track", **e, "userId": "a@x.test"} for e in events]}),
            {"Authorization": f"Basic {_basic(shop)}"},
        ),
    }
    for path, (body, headers) in sends.items():
        caplog.clear()
        await send_half_and_close(shop.url, path, body, headers=headers, chunked=chunked)
        noticed = await wait_for_log(caplog, "closed the connection")
        assert [(r.levelno, path in r.getMessage()) for r in noticed] == [(logging.INFO, True)]
        assert not error_records(caplog), [r.getMessage() for r in error_records(caplog)]
        assert not [r for r in caplog.records if "unexpectedly" in r.getMessage()]
        assert (await shop.http.get("/healthz")).status_code == 200
    stored = await shop.data("read", "{ users(first: 5) { edges { node { identity } } } }")
    assert stored["users"]["edges"] == []  # half a body stores nothing
