"""Which API-key scope each root field needs, and the extension that enforces it.

`read` may query, `ingest` may call the ingestion mutations, `admin` may do everything
(services/keys.py). A root field missing from FIELD_SCOPES needs `admin`: a new field is
closed until someone decides who may call it. An operation is refused as a whole, before
anything runs, when one of its root fields needs more than the key grants.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
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
    "createSegment",
    "updateSegment",
    "deleteSegment",
)
FIELD_SCOPES: dict[tuple[str, str], str] = {
    **{("query", name): "read" for name in READ_FIELDS},
    **{("mutation", name): "ingest" for name in INGEST_FIELDS},
    **{("mutation", name): "admin" for name in ADMIN_FIELDS},
}
DEFAULT_SCOPE = "admin"
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
        held = f"this key has scope {principal.scope}" if principal else "no key was given"
        return GraphQLError(
            f"`{field}` needs an API key with scope {needed}"
            f"{'' if needed == 'admin' else ' (or admin)'}; {held}",
            extensions={"code": "FORBIDDEN", "requiredScope": needed, "field": field},
        )
    return None


class ScopeCheck(SchemaExtension):
    """Refuse an operation whose root fields need more than the request's key grants."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        principal = getattr(context.context, "principal", None)
        document = context.graphql_document
        if document is not None:
            operation = get_operation_ast(document, context.operation_name)
            if operation is not None:
                kind = operation.operation.value
                error = refusal(principal, kind, root_fields(document, operation))
                if error is not None:
                    context.result = PreExecutionError(data=None, errors=[error])
        yield
