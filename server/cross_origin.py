"""Cross-origin requests (CORS) by route family, and dev mode's guard against other origins.

| routes          | origins allowed outside dev mode                                  |
| --------------- | ----------------------------------------------------------------- |
| `/graphql`      | USERTRAIL_CORS_ORIGINS (default none)                             |
| `/v1/…` `/api/…`| those, plus USERTRAIL_CORS_INGEST_ORIGINS (default `*`)           |
| anything else   | none: `/healthz`, `/metrics` and pages are not for other origins  |

Ingestion routes allow any origin by default because browser SDKs (analytics.js, RudderStack)
post from customers' sites with a write key that is public anyway, and their answers carry
counts, never stored data; `USERTRAIL_CORS_INGEST_ORIGINS=` (empty) narrows them to
USERTRAIL_CORS_ORIGINS. No answer ever carries `Access-Control-Allow-Credentials`: the API
authenticates with an `Authorization` header that a page sets itself, sets no cookie, and
has no use for a browser's ambient credentials. A preflight from an origin not allowed is
answered 400, and any other answer to it carries no `Access-Control-*` header.

Dev mode needs no key, so any page a developer opens could otherwise drive the server:
there only loopback origins (`http(s)://localhost`, `127.0.0.1`, `[::1]`, any port) are
allowed, whatever the settings say (a non-loopback origin configured in dev mode is refused
at start), and a request that carries another `Origin`, or a `Host` naming neither loopback
nor a local name without a dot (a DNS-rebinding page), is refused with 403 before any route
runs, WebSockets included.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.http_errors import JSONBody
from server.settings import ORIGIN, SettingError, Settings, is_loopback, is_loopback_origin

GRAPHQL_METHODS = ("GET", "POST", "OPTIONS")
INGEST_METHODS = ("POST", "OPTIONS")
# What browser clients send beyond the CORS-safelisted headers: the key, JSON, a request id
# to follow, Apollo's client-awareness and CSRF-prevention headers; RudderStack's browser
# SDK adds AnonymousId, and a page may gzip an ingestion body (the routes inflate it).
GRAPHQL_HEADERS = (
    "authorization",
    "content-type",
    "x-request-id",
    "apollographql-client-name",
    "apollographql-client-version",
    "apollo-require-preflight",
    "x-apollo-operation-name",
)
INGEST_HEADERS = (
    "authorization",
    "content-type",
    "content-encoding",
    "anonymousid",
    "x-request-id",
)
# Answer headers a page may read besides the safelisted ones.
EXPOSED_HEADERS = ("X-Request-Id", "Retry-After")
# Seconds a browser may reuse a preflight (Chromium caps it at 7200).
MAX_AGE = 7200
INGEST_PREFIXES = ("/v1/", "/api/")
DEFAULT_INGEST_ORIGINS = ("*",)


def allowed_origins(settings: Settings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The origins allowed on /graphql and on the ingestion routes (dev mode: loopback only,
    by rule, so none listed); SettingError for a non-loopback origin configured in dev mode."""
    if settings.dev:
        configured = [*settings.cors_origins, *(settings.cors_ingest_origins or ())]
        refused = [origin for origin in configured if not is_loopback_origin(origin)]
        if refused:
            raise SettingError(
                f"refusing CORS origins {', '.join(refused)} in dev mode: dev mode needs no "
                "API key, so only pages on localhost, 127.0.0.1 or [::1] may call it (any "
                "port, allowed without listing them); serve without --dev, with API keys, "
                "to let other origins call the API"
            )
        return (), ()
    ingest_extra = (
        DEFAULT_INGEST_ORIGINS
        if settings.cors_ingest_origins is None
        else settings.cors_ingest_origins
    )
    ingest = tuple(dict.fromkeys((*settings.cors_origins, *ingest_extra)))
    return settings.cors_origins, ingest


class OriginPolicy(CORSMiddleware):
    """Starlette's CORS for one route family, without credentials; loopback origins by rule in
    dev mode; a refused preflight keeps no `Access-Control-Allow-*` header."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        origins: Collection[str],
        methods: Collection[str],
        headers: Collection[str],
        loopback: bool,
    ):
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=methods,
            allow_headers=headers,
            allow_credentials=False,
            expose_headers=EXPOSED_HEADERS,
            max_age=MAX_AGE,
        )
        self.loopback = loopback

    def is_allowed_origin(self, origin: str) -> bool:
        return (self.loopback and is_loopback_origin(origin)) or super().is_allowed_origin(origin)

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if (
            message["type"] != "http.response.start"
            or origin is None
            or self.is_allowed_origin(origin)
        ):
            await super().send(message, send, request_headers)
            return
        # An origin not allowed gets no Access-Control-* header at all (Starlette would still
        # send Expose-Headers); the answer depends on Origin all the same.
        message.setdefault("headers", [])
        headers = MutableHeaders(scope=message)
        headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Origin"])
        await send(message)

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 200:
            for name in {k for k in response.headers if k.startswith("access-control-")}:
                del response.headers[name]
        return response


class CrossOrigin:
    """ASGI middleware: the CORS policy of the request's route family; in dev mode, first the
    refusal of requests from other origins or addressed to a non-loopback host."""

    def __init__(self, app: ASGIApp, settings: Settings):
        graphql_origins, ingest_origins = allowed_origins(settings)
        self.app = app
        self.dev = settings.dev
        self.graphql = OriginPolicy(
            app,
            origins=graphql_origins,
            methods=GRAPHQL_METHODS,
            headers=GRAPHQL_HEADERS,
            loopback=settings.dev,
        )
        self.ingest = OriginPolicy(
            app,
            origins=ingest_origins,
            methods=INGEST_METHODS,
            headers=INGEST_HEADERS,
            loopback=settings.dev,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.dev:
            refusal = _dev_refusal(Headers(scope=scope))
            if refusal is not None:
                await _refuse(scope, receive, send, refusal)
                return
        path = scope["path"]
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
        elif path == "/graphql":
            await self.graphql(scope, receive, send)
        elif path.startswith(INGEST_PREFIXES):
            await self.ingest(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _dev_refusal(headers: Headers) -> str | None:
    """Why dev mode refuses a request: another page's Origin, or a Host not on loopback."""
    host = headers.get("host")
    if host is not None and not _is_local_host(host):
        return (
            f"dev mode answers only requests addressed to localhost, 127.0.0.1 or [::1]; this "
            f"one names the host {host[:100]!r} (a page that made its name point here?)"
        )
    origin = headers.get("origin")
    if origin is not None and not is_loopback_origin(origin):
        return (
            f"dev mode needs no API key, so it answers only pages on localhost, 127.0.0.1 or "
            f"[::1]; this request comes from {origin[:100]!r}: serve without --dev, with API "
            "keys and USERTRAIL_CORS_ORIGINS, to let other origins call the API"
        )
    return None


def _is_local_host(host: str) -> bool:
    """True for a Host header naming loopback, or a name without a dot (`testserver`): a
    DNS-rebinding page needs a name of the attacker's, which public DNS answers."""
    found = ORIGIN.fullmatch(f"http://{host}")
    if found is None:
        return False
    name = found.group(2).lower()
    return is_loopback(name.strip("[]")) or not ("." in name or name.startswith("["))


async def _refuse(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    """403 with a JSON error (GraphQL's shape on /graphql); a WebSocket is closed unaccepted."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": "forbidden origin"})
        return
    code = "FORBIDDEN_ORIGIN"
    if scope["path"] == "/graphql":
        body: dict[str, object] = {"errors": [{"message": message, "extensions": {"code": code}}]}
    else:
        body = {"success": False, "code": code, "message": message}
    await JSONBody(body, status_code=403)(scope, receive, send)
