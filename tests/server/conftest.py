"""Fixtures for the ingestion endpoints: reading back through GraphQL with `gql`, raw HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport

from tests.conftest import RunningServer, start_server

USER = """
query($userId: String, $identity: String) {
  user(userId: $userId, identity: $identity) {
    userId identity displayName eventCount sessionCount firstSeen properties
    sessions(first: 50) {
      edges { node {
        origin source startTime browser platform deviceType landingPage referrer utm
        location { country region city }
        events(first: 100) { edges { node { type time source serverSide properties } } }
      } }
    }
  }
}"""


class Reader:
    """Reads users, sessions and events back through the GraphQL API with the `gql` client."""

    def __init__(self, session: Any):
        self.session = session

    async def user(self, *, user_id: str | None = None, identity: str | None = None) -> Any:
        """The user (with sessions and events, oldest session first), or None."""
        request = GraphQLRequest(USER, variable_values={"userId": user_id, "identity": identity})
        user = (await self.session.execute(request))["user"]
        if user is not None:
            user["sessions"] = sorted(
                (edge["node"] for edge in user["sessions"]["edges"]), key=lambda s: s["startTime"]
            )
            for session in user["sessions"]:
                session["events"] = [edge["node"] for edge in session["events"]["edges"]]
        return user

    async def events(self, **who: str) -> list[dict[str, Any]]:
        """Every event of a user, oldest first."""
        user = await self.user(**who)
        assert user is not None, f"no user {who}"
        return sorted((e for s in user["sessions"] for e in s["events"]), key=lambda e: e["time"])


@pytest.fixture
async def reader(server: RunningServer) -> AsyncIterator[Reader]:
    async with Client(transport=HTTPXAsyncTransport(url=f"{server.url}/graphql")) as session:
        yield Reader(session)


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture
async def production_server(database_url: str) -> AsyncIterator[RunningServer]:
    """A real server outside dev mode: app ids must name environments, write keys do not work."""
    running, server, task = await start_server(database_url, dev=False)
    yield running
    server.should_exit = True
    await task
