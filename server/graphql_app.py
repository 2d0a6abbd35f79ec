"""The GraphQL endpoint: Strawberry's ASGI app with authentication, context, GraphQL over HTTP.

- Every request but the GraphiQL page is authenticated first (server/auth.py). The page is
  the project's own (server/ide.py), built from npm packages and served by the app.
- Media types: `application/graphql-response+json` when the client's Accept prefers it to
  `application/json`; then a request error (the operation never ran: parse, validation,
  variable coercion, limits) answers 400 without a `data` entry. With `application/json`
  such errors answer 200 with `data: null`, as legacy clients expect. An operation refused
  for its key's scope answers 403 in both.
- Strawberry's plain-text refusals (unparsable JSON, ...) become GraphQL-shaped JSON errors with
  the same status; an operation GET may not run (a mutation) answers 405 with `Allow: POST`.
- Apollo's automatic persisted queries (server/persisted_queries.py): a request may carry a
  query's hash instead of its text, once the text has been sent with it.
- A client that leaves before its body is read is logged at info, nothing else.
- Responses are encoded by orjson (`encode_json`), unless USERTRAIL_FAST_PATHS=0.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import orjson
from cross_web import HTTPException
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from graph.context import Context
from graph.extensions import is_unexpected, report_unexpected
from graph.loaders import Loaders
from graph.schema import BUILDERS
from server import auth, ide, request_ids, subscriptions
from server.assets import Assets
from server.http_errors import CLIENT_CLOSED, JSON_REFUSED, JSONBody, parse_json
from server.persisted_queries import (
    Pending,
    PersistedQueries,
    PersistedQueryRefused,
    requested_by_get,
)
from services.errors import Unavailable

log = logging.getLogger("usertrail.graphql")
# Connections being given back after their requests answered (kept from garbage collection).
RELEASING: set[asyncio.Task[None]] = set()

GRAPHQL_RESPONSE = "application/graphql-response+json"
FORBIDDEN = "FORBIDDEN"


def encode_json(data: object) -> bytes | str:
    """The response body by orjson (compact UTF-8 JSON); what orjson refuses (ints beyond 64
    bits, non-string keys, lone surrogates) by json.dumps.

    Fast path (USERTRAIL_FAST_PATHS; off: Strawberry's own `json.dumps`). Pays: the nested
    query (first 50, ~110 KB) takes 1.06-1.12x the CPU and 1.3-1.4x the wall time with
    json.dumps (`python -m bench.internals`, December 2026). The bytes differ from
    json.dumps's (UTF-8 rather than `\\u` escapes, `1e-05` written `1e-5`), the values do
    not. It overrides Strawberry's documented `encode_json` hook with orjson's public API
    (orjson 3.13), so no internals are involved.
    """
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":"))


def prefers_graphql_response(accept: str | None) -> bool:
    """True when Accept ranks application/graphql-response+json at least as application/json."""
    ranks: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *parameters = (item.strip() for item in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranks[media.lower()] = max(ranks.get(media.lower(), 0.0), quality)
    wanted = ranks.get(GRAPHQL_RESPONSE, 0.0)
    return wanted > 0 and wanted >= ranks.get("application/json", 0.0)


def outcome_of(result: ExecutionResult) -> str:
    """`forbidden`, `request error` (nothing ran: no data, no error has a path), or `ran`."""
    errors = result.errors or []
    if result.data is not None or not errors:
        return "ran"
    if any((e.extensions or {}).get("code") == FORBIDDEN for e in errors):
        return "forbidden"
    return "request error" if all(e.path is None for e in errors) else "ran"


class GraphQLApp(GraphQL[Context, None]):
    """Authenticates, builds a Context (database, environment, loaders, caller) per request."""

    websocket_adapter_class = subscriptions.TextFrames

    def __init__(
        self,
        schema: Any,
        *,
        persisted_queries: PersistedQueries | None = None,
        assets: Assets | None = None,
        fast_json: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(schema, **options)
        self.fast_json = fast_json  # False: Strawberry's own json.dumps
        if persisted_queries is None:  # (an empty cache is falsy: it has a length)
            persisted_queries = PersistedQueries()
        self.persisted_queries = persisted_queries
        self.assets = assets if assets is not None else Assets()

    async def render_graphql_ide(self, request: Request) -> Response:
        """The project's GraphiQL page over its own built assets (server/ide.py), no CDN."""
        dev = request.app.state.usertrail.settings.dev
        host = request.headers.get("host")
        return ide.graphiql_page(self.assets, endpoint=request.url.path, dev=dev, host=host)

    @property
    def graphql_ide_html(self) -> str:
        """Strawberry's page loads GraphiQL from a CDN: never served (see render_graphql_ide)."""
        raise NotImplementedError("the GraphiQL page is server/ide.py's")

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        if not isinstance(request, Request):  # a subscription (server/subscriptions.py)
            return await super().run(request, context, root_value)
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            if self.graphql_ide:
                return await self.render_graphql_ide(request)
            return _error(404, "Not Found")
        try:
            request.state.principal = await auth.authenticate(request)
        except auth.Refused as refused:
            return refused.response()
        try:
            response = await super().run(request, context, root_value)
        except PersistedQueryRefused as refused:
            return _negotiated_error(request, refused.status, refused.body())
        except HTTPException as refusal:
            if isinstance(refusal.__cause__, InvalidOperationTypeError):
                return _not_by_get(refusal.__cause__)
            return _error(refusal.status_code, refusal.reason)
        except ClientDisconnect:  # nothing to answer and nothing ran: not a failure of ours
            log.info("the client closed the connection before sending the whole request body")
            return Response(status_code=CLIENT_CLOSED)
        except Unavailable as outage:  # e.g. resolving the environment of a cold worker
            return auth.Refused(
                503,
                "UNAVAILABLE",
                "the database is unavailable; retry later",
                retry_after=getattr(outage, "retry_after", 1),
            ).response()
        finally:
            _release_connection(request)
        return _negotiated(request, response)

    async def get_context(self, request: Request | Any, response: Response | Any) -> Context:
        state = request.app.state.usertrail
        if isinstance(request, WebSocket):  # filled in by on_ws_connect, from the key
            return Context(
                db=state.db,
                environment_id=0,
                dev=state.settings.dev,
                loaders=Loaders(state.db, 0),
                build=BUILDERS,
                request=request,
                response=response,
                websocket=True,
            )
        environment_id = await state.environment_for(request)
        context = request.state.graphql_context = Context(
            db=state.db,
            environment_id=environment_id,
            dev=state.settings.dev,
            loaders=Loaders(state.db, environment_id),
            build=BUILDERS,
            request=request,
            response=response,
            principal=getattr(request.state, "principal", None),
            request_id=request_ids.id_of(request.scope),
            sender=state.sender_for(request),
        )
        return context

    async def on_ws_connect(self, context: Context) -> dict[str, Any] | None:
        return await subscriptions.authenticate(context)

    def is_websocket_origin_allowed(self, request: Any, origin: str) -> bool:
        return super().is_websocket_origin_allowed(request, origin) or (
            subscriptions.origin_allowed(request, origin)
        )

    def should_render_graphql_ide(self, request: Any) -> bool:
        """GraphiQL for a browser's GET, not for a persisted query's (`?extensions=...`)."""
        if requested_by_get(request.query_params):
            return False
        return super().should_render_graphql_ide(request)

    async def execute_operation(
        self,
        request: Any,
        request_adapter: Any,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: Any,
        sub_response: Any,
    ) -> Any:
        if isinstance(request_data, GraphQLRequestData):  # batches are not enabled
            request_data, request.state.persisted_query = self.persisted_queries.resolve(
                request_data, environment_id=context.environment_id
            )
        return await super().execute_operation(
            request=request,
            request_adapter=request_adapter,
            request_data=request_data,
            context=context,
            root_value=root_value,
            sub_response=sub_response,
        )

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        errors = result.errors or []
        if any(is_unexpected(e) for e in errors):  # raised where the extensions could not mask
            dev = request.app.state.usertrail.settings.dev
            request_id = request_ids.id_of(request.scope)
            result.errors = report_unexpected(errors, request_id=request_id, mask=not dev)
        processed = await super().process_result(request, result)
        outcome = outcome_of(result)
        request.state.graphql_outcome = outcome
        pending: Pending | None = getattr(request.state, "persisted_query", None)
        if pending is not None and outcome == "ran":  # parsed, validated, within the limits
            self.persisted_queries.keep(pending)
        if outcome != "ran" and prefers_graphql_response(request.headers.get("accept")):
            processed.pop("data", None)  # a request error has no data entry
        return processed

    def encode_json(self, data: object) -> bytes | str:
        return encode_json(data) if self.fast_json else super().encode_json(data)

    def decode_json(self, data: str | bytes) -> object:
        """The JSON body; Strawberry answers 400 to a JSONDecodeError, and to nothing else.

        msgspec reads a body (a 500-event trackBatch) about twice as fast as the standard
        library, with the same values; what it refuses (UTF-16, NaN, lone surrogates, deep
        nesting) is read again by `json`, which accepts or explains it as before."""
        try:
            return parse_json(data)
        except JSON_REFUSED:
            pass
        try:
            return json.loads(data)
        except RecursionError:  # nesting deeper than the interpreter's stack
            raise json.JSONDecodeError("the JSON nests too deeply", "", 0) from None
        except UnicodeDecodeError as error:  # not UTF-8 (or a compressed body)
            raise json.JSONDecodeError(f"the body is not UTF-8: {error}", "", 0) from None


def _negotiated(request: Request, response: Response) -> Response:
    """The answer with the media type the client asked for and the status of its outcome."""
    outcome = getattr(request.state, "graphql_outcome", None)
    if outcome is None:
        return response
    graphql_response = prefers_graphql_response(request.headers.get("accept"))
    if graphql_response:
        response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
    if outcome == "forbidden":
        response.status_code = 403
    elif outcome == "request error" and graphql_response:
        response.status_code = 400
    return response


def _release_connection(request: Request) -> None:
    """Give back the connection a query's loaders shared (graph/extensions.SharedReads).

    In a task of its own: the answer need not wait for the connection's rollback.
    """
    context = getattr(request.state, "graphql_context", None)
    if context is None or not context.loaders.shared:
        return
    task = asyncio.create_task(_release(context))
    RELEASING.add(task)
    task.add_done_callback(RELEASING.discard)


async def _release(context: Context) -> None:
    try:
        await context.loaders.release()
    except (OSError, SQLAlchemyError) as error:  # the answer is computed: only log it
        log.warning("request %s: releasing its connection failed: %s", context.request_id, error)


def _error(status: int, message: str) -> Response:
    return JSONBody({"errors": [{"message": message}]}, status_code=status)


def _negotiated_error(request: Request, status: int, body: dict[str, Any]) -> Response:
    """An error answered in the media type the client prefers."""
    response = JSONBody(body, status_code=status)
    if prefers_graphql_response(request.headers.get("accept")):
        response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
    return response


def _not_by_get(refused: InvalidOperationTypeError) -> Response:
    """405 for an operation GET may not run (GraphQL over HTTP: only queries are safe)."""
    kind = refused.as_http_error_reason("GET").split(" ", 1)[0]  # "mutations", "subscriptions"
    message = f"{kind} cannot be sent with GET, which is for queries only: send them with POST"
    body = {"errors": [{"message": message, "extensions": {"code": "METHOD_NOT_ALLOWED"}}]}
    return JSONBody(body, status_code=405, headers={"Allow": "POST"})
