"""GraphQL subscriptions over WebSocket (`graphql-transport-ws`) on /graphql: who may connect.

The key is what a query needs (server/auth.py), sent as `Authorization: Bearer <key>` in the
`connection_init` payload (browsers cannot set headers on a WebSocket) or as the upgrade
request's header; dev mode needs none. A refused key closes the socket with 4403; the
subscription's fields are then checked against the key's scope as a query's are
(graph/scopes.py: `liveEvents` needs read).

Origins: a browser page may open a WebSocket to any site, CORS does not apply. The handshake
is accepted without an Origin (not a browser), from the server's own origin, from the
origins USERTRAIL_CORS_ORIGINS allows on /graphql, and in dev mode from loopback pages only
(server/cross_origin.py refuses other origins and DNS-rebinding hosts before this runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected

from graph.context import Context
from graph.loaders import Loaders
from server import auth
from server.settings import is_loopback_origin


class TextFrames(ASGIWebSocketAdapter):
    """Messages as text frames, as graphql-transport-ws requires (Strawberry sends the bytes
    an orjson `encode_json` returns as binary frames, which clients refuse)."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        encoded = self.view.encode_json(message)
        try:
            await self.ws.send_text(encoded.decode() if isinstance(encoded, bytes) else encoded)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


def connection_key(context: Context) -> str | None:
    """The `Authorization` value of the connection_init payload, else of the upgrade request."""
    params = context.connection_params
    if isinstance(params, dict):
        for name, value in params.items():
            if isinstance(name, str) and name.lower() == "authorization":
                return value if isinstance(value, str) else None
    websocket: WebSocket = context.request
    return websocket.headers.get("authorization")


async def authenticate(context: Context) -> dict[str, Any] | None:
    """Fill the connection's context with the key's environment and scope, or refuse it."""
    websocket: WebSocket = context.request
    state = websocket.app.state.usertrail
    try:
        principal = await auth.authenticate_header(state, connection_key(context))
    except auth.Refused as refused:
        raise ConnectionRejectionError({"message": refused.message, "code": refused.code}) from None
    context.principal = principal
    context.environment_id = principal.environment_id
    context.loaders = Loaders(state.db, principal.environment_id)
    context.live = state.live
    return None


def origin_allowed(websocket: WebSocket, origin: str) -> bool:
    """A cross-origin handshake Strawberry's `allowed_origins` did not allow: loopback pages
    in dev mode (the rule of server/cross_origin.py)."""
    return bool(websocket.app.state.usertrail.settings.dev) and is_loopback_origin(origin)
