"""Request-safety extensions: query limits, caches, scopes, and errors logged with a request id.

Extensions are passed as classes or factories, so every request gets its own instances.
Order matters: the token limit applies to parsing, the document-shape limit runs between
parsing and validation, scopes and list sizes are checked before execution.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import strawberry
from graphql import GraphQLError, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from graph.query_limits import DocumentShapeLimiter, ListLimiter
from graph.scopes import ScopeCheck
from services.errors import TimedOut, Unavailable

log = logging.getLogger("usertrail.graphql")

MAX_DEPTH = 12
MAX_ALIASES = 30
# A big UI query is ~1,000 tokens; batches belong in variables (an inline 1000-event
# trackBatch is ~34,000 tokens and takes 0.7 s to parse and validate).
MAX_TOKENS = 5000
CACHE_SIZE = 256
MASKED_MESSAGE = "Unexpected error."
# Strawberry's limiters build a new rule class per instance, and ValidationCache keys on
# the rule classes: rules built once keep the cache hitting across requests.
QUERY_RULES = [
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
]


def is_unexpected(error: GraphQLError) -> bool:
    """Errors raised by bugs or outages; validation, limit and input errors stay readable."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def timeout_message(seconds: float) -> str:
    """What a client reads when a statement of its query ran past the statement timeout."""
    return (
        f"the query took longer than {seconds:g} s and was stopped; narrow the filter (fewer "
        "conditions, a shorter time range), ask for smaller pages, or leave out totalCount"
    )


def _is_outage(original: BaseException | None) -> bool:
    # Only what models.db classified as an outage: other database errors are bugs to see,
    # not reasons for clients to retry forever.
    return isinstance(original, Unavailable)


def reported(error: GraphQLError, *, request_id: str | None, mask: bool) -> GraphQLError:
    """An unexpected error logged with the request id, and as the client sees it."""
    original = error.original_error
    where = ".".join(map(str, error.path or ())) or "(operation)"
    if _is_outage(original):
        log.warning("request %s: %s failed, database unavailable: %s", request_id, where, original)
        message, code = "the database is unavailable; retry later", "UNAVAILABLE"
    elif isinstance(original, TimedOut):  # a short line: no statement, no traceback
        log.warning("request %s: %s stopped: %s", request_id, where, original)
        message, code = timeout_message(original.seconds), TimedOut.code
    else:
        log.error("request %s: %s failed unexpectedly", request_id, where, exc_info=original)
        message, code = (MASKED_MESSAGE if mask else error.message), "INTERNAL_SERVER_ERROR"
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": code, "requestId": request_id},
    )


def report_unexpected(
    errors: list[GraphQLError], *, request_id: str | None, mask: bool
) -> list[GraphQLError]:
    """The errors with every unexpected one logged and replaced (masked when `mask`)."""
    return [
        reported(e, request_id=request_id, mask=mask) if is_unexpected(e) else e for e in errors
    ]


class UnexpectedErrors(SchemaExtension):
    """Log unexpected errors with the request id; outside dev mode, mask their messages."""

    def __init__(self, *, mask: bool):
        self.mask = mask

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if errors:
            request_id = getattr(self.execution_context.context, "request_id", None)
            result.errors = report_unexpected(errors, request_id=request_id, mask=self.mask)  # type: ignore[union-attr]


class SkippableValidationCache(ValidationCache):
    """ValidationCache that leaves alone a document already refused before validation."""

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors:
            yield
            return
        yield from super().on_validate()


class SubscriptionsOverWebSocket(SchemaExtension):
    """A subscription sent over HTTP is refused, saying where to send it (it would otherwise
    run as a query and fail)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        over_websocket = getattr(context.context, "websocket", False)
        if (
            context.result is None
            and context.operation_type is OperationType.SUBSCRIPTION
            and not over_websocket
        ):
            error = GraphQLError(
                "subscriptions are served over WebSocket: connect to ws://<host>/graphql "
                "with the graphql-transport-ws protocol (e.g. the graphql-ws client)",
                extensions={"code": "SUBSCRIPTION_NEEDS_WEBSOCKET"},
            )
            context.result = PreExecutionError(data=None, errors=[error])
        yield


class SharedReads(SchemaExtension):
    """A query's loaders read through one connection (graph/loaders.py); mutations don't.

    The GraphQL app gives the connection back when the request ends (`Loaders.release`).
    """

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        loaders = getattr(context.context, "loaders", None)
        refused = context.result is not None  # by the scope or list limits, before running
        if loaders is not None and not refused and context.operation_type is OperationType.QUERY:
            loaders.share_connection()
        yield


def extensions_for(*, dev: bool) -> list[Callable[[], Any]]:
    """Factories (never shared instances) of the schema's extensions."""
    return [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=CACHE_SIZE),
        DocumentShapeLimiter,
        lambda: AddValidationRules(QUERY_RULES),
        lambda: SkippableValidationCache(maxsize=CACHE_SIZE),
        ScopeCheck,
        SubscriptionsOverWebSocket,
        ListLimiter,
        SharedReads,
        lambda: UnexpectedErrors(mask=not dev),
    ]


def without_introspection(schema: strawberry.Schema) -> strawberry.Schema:
    """The schema with `__schema` and `__type` refused by validation (`__typename` stays).

    "Did you mean …" suggestions go too: they would spell the schema out field by field.
    """
    schema.extensions = (
        *schema.extensions,
        lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]),
    )
    schema.config.disable_field_suggestions = True
    return schema


class _LoggedWithRequestIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def quiet_strawberry_errors() -> None:
    """Drop Strawberry's own log of every error (validation errors included, no request id).

    UnexpectedErrors logs the errors worth a look, once, with their request id.
    """
    logger = logging.getLogger("strawberry.execution")
    if not any(isinstance(f, _LoggedWithRequestIds) for f in logger.filters):
        logger.addFilter(_LoggedWithRequestIds())
