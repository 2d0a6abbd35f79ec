"""A client that goes away in the middle of its request body: logged at info, without a
traceback, never as an unexpected failure (issue 17, point 9); the server carries on.

Raw sockets against a real server: headers announcing a body, half of it, then close.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from tests.conftest import RunningServer

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


async def _send_half_and_close(url: str, path: str, *, chunked: bool) -> None:
    address = urlsplit(url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    body = BODIES[path]
    half = body[: len(body) // 2]
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\n"
        "Content-Type: application/json\r\nAuthorization: Basic ZGV2LWtleTo=\r\n"
        f"{framing}\r\n\r\n".encode()
    )
    writer.write(f"{len(body):x}\r\n".encode() + half if chunked else half)
    await writer.drain()
    await asyncio.sleep(0.1)  # the server is reading the body when the client leaves
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", list(BODIES))
async def test_a_client_leaving_mid_body_is_logged_at_info(
    server: RunningServer, caplog: pytest.LogCaptureFixture, path: str, chunked: bool
) -> None:
    caplog.set_level(logging.INFO)
    await _send_half_and_close(server.url, path, chunked=chunked)
    for _ in range(200):  # the server notices the closed connection on its next read
        if any("closed the connection" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.025)
    noticed = [r for r in caplog.records if "closed the connection" in r.getMessage()]
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
