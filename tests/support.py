"""A small GraphQL-over-HTTP client for tests, and helpers to build inputs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from server.settings import fast_paths_from


class GraphQLFailed(AssertionError):
    pass


class Api:
    """Posts GraphQL operations to a running server with httpx."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=60)

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def raw(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        return response.json()

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        """The `data` of a successful operation; fails the test on GraphQL errors."""
        body = await self.raw(query, **variables)
        if body.get("errors"):
            raise GraphQLFailed(body["errors"])
        return body["data"]

    async def track_batch(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        data = await self.gql(TRACK_BATCH, events=events)
        return data["trackBatch"]


TRACK_BATCH = """
mutation($events: [TrackInput!]!) {
  trackBatch(events: $events) { accepted duplicates errors { index field code message } }
}"""

USER_TIMELINE = """
query($userId: String, $identity: String) {
  user(userId: $userId, identity: $identity) {
    userId identity sessionCount eventCount firstSeen lastSeen properties
    sessions(first: 100) {
      totalCount
      edges { node { origin source startTime endTime eventCount
        events(first: 500) { totalCount edges { node { type time source properties } } } } }
    }
  }
}"""


# For test modules that hold a fast path (USERTRAIL_FAST_PATHS) to the stock one it replaces:
# with the setting off the server never takes it, and CI runs them in the run where it is on.
fast_paths_only = pytest.mark.skipif(
    not fast_paths_from(), reason="USERTRAIL_FAST_PATHS=0: these check the fast paths themselves"
)
