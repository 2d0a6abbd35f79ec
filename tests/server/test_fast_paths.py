"""USERTRAIL_FAST_PATHS: one setting turns every fast path on or off, with the same answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graph import input_conversion
from graph.execution import FastExecutor
from graph.inputs import TrackInput
from server.settings import Settings
from tests.conftest import start_server

TRACK = """mutation($events: [TrackInput!]!) {
  trackBatch(events: $events) { accepted errors { index code } } }"""
USERS = """{ users(first: 5) { edges { node { userId lastSeen sessions(first: 5) { edges {
  node { startTime events(first: 5) { edges { node { type time properties } } } } } } } } } }"""
PROPERTIES = {"title": "Café — Trail gear 😀", "amount": 49.5}


@pytest.fixture(autouse=True)
def conversion_as_configured() -> Iterator[None]:
    """Input conversion is switched per process: give the next tests the configured one."""
    yield
    input_conversion.enable(Settings().fast_paths)


def test_the_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).fast_paths is True
    for off in ("0", "false", "no", "off", " OFF "):
        assert Settings.from_env({"USERTRAIL_FAST_PATHS": off}).fast_paths is False
    assert Settings.from_env({"USERTRAIL_FAST_PATHS": "1"}).fast_paths is True
    for fast_paths in (True, False):
        settings = Settings(fast_paths=fast_paths)
        assert Settings.from_env(settings.as_env()).fast_paths is fast_paths


async def _answers(
    database_url: str, *, fast_paths: bool, track: bool
) -> tuple[bytes, dict[str, Any]]:
    """The raw users page (after a trackBatch if `track`), from a server set as given."""
    running, server, task = await start_server(database_url, fast_paths=fast_paths)
    try:
        graphql = next(r.app for r in running.app.routes if getattr(r, "path", "") == "/graphql")
        schema_context = graphql.schema.execution_context_class
        assert (schema_context is FastExecutor) is fast_paths
        assert (schema_context is StrawberryGraphQLCoreExecutionContext) is not fast_paths
        converts = TrackInput.__strawberry_definition__.from_input is not None
        assert converts is fast_paths and input_conversion.enabled is fast_paths
        async with httpx.AsyncClient(base_url=running.url) as client:
            if track:
                events = [{"event": "view", "userId": "7", "properties": PROPERTIES}]
                tracked = await client.post(
                    "/graphql", json={"query": TRACK, "variables": {"events": events}}
                )
                assert tracked.json()["data"]["trackBatch"] == {"accepted": 1, "errors": []}
            answer = await client.post("/graphql", json={"query": USERS})
        return answer.content, orjson.loads(answer.content)
    finally:
        server.should_exit = True
        await task


async def test_off_and_on_answer_the_same_values(database_url: str) -> None:
    stock_bytes, stock = await _answers(database_url, fast_paths=False, track=True)
    fast_bytes, fast = await _answers(database_url, fast_paths=True, track=False)
    assert fast == stock
    user = fast["data"]["users"]["edges"][0]["node"]
    event = user["sessions"]["edges"][0]["node"]["events"]["edges"][0]["node"]
    assert event["properties"]["title"] == PROPERTIES["title"]
    # orjson writes UTF-8; Strawberry's json.dumps escapes it: each path really ran.
    assert "Café".encode() in fast_bytes and b"Caf\\u00e9" in stock_bytes
