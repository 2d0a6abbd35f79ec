"""Who a GraphQL request acts as: the API key sent as `Authorization: Bearer <key>`.

Outside dev mode every GraphQL request needs an active key (HTTP 401 otherwise), except
the browser GET that renders GraphiQL: the page is internal tooling and holds no data; the
queries it sends need a key like any other (GraphiQL's Headers tab). The key names the
environment and the scope; graph/scopes.py refuses any field beyond the scope, root
fields and the fields below them alike (HTTP 403).
In dev mode no key is needed: every request is an admin of the `default` environment.

The Heap routes need no key (their `app_id` names the environment, as with Heap) and the
Segment routes take an ingest or admin key as their write key (server/app.py).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from server.http_errors import JSONBody
from services.errors import Unavailable
from services.keys import Principal

HOW = "send an API key as `Authorization: Bearer <key>` (made by `usertrail key create`)"


class Refused(Exception):
    """A request refused before GraphQL sees it: answered with `status` and a GraphQL error."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def response(self) -> Response:
        body = {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}
        headers = {}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="usertrail"'
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return JSONBody(body, status_code=self.status, headers=headers)


def bearer_key(headers: Headers) -> str | None:
    """The key of an `Authorization: Bearer` header, None without the header."""
    return key_of(headers.get("authorization"))


def key_of(header: str | None) -> str | None:
    """The key of an `Authorization` value `Bearer <key>`, None without one."""
    if header is None:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Refused(401, "UNAUTHENTICATED", f"the Authorization header is not Bearer: {HOW}")
    return credentials.strip()


async def authenticate(request: Request) -> Principal:
    """The principal of the request's key (dev mode: admin of `default`), or Refused."""
    return await authenticate_header(
        request.app.state.usertrail, request.headers.get("authorization")
    )


async def authenticate_header(state: Any, header: str | None) -> Principal:
    """The principal of an `Authorization` value (dev mode: admin of `default`), or Refused.

    WebSocket subscriptions send it in their `connection_init` payload (server/graphql_app.py).
    """
    try:
        if state.settings.dev:
            return Principal(await state.environment_for(None), "admin")
        key = key_of(header)
        if key is None:
            raise Refused(401, "UNAUTHENTICATED", f"this API needs an API key: {HOW}")
        principal = await state.principal_for_key(key)
    except Unavailable as outage:
        raise Refused(
            503,
            "UNAVAILABLE",
            "the database is unavailable; retry later",
            retry_after=getattr(outage, "retry_after", 1),
        ) from None
    if principal is None:
        raise Refused(401, "UNAUTHENTICATED", "the API key is unknown or revoked")
    return principal
