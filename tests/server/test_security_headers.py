"""Security headers on every answer of a real server: JSON, HTML (GraphiQL), errors, preflights."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from server.security_headers import DEFAULT_HTML_POLICY, SecurityHeaders
from tests.conftest import RunningServer, free_port, start_server

USERS = "{ users(first: 1) { edges { node { userId } } } }"


def assert_every_answer_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff", response.request.url
    assert response.headers["referrer-policy"] == "no-referrer", response.request.url


async def test_json_answers_and_errors_carry_the_headers(
    server: RunningServer, database_url: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        answers = {
            "graphql": await http.post("/graphql", json={"query": USERS}),
            "health": await http.get("/healthz"),
            "metrics": await http.get("/metrics"),
            "not found": await http.get("/no/such/page"),
            "method": await http.get("/v1/batch"),
            "too large": await http.post("/v1/batch", content=b"x" * (1024 * 1024 + 1)),
            "bad body": await http.post("/api/track", content=b"{"),
            "preflight": await http.options(
                "/graphql",
                headers={
                    "origin": "http://localhost:5173",
                    "access-control-request-method": "POST",
                },
            ),
            "other origin": await http.post(
                "/graphql", json={"query": USERS}, headers={"origin": "https://evil.example"}
            ),
        }
    expected = {
        "graphql": 200,
        "health": 200,
        "metrics": 200,
        "not found": 404,
        "method": 405,
        "too large": 413,
        "bad body": 400,
        "preflight": 200,
        "other origin": 403,
    }
    assert {name: answer.status_code for name, answer in answers.items()} == expected
    for answer in answers.values():
        assert_every_answer_headers(answer)
        assert "x-frame-options" not in answer.headers  # not HTML
    assert answers["graphql"].headers["content-type"].startswith("application/json")


async def test_unauthenticated_answers_carry_the_headers(database_url: str) -> None:
    running, server, task = await start_server(database_url, dev=False)
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=60) as http:
            for answer in (
                await http.post("/graphql", json={"query": USERS}),
                await http.get("/metrics"),
                await http.post("/v1/batch", json={"batch": []}),
            ):
                assert answer.status_code == 401, answer.text
                assert_every_answer_headers(answer)
    finally:
        server.should_exit = True
        await task


async def test_graphiql_may_not_be_framed(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert_every_answer_headers(page)
    assert page.headers["x-frame-options"] == "DENY"
    # GraphiQL's page may set a policy of its own (kept as it is); else the default one.
    assert page.headers["content-security-policy"]


# ------------------------------------------------- the middleware with pages of its own


async def page_with_policy(request: Request) -> HTMLResponse:
    return HTMLResponse(
        "<p>own</p>",
        headers={"content-security-policy": "default-src 'self'", "x-frame-options": "SAMEORIGIN"},
    )


async def page_without_policy(request: Request) -> HTMLResponse:
    return HTMLResponse("<p>plain</p>")


@pytest.fixture
async def pages() -> AsyncIterator[httpx.AsyncClient]:
    """A real uvicorn server of two HTML pages behind SecurityHeaders."""
    app = Starlette(
        routes=[Route("/own", page_with_policy), Route("/plain", page_without_policy)],
        middleware=[Middleware(SecurityHeaders)],
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        yield http
    server.should_exit = True
    await task


async def test_a_page_without_a_policy_gets_the_default(pages: httpx.AsyncClient) -> None:
    plain = await pages.get("/plain")
    assert_every_answer_headers(plain)
    assert plain.headers["content-security-policy"] == DEFAULT_HTML_POLICY
    assert "frame-ancestors 'none'" in DEFAULT_HTML_POLICY
    assert plain.headers["x-frame-options"] == "DENY"


async def test_a_page_keeps_its_own_policy(pages: httpx.AsyncClient) -> None:
    own = await pages.get("/own")
    assert_every_answer_headers(own)
    assert own.headers.get_list("content-security-policy") == ["default-src 'self'"]
    assert own.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
