"""A client that goes away in the middle of its request body: logged at info, without a
traceback, never as an unexpected failure (issue 17, point 9); the server carries on.

Raw sockets against a real server: headers announcing a body, half of it, then close.
"""

from __future__ import annotations

import logging

import httpx
import orjson
import pytest

from tests.conftest import RunningServer
from tests.hostile.probing import send_half_and_close, wait_for_log

BODIES = {
    "/api/track": orjson.dumps(
        {"app_id": "shop", "events": [{"identity": "a@example.com", "event": "Signed Up"}] * 40}
    ),
    "/v1/batch": orjson.dumps(
        {"batch": [{"type": "track", "userId": "a@example.com", "event": "Signed Up"}] * 40}
    ),
    "/graphql": orjson.dumps(
        {"query": "{ eventNames { type } }", "variables": {"padding": "x" * 2000}}
    ),
}
LOGGERS = {"/api/track": "server.http_errors", "/v1/batch": "server.http_errors"}
LOGGERS["/graphql"] = "usertrail.graphql"
DEV_KEY = "Basic ZGV2LWtleTo="


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", list(BODIES))
async def test_a_client_leaving_mid_body_is_logged_at_info(
    server: RunningServer, caplog: pytest.LogCaptureFixture, path: str, chunked: bool
) -> None:
    caplog.set_level(logging.INFO)
    await send_half_and_close(
        server.url, path, BODIES[path], headers={"Authorization": DEV_KEY}, chunked=chunked
    )
    # The server notices the closed connection on its next read.
    noticed = await wait_for_log(caplog, "closed the connection")
    assert len(noticed) == 1, [r.getMessage() for r in caplog.records]
    record = noticed[0]
    assert record.levelno == logging.INFO and record.name == LOGGERS[path]
    assert record.exc_info is None
    if path != "/graphql":
        assert path in record.getMessage()
    worse = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not worse, [(r.name, r.getMessage()) for r in worse]
    assert not any("unexpectedly" in r.getMessage() for r in caplog.records)
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/healthz")).status_code == 200
