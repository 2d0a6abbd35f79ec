"""Which API-key scope each field needs, and the extension that enforces it.

`read` may query, `ingest` may call the ingestion mutations, `admin` may do everything
(services/keys.py). A root field missing from FIELD_SCOPES needs `admin`: a new field is
closed until someone decides who may call it.

Below the root, every field shows stored data and needs `read`, except OPEN_FIELDS: what a
mutation's caller sent or may know anyway (counts, errors, ids). So an ingest key, public
in browser SDKs, gets from `identify` or `addUserProperties` the user's id and userId, and
nothing of anyone's profile or history (`user { properties }` is refused).

An operation is refused as a whole, before anything runs, when one of its fields needs more
than the key grants. The check walks the document once (each fragment once, whatever the
number of its spreads), so it costs nothing per resolved field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    BREAK,
    SKIP,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    visit,
)
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import PreExecutionError

INGEST_FIELDS = ("track", "trackBatch", "identify", "addUserProperties", "addUserPropertiesBatch")
READ_FIELDS = ("node", "user", "users", "sessions", "eventNames", "eventDefinitions", "segments")
ADMIN_FIELDS = (
    "defineEvent",
    "updateEventDefinition",
    "deleteEventDefinition",
    "deleteUser",
    "mergeUsers",
    "createSegment",
    "createStaticSegment",
    "addSegmentMembers",
    "removeSegmentMembers",
    "updateSegment",
    "deleteSegment",
)
FIELD_SCOPES: dict[tuple[str, str], str] = {
    **{("query", name): "read" for name in READ_FIELDS},
    ("subscription", "liveEvents"): "read",
    **{("mutation", name): "ingest" for name in INGEST_FIELDS},
    **{("mutation", name): "admin" for name in ADMIN_FIELDS},
}
DEFAULT_SCOPE = "admin"
# Fields below the root that any caller of the root field may select: (type, field names).
OPEN_FIELDS: dict[str, frozenset[str]] = {
    "TrackPayload": frozenset({"accepted", "duplicates", "errors", "event"}),
    "IdentifyPayload": frozenset({"user", "merged", "errors"}),
    "UserPropertiesPayload": frozenset({"user", "errors"}),
    "DeletePayload": frozenset({"deletedId", "errors"}),
    "EventDefinitionPayload": frozenset({"errors"}),
    "SegmentPayload": frozenset({"errors"}),
    "UserError": frozenset({"index", "field", "message", "code"}),
    # The user a payload names: ids only. Not `identity`: given a userId, it would tell an
    # ingest key who that user is (often an email address).
    "User": frozenset({"id", "userId"}),
    "Event": frozenset({"id"}),
}
NESTED_SCOPE = "read"
# The schema (when introspection is on at all, server/settings.py) is for read and admin keys:
# an ingest key is public in browser SDKs and needs no map of the API.
INTROSPECTION_FIELDS = ("__schema", "__type")


def needed_scope(operation: str, field: str) -> str | None:
    """The scope a root field needs (None: `__typename`, which any key may ask)."""
    if field in INTROSPECTION_FIELDS:
        return "read"
    if field.startswith("__"):
        return None
    return FIELD_SCOPES.get((operation, field), DEFAULT_SCOPE)


def nested_scope(type_name: str, field: str) -> str | None:
    """The scope a field below the root needs (None: open to whoever reached it)."""
    if field.startswith("__") or type_name.startswith("__"):  # introspection, __typename
        return None
    return None if field in OPEN_FIELDS.get(type_name, ()) else NESTED_SCOPE


def nested_refusal(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    principal: Any,
) -> GraphQLError | None:
    """A FORBIDDEN error naming the first field below the root (as `Type.field`) that the
    principal may not see, or None. Walks the operation and each fragment it uses once."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    used: dict[str, FragmentDefinitionNode] = {}
    pending = [operation.selection_set]
    while pending:  # the fragments reachable from the operation, each once
        for spread in _spreads(pending.pop()):
            name = spread.name.value
            if name not in used and name in fragments:
                used[name] = fragments[name]
                pending.append(fragments[name].selection_set)
    for definition in (operation, *used.values()):
        check = _NestedCheck(schema, TypeInfo(schema), principal)
        visit(definition, TypeInfoVisitor(check.info, check))
        if check.refused is not None:
            return check.refused
    return None


class _NestedCheck(Visitor):
    """Stops at the first field below the root that the principal may not see."""

    def __init__(self, schema: GraphQLSchema, info: TypeInfo, principal: Any):
        super().__init__()
        self.roots = (schema.query_type, schema.mutation_type, schema.subscription_type)
        self.info = info
        self.principal = principal
        self.refused: GraphQLError | None = None

    def enter_argument(self, *_: Any) -> Any:
        return SKIP  # values hold no fields: a 1000-item inline batch is not walked

    def enter_variable_definition(self, *_: Any) -> Any:
        return SKIP

    def enter_field(self, node: FieldNode, *_: Any) -> Any:
        parent = self.info.get_parent_type()
        if parent is None or parent in self.roots:
            return None  # root fields: refusal() decides
        needed = nested_scope(parent.name, node.name.value)
        if needed is None or (self.principal is not None and self.principal.may(needed)):
            return None
        self.refused = _forbidden(self.principal, needed, f"{parent.name}.{node.name.value}")
        return BREAK


def _spreads(selection_set: SelectionSetNode) -> Iterator[FragmentSpreadNode]:
    for selection in selection_set.selections:
        if isinstance(selection, FragmentSpreadNode):
            yield selection
        elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
            yield from _spreads(selection.selection_set)


def root_fields(document: DocumentNode, operation: OperationDefinitionNode) -> list[str]:
    """Names of the root fields an operation selects, through fragments, each once."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: dict[str, None] = {}
    seen: set[str] = set()

    def walk(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                names[selection.name.value] = None
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    walk(fragments[name].selection_set)

    walk(operation.selection_set)
    return list(names)


def refusal(principal: Any, operation: str, fields: list[str]) -> GraphQLError | None:
    """A FORBIDDEN error naming the first field the principal may not call, or None.

    Without a principal (a context that did not go through authentication) nothing but
    `__typename` is allowed.
    """
    for field in fields:
        needed = needed_scope(operation, field)
        if needed is None or (principal is not None and principal.may(needed)):
            continue
        return _forbidden(principal, needed, field)
    return None


def _forbidden(principal: Any, needed: str, field: str) -> GraphQLError:
    held = f"this key has scope {principal.scope}" if principal else "no key was given"
    return GraphQLError(
        f"`{field}` needs an API key with scope {needed}"
        f"{'' if needed == 'admin' else ' (or admin)'}; {held}",
        extensions={"code": "FORBIDDEN", "requiredScope": needed, "field": field},
    )


class ScopeCheck(SchemaExtension):
    """Refuse an operation whose fields need more than the request's key grants."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        principal = getattr(context.context, "principal", None)
        document = context.graphql_document
        if document is not None:
            operation = get_operation_ast(document, context.operation_name)
            if operation is not None:
                kind = operation.operation.value
                error = refusal(principal, kind, root_fields(document, operation))
                if error is None and not (principal is not None and principal.may(NESTED_SCOPE)):
                    # Only keys without `read` can be refused below the root.
                    schema = context.schema._schema
                    error = nested_refusal(schema, document, operation, principal)
                if error is not None and kind == "subscription":
                    raise error  # Strawberry ignores a result set here for subscriptions
                if error is not None:
                    context.result = PreExecutionError(data=None, errors=[error])
        yield
