"""/healthz reports the database; a browser GET of /graphql serves GraphiQL."""

from __future__ import annotations

import httpx

from tests.conftest import RunningServer, start_server


async def test_healthz_is_ok_with_the_database(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.get("/healthz")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


async def test_healthz_is_503_without_the_database() -> None:
    # Nothing listens on port 9: the database is unreachable from the start.
    running, server, task = await start_server("postgresql+asyncpg://postgres@127.0.0.1:9/none")
    try:
        async with httpx.AsyncClient(base_url=running.url) as client:
            answer = await client.get("/healthz")
        assert answer.status_code == 503
        assert answer.json()["status"] == "unavailable"
    finally:
        server.should_exit = True
        await task


async def test_browser_get_of_graphql_serves_graphiql(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.get("/graphql", headers={"Accept": "text/html"})
    assert answer.status_code == 200
    assert "text/html" in answer.headers["content-type"]
    assert "graphiql" in answer.text.lower()
