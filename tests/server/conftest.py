"""Fixtures: reading back through GraphQL with `gql`, raw HTTP, and a keyed production server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport

from models.db import Database
from services import environments, keys
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


# ----------------------------------------------------------- environments and API keys


@dataclass
class Tenant:
    """An environment of a production server with one active key per scope."""

    name: str
    environment_id: int
    app_id: str
    keys: dict[str, str]  # scope -> key


@dataclass
class Tenants:
    """A real server outside dev mode with two environments, `alpha` and `beta`."""

    url: str
    db: Database
    alpha: Tenant
    beta: Tenant
    revoked: str  # alpha's revoked admin key
    http: httpx.AsyncClient

    async def graphql(
        self, key: str | None, query: str, headers: dict[str, str] | None = None, **variables: Any
    ) -> httpx.Response:
        """POST an operation with `Authorization: Bearer key` (no header when key is None)."""
        sent = dict(headers or {})
        if key is not None:
            sent["authorization"] = f"Bearer {key}"
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=sent
        )

    async def data(self, key: str, query: str, **variables: Any) -> dict[str, Any]:
        """The `data` of an operation that must succeed without GraphQL errors."""
        response = await self.graphql(key, query, **variables)
        body = response.json()
        assert response.status_code == 200 and not body.get("errors"), body
        return body["data"]


async def _tenant(db: Database, name: str) -> Tenant:
    environment = await environments.ensure(db, name=name)
    made = {
        scope: (await keys.create(db, environment=name, scope=scope))[1] for scope in keys.SCOPES
    }
    return Tenant(name, environment.id, environment.app_id, made)


@pytest.fixture
async def tenants(database_url: str) -> AsyncIterator[Tenants]:
    """A production server (dev=False) with environments alpha and beta and keys of each scope."""
    running, server, task = await start_server(database_url, dev=False)
    db = running.db
    alpha, beta = await _tenant(db, "alpha"), await _tenant(db, "beta")
    revoked, revoked_key = await keys.create(db, environment="alpha", scope="admin")
    await keys.revoke(db, key_id=revoked.id)
    async with httpx.AsyncClient(base_url=running.url, timeout=60) as client:
        yield Tenants(running.url, db, alpha, beta, revoked_key, client)
    server.should_exit = True
    await task
