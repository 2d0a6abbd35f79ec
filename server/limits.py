"""Request body limits on every route, enforced before a route reads a byte.

| path          | limit   | why                                                              |
| ------------- | ------- | ---------------------------------------------------------------- |
| `/graphql`    | 4 MiB   | a 1000-event `trackBatch` in variables, ~4 KB per event          |
| `/api/…`      | 8 MiB   | Heap's bulk routes (heap_api.MAX_BODY)                           |
| `/v1/…`       | 1 MiB   | outer bound; the Segment routes refuse over 500 KB themselves,   |
|               |         | with the 400 answer Segment's SDKs expect                        |
| anything else | 64 KiB  | `/healthz` and unknown paths need no body                        |

A Content-Length over the limit is answered 413 at once, without reading the body. A body
without a length (chunked) is read up to the limit before the route runs, then handed to
it; one byte more and the answer is 413. The answer is JSON naming the limit, in GraphQL's
error shape on `/graphql` and in the `{success, code, message}` shape elsewhere.

These bound the bytes on the wire. A gzip body (`/api/…`, `/v1/…`) is inflated by the route's
read (server/http_errors.read_body), in time linear in those bytes and to at most the same
limit, before anything in it is looked at.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import heap_api
from server.http_errors import JSONBody

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """The largest body the routes under `prefix` accept."""

    prefix: str
    limit: int
    graphql: bool = False  # answer refusals in GraphQL's error shape

    def refusal(self, path: str) -> Response:
        """413, naming the limit."""
        message = (
            f"the request body is larger than the limit of {self.limit} bytes "
            f"({_size(self.limit)}) for {path}"
        )
        if self.graphql:
            extensions = {"code": "PAYLOAD_TOO_LARGE", "limit": self.limit}
            return JSONBody({"errors": [{"message": message, "extensions": extensions}]}, 413)
        body = {"success": False, "code": "PAYLOAD_TOO_LARGE", "message": message}
        return JSONBody({**body, "limit": self.limit}, 413)


LIMITS = (
    BodyLimit("/graphql", 4 * MiB, graphql=True),
    BodyLimit("/api/", heap_api.MAX_BODY),
    BodyLimit("/v1/", 1 * MiB),
)
DEFAULT_LIMIT = BodyLimit("", 64 * 1024)


def _size(limit: int) -> str:
    return f"{limit / MiB:g} MiB" if limit >= MiB else f"{limit / 1024:g} KiB"


def limit_for(path: str) -> BodyLimit:
    """The limit of the route at `path`."""
    return next((rule for rule in LIMITS if path.startswith(rule.prefix)), DEFAULT_LIMIT)


class BodyLimits:
    """ASGI middleware refusing request bodies larger than their route's limit."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = limit_for(scope["path"])
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and "transfer-encoding" not in headers:
            if int(declared) > rule.limit:
                await rule.refusal(scope["path"])(scope, receive, send)
            else:  # the server hands the route at most Content-Length bytes
                await self.app(scope, receive, send)
            return
        buffered = await _read_up_to(receive, rule.limit)
        if buffered is None:
            await rule.refusal(scope["path"])(scope, receive, send)
            return

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)


async def _read_up_to(receive: Receive, limit: int) -> list[Message] | None:
    """The body's messages, read while they stay within `limit` bytes (None: over it)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages  # the client went away; the route sees it
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages
