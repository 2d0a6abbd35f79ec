"""The GraphQL endpoint: Strawberry's ASGI app with authentication, context, GraphQL over HTTP.

- Every request but the GraphiQL page is authenticated first (server/auth.py).
- Media types: `application/graphql-response+json` when the client's Accept prefers it to
  `application/json`; then a request error (the operation never ran: parse, validation,
  variable coercion, limits) answers 400 without a `data` entry. With `application/json`
  such errors answer 200 with `data: null`, as legacy clients expect. An operation refused
  for its key's scope answers 403 in both.
- Strawberry's plain-text refusals (unparsable JSON, GET mutations, ...) become GraphQL-shaped
  JSON errors with the same status.
"""

from __future__ import annotations

import json
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from graph.extensions import is_unexpected, report_unexpected
from resolvers.context import Context
from resolvers.loaders import Loaders
from server import auth, request_ids
from server.http_errors import JSONBody
from services.errors import Unavailable

GRAPHQL_RESPONSE = "application/graphql-response+json"
FORBIDDEN = "FORBIDDEN"


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

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        if not isinstance(request, Request):  # no subscriptions, and no way around the key
            return await self.reject_websocket(request)
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
        except HTTPException as refusal:
            return _error(refusal.status_code, refusal.reason)
        except Unavailable as outage:  # e.g. resolving the environment of a cold worker
            return auth.Refused(
                503,
                "UNAVAILABLE",
                "the database is unavailable; retry later",
                retry_after=getattr(outage, "retry_after", 1),
            ).response()
        return _negotiated(request, response)

    async def get_context(self, request: Request | Any, response: Response | Any) -> Context:
        state = request.app.state.usertrail
        environment_id = await state.environment_for(request)
        return Context(
            db=state.db,
            environment_id=environment_id,
            dev=state.settings.dev,
            loaders=Loaders(state.db, environment_id),
            request=request,
            response=response,
            principal=getattr(request.state, "principal", None),
            request_id=request_ids.id_of(request.scope),
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
        if outcome != "ran" and prefers_graphql_response(request.headers.get("accept")):
            processed.pop("data", None)  # a request error has no data entry
        return processed

    def decode_json(self, data: str | bytes) -> object:
        """The JSON body; Strawberry answers 400 to a JSONDecodeError, and to nothing else."""
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


def _error(status: int, message: str) -> Response:
    return JSONBody({"errors": [{"message": message}]}, status_code=status)
