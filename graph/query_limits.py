"""Limits on what one GraphQL request may cost, beyond Strawberry's depth, alias and token limits.

- Expanded size: a fragment spread in several places counts in each, so 800 bytes of
  fragments spreading each other four times per level select a million fields; Strawberry's
  depth and alias limiters walk that expansion (seconds, growing 4x per level). So does a
  fragment spread twice in one selection set (`F_i { ...F_{i-1} ...F_{i-1} }`: execution
  merges the two, the limiters walk both; 21 levels blocked the event loop 9 s). The
  document is refused right after parsing, before validation runs those limiters, when it
  selects more than MAX_EXPANDED_FIELDS fields once every spread is expanded (measured here
  in linear time, each fragment once).
- Repeated fields: graphql-core's OverlappingFieldsCanBeMerged rule compares every pair of
  fields with the same response name in a selection set, so `{ users {…} users {…} … }`
  repeated a thousand times costs seconds of validation in a 12 KB document. The document
  is refused, also before validation, when a selection set (with the fragments it
  spreads) repeats a response name more than MAX_REPEATED_FIELD times.
- Listed nodes: each list argument (`first`, `limit`) is bounded, but nested lists
  multiply (100 users × 100 sessions × 500 events). The operation is refused before it
  runs when the sum over its lists of the product of the page sizes along the path
  exceeds MAX_LISTED_NODES.
- Variables: no list in the variables may hold more than MAX_LIST_ITEMS items, checked
  before graphql-core coerces them (1.6 s for 100,000 events). Lists a little over the
  batch limit still reach the resolvers, whose BATCH_TOO_LARGE UserError says more.
- Filter conditions in the variables: Strawberry turns argument values into input objects
  at ~20 µs a field, so a 500 KB `anyOf` of 5,000 event conditions cost a second before any
  filter check could refuse it. Variables holding more property and event conditions than
  one request may compile (MAX_REQUEST_FILTER_CONDITIONS) are refused before execution.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
)
from graphql.utilities import get_operation_ast, type_from_ast
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import PreExecutionError

from services.filter_size import TOO_COMPLEX
from services.limits import MAX_BATCH, MAX_REQUEST_FILTER_CONDITIONS

MAX_EXPANDED_FIELDS = 2000
MAX_REPEATED_FIELD = 50
MAX_LISTED_NODES = 100_000
MAX_LIST_ITEMS = 10 * MAX_BATCH
# `last` first: when a query gives it, `first` is refused or only holds its default.
PAGE_ARGUMENTS = ("last", "first", "limit")
# No list serves more than this per page (the resolvers refuse more, naming the bound).
LARGEST_PAGE = 500
MAX_WALK = 100_000  # field visits while estimating; a document needing more is refused
CONTAINERS = (list, dict)  # what `longest_list` walks into
# Input types of the conditions of users and sessions filters (definitions have their own).
CONDITION_TYPES = frozenset({"PropertyCondition", "EventCondition"})


def too_complex(message: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "QUERY_TOO_COMPLEX", **extensions})


# ------------------------------------------------------------------------- document shape


class _Shape:
    """Expanded size and repeated fields of a document, each fragment measured once."""

    def __init__(self, document: DocumentNode):
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.sizes: dict[str, int] = {}
        self.names: dict[str, Counter[str]] = {}
        self.resolving: set[str] = set()

    def size(self, selection_set: SelectionSetNode) -> int:
        """Fields selected, every spread expanded (capped above the limit).

        A fragment spread twice in one selection set counts twice: execution merges the
        two, but Strawberry's depth and alias limiters walk each, so `F_i { ...F_{i-1}
        ...F_{i-1} }` doubles their work per level. Each fragment is measured once.
        """
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += 1 + (self.size(selection.selection_set) if selection.selection_set else 0)
            elif isinstance(selection, InlineFragmentNode):
                total += self.size(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment_size(selection.name.value)
            if total > MAX_EXPANDED_FIELDS:
                break
        return min(total, MAX_EXPANDED_FIELDS + 1)

    def _fragment_size(self, name: str) -> int:
        if name not in self.sizes:
            if name in self.resolving or name not in self.fragments:
                return 0  # a cycle or an unknown fragment: validation reports it
            self.resolving.add(name)
            self.sizes[name] = self.size(self.fragments[name].selection_set)
            self.resolving.discard(name)
        return self.sizes[name]

    def response_names(self, selection_set: SelectionSetNode) -> Counter[str]:
        """How often each response name occurs in one selection set, fragments merged in."""
        counts: Counter[str] = Counter()
        spread: set[str] = set()  # a fragment spread twice in one set is merged into one
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                counts[(selection.alias or selection.name).value] += 1
            elif isinstance(selection, InlineFragmentNode):
                counts += self.response_names(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in spread:
                spread.add(selection.name.value)
                counts += self._fragment_names(selection.name.value)
        return counts

    def _fragment_names(self, name: str) -> Counter[str]:
        if name not in self.names:
            if name in self.resolving or name not in self.fragments:
                return Counter()
            self.resolving.add(name)
            self.names[name] = self.response_names(self.fragments[name].selection_set)
            self.resolving.discard(name)
        return self.names[name]


def _selection_sets(document: DocumentNode) -> Iterator[SelectionSetNode]:
    pending = [
        d.selection_set
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while pending:
        selection_set = pending.pop()
        yield selection_set
        pending.extend(
            s.selection_set
            for s in selection_set.selections
            if isinstance(s, FieldNode | InlineFragmentNode) and s.selection_set is not None
        )


def shape_error(document: DocumentNode) -> GraphQLError | None:
    """Why the document is too costly to validate, or None."""
    shape = _Shape(document)
    try:
        for operation in document.definitions:
            if isinstance(operation, OperationDefinitionNode):
                if shape.size(operation.selection_set) > MAX_EXPANDED_FIELDS:
                    return too_complex(
                        f"the query selects more than {MAX_EXPANDED_FIELDS} fields once its "
                        "fragments are expanded",
                        limit=MAX_EXPANDED_FIELDS,
                    )
        for selection_set in _selection_sets(document):
            counts = shape.response_names(selection_set)
            if counts:
                name, count = counts.most_common(1)[0]
                if count > MAX_REPEATED_FIELD:
                    return too_complex(
                        f"`{name}` is selected {count} times in one selection set; "
                        f"the limit is {MAX_REPEATED_FIELD}",
                        limit=MAX_REPEATED_FIELD,
                    )
    except RecursionError:
        return too_complex("fragments spread each other too deeply")
    return None


class DocumentShapeLimiter(SchemaExtension):
    """Refuse, right after parsing and before validation, documents too costly to validate."""

    def on_parse(self) -> Iterator[None]:
        yield
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            error = shape_error(context.graphql_document)
            if error is not None:
                context.pre_execution_errors = [error]


# --------------------------------------------------------------------------- listed nodes


def _page_size(field: FieldNode, definition: Any, variables: dict[str, Any]) -> int | None:
    """The page size a list field asks for (its argument, else the default), or None."""
    for name in PAGE_ARGUMENTS:
        argument = definition.args.get(name)
        if argument is None:
            continue
        value: Any = None
        given = next((a.value for a in field.arguments or () if a.name.value == name), None)
        if isinstance(given, IntValueNode):
            value = int(given.value)
        elif isinstance(given, VariableNode):
            value = variables.get(given.name.value)
        if value is None and name == "last":
            continue  # not paging backward
        if value is None:  # absent or null: the resolver uses the default
            value = argument.default_value
        if not isinstance(value, int) or isinstance(value, bool):
            return 1  # not a number: variable coercion refuses it, with a clearer message
        # Over LARGEST_PAGE the resolver refuses the page itself, naming its bound.
        return max(1, min(value, LARGEST_PAGE))
    return None


def listed_nodes(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: dict[str, Any],
) -> int:
    """Objects the operation can list: per list field, the product of the pages around it."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    root = schema.get_root_type(operation.operation)
    total = 0
    visits = 0
    # (selection set, its type, product of the enclosing page sizes)
    pending: list[tuple[SelectionSetNode, Any, int]] = [(operation.selection_set, root, 1)]
    while pending:
        selection_set, parent, outer = pending.pop()
        spread: set[str] = set()
        selections = list(selection_set.selections)
        while selections:
            selection = selections.pop()
            visits += 1
            if visits > MAX_WALK or total > MAX_LISTED_NODES:
                return max(total, MAX_LISTED_NODES + 1)
            if isinstance(selection, InlineFragmentNode):
                typed = selection.type_condition
                pending.append(
                    (
                        selection.selection_set,
                        schema.get_type(typed.name.value) if typed else parent,
                        outer,
                    )
                )
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None and selection.name.value not in spread:
                    spread.add(selection.name.value)
                    kind = schema.get_type(fragment.type_condition.name.value)
                    pending.append((fragment.selection_set, kind, outer))
            elif isinstance(selection, FieldNode):
                definition = getattr(parent, "fields", {}).get(selection.name.value)
                if definition is None:
                    continue  # introspection or __typename
                size = _page_size(selection, definition, variables)
                inner = outer * size if size is not None else outer
                if size is not None:
                    total += inner
                if selection.selection_set is not None:
                    inner_type = get_named_type(definition.type)
                    pending.append((selection.selection_set, inner_type, inner))
    return total


def _holds_long_list(variables: Any) -> bool:
    """Whether a list in the variables is longer than MAX_LIST_ITEMS (only containers walked)."""
    pending = [variables]
    while pending:
        value = pending.pop()
        if isinstance(value, list):
            if len(value) > MAX_LIST_ITEMS:
                return True
            pending += [item for item in value if isinstance(item, CONTAINERS)]
        elif isinstance(value, dict):
            pending += [item for item in value.values() if isinstance(item, CONTAINERS)]
    return False


def longest_list(variables: Any) -> tuple[str, int] | None:
    """The path and length of the first list longer than MAX_LIST_ITEMS in the variables.

    Variables without one (nearly all) are walked once, without paths; paths are spelled only
    for the list found.
    """
    if not _holds_long_list(variables):
        return None
    pending: list[tuple[Any, Any]] = [(variables, ())]
    while pending:
        value, where = pending.pop()
        if isinstance(value, list):
            if len(value) > MAX_LIST_ITEMS:
                return _spelled(where), len(value)
            pending.extend((item, (where, i)) for i, item in enumerate(value))
        elif isinstance(value, dict):
            pending.extend((item, (where, key)) for key, item in value.items())
    return None


def _spelled(where: Any) -> str:
    """`$.events[3].properties` from the nested (parent, key) pairs of `longest_list`."""
    keys: list[Any] = []
    while where:
        where, key = where
        keys.append(key)
    path = "$"
    for key in reversed(keys):
        path += f"[{key}]" if isinstance(key, int) else f"{'' if path == '$' else '.'}{key}"
    return path


@functools.lru_cache(maxsize=8)  # one schema per app; tests build a few
def _holding_conditions(schema: GraphQLSchema) -> frozenset[str]:
    """Names of the input types that are, or can hold, a filter condition."""
    inputs = [t for t in schema.type_map.values() if isinstance(t, GraphQLInputObjectType)]
    holding = set(CONDITION_TYPES)
    grown = True
    while grown:  # a fixpoint: UserFilter holds UserFilter
        grown = False
        for input_type in inputs:
            if input_type.name not in holding and any(
                get_named_type(f.type).name in holding for f in input_type.fields.values()
            ):
                holding.add(input_type.name)
                grown = True
    return frozenset(holding)


def filter_conditions(
    schema: GraphQLSchema, operation: OperationDefinitionNode, variables: dict[str, Any]
) -> int:
    """Property and event conditions in the operation's variables (counting stops past the
    request's limit); only values of input types that can hold one are walked."""
    holding = _holding_conditions(schema)
    count = 0
    pending: list[tuple[Any, Any]] = []
    for definition in operation.variable_definitions or ():
        declared = type_from_ast(schema, definition.type)  # type: ignore[arg-type]
        if declared is not None and get_named_type(declared).name in holding:
            pending.append((variables.get(definition.variable.name.value), declared))
    while pending and count <= MAX_REQUEST_FILTER_CONDITIONS:
        value, kind = pending.pop()
        kind = get_nullable_type(kind)
        if isinstance(kind, GraphQLList):
            items = value if isinstance(value, list) else [value]  # one value: a list of one
            pending += [(item, kind.of_type) for item in items]
        elif isinstance(kind, GraphQLInputObjectType) and isinstance(value, dict):
            count += kind.name in CONDITION_TYPES
            pending += [
                (value[name], field.type)
                for name, field in kind.fields.items()
                if name in value and get_named_type(field.type).name in holding
            ]
    return count


class ListLimiter(SchemaExtension):
    """Refuse, before it runs, an operation that could list too many objects or items."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if context.result is None and document is not None:
            error = self._refusal(document, context.variables or {})
            if error is not None:
                context.result = PreExecutionError(data=None, errors=[error])
        yield

    def _refusal(self, document: DocumentNode, variables: dict[str, Any]) -> GraphQLError | None:
        too_long = longest_list(variables)
        if too_long is not None:
            path, count = too_long
            return GraphQLError(
                f"{path} holds {count} items; a list in the variables holds at most "
                f"{MAX_LIST_ITEMS} (and a batch at most {MAX_BATCH} items)",
                extensions={"code": "BATCH_TOO_LARGE", "field": path, "limit": MAX_LIST_ITEMS},
            )
        operation = get_operation_ast(document, self.execution_context.operation_name)
        if operation is None:
            return None
        schema = self.execution_context.schema._schema
        if filter_conditions(schema, operation, variables) > MAX_REQUEST_FILTER_CONDITIONS:
            return GraphQLError(
                f"the variables hold more than {MAX_REQUEST_FILTER_CONDITIONS} filter "
                "conditions (property, event and `where` conditions); one request compiles at "
                f"most {MAX_REQUEST_FILTER_CONDITIONS}: narrow the filters",
                extensions={"code": TOO_COMPLEX, "limit": MAX_REQUEST_FILTER_CONDITIONS},
            )
        if listed_nodes(schema, document, operation, variables) > MAX_LISTED_NODES:
            return too_complex(
                f"the query could list more than {MAX_LISTED_NODES} objects: the page sizes "
                "(`first`, `limit`) of nested lists multiply; ask for smaller pages",
                limit=MAX_LISTED_NODES,
            )
        return None
