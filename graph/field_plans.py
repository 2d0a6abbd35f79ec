"""How graph/execution.py resolves each field of a selection set without the general path.

For every response key a `Step` says how its value is obtained and completed:

- `read(source)`: the value, for fields that need neither info nor arguments: Strawberry's
  attribute read (`default_resolver(source, python_name)`), a synchronous resolver taking
  only `self`, and `__typename`.
- `call(source, info, args)`: Strawberry's resolver called as Strawberry calls it (self,
  root, parent and info parameters filled in, arguments converted), for resolvers without
  field extensions whose argument values need no conversion (scalars, nulls). It answers
  `CONVERT` when one does, and the field then goes through Strawberry's own resolver.
- `complete`: how the resolved value is completed: leaf, object, list of leaves or
  objects, or in general (graphql-core's `complete_value`).

Anything else (field extensions, exception handlers, middleware) keeps the general path.

Part of graph/execution.py's fast path (its figure is there). It reads Strawberry internals:
the names of its resolver closures (`_get_basic_result`, `_resolver`, `_async_resolver`,
`_get_is_type_of.<locals>.is_type_of`), `StrawberryField.base_resolver` and the converter's
DEFINITION_BACKREF, as in strawberry-graphql 0.341.3 and graphql-core 3.3.2.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLObjectType,
    GraphQLOutputType,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.type.introspection import TypeNameMetaFieldDef
from strawberry.relay import GlobalID
from strawberry.scalars import is_scalar
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryMaybe, StrawberryOptional
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE
from strawberry.types.field import StrawberryField

BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF
# How a value is completed.
LEAF, OBJECT, LIST, GENERAL = range(4)
CONVERT = object()  # `call`'s answer when an argument value needs Strawberry's conversion


def _is_strawberry_type_check(is_type_of: Any) -> bool:
    """True for the `is_type_of` Strawberry generates for interface implementers.

    It is synchronous and ignores its `info` argument, so the executor may call it
    without building one. Any other `is_type_of` keeps the general completion.
    """
    return getattr(is_type_of, "__module__", None) == GraphQLCoreConverter.__module__ and (
        getattr(is_type_of, "__qualname__", "").endswith("_get_is_type_of.<locals>.is_type_of")
    )


def _own_class(object_type: GraphQLObjectType) -> type | None:
    """The Python class of a Strawberry object type, when its instances keep their attributes
    in a `__dict__` and the class sets no type cast: Strawberry's `is_type_of` then accepts
    any instance of exactly that class whose `__dict__` holds no cast (`strawberry.cast`)."""
    definition = object_type.extensions.get(BACKREF)
    origin = getattr(definition, "origin", None)
    if (
        not isinstance(origin, type)
        or origin.__dictoffset__ == 0
        or hasattr(origin, TYPE_CAST_ATTRIBUTE)
        or any("__getattr__" in vars(base) for base in origin.__mro__[:-1])
    ):
        return None
    return origin


def _streamed(details: FieldDetailsList) -> bool:
    return any(
        directive.name.value == "stream"
        for detail in details
        for directive in detail.node.directives or ()
    )


class Completion:
    """How to complete a value of one output type (non-null wrapping included)."""

    __slots__ = (
        "kind",
        "non_null",
        "coerce",
        "leaf_type",
        "object_type",
        "type_check",
        "own_class",
        "item",
    )

    def __init__(
        self, return_type: GraphQLOutputType, details: FieldDetailsList, *, nested: bool = False
    ):
        self.non_null = is_non_null_type(return_type)
        inner: Any = return_type.of_type if self.non_null else return_type  # type: ignore[union-attr]
        self.kind = GENERAL
        self.coerce: Callable[[Any], Any] | None = None
        self.leaf_type: Any = None
        self.object_type: GraphQLObjectType | None = None
        self.type_check: Callable[[Any, Any], Any] | None = None
        # The class whose uncast instances `type_check` accepts without being asked.
        self.own_class: type | None = None
        self.item: Completion | None = None
        if is_leaf_type(inner):
            self.kind, self.leaf_type, self.coerce = LEAF, inner, inner.coerce_output_value
        elif is_object_type(inner):
            check = inner.is_type_of
            if check is None or _is_strawberry_type_check(check):
                self.kind, self.object_type, self.type_check = OBJECT, inner, check
                if check is not None:
                    self.own_class = _own_class(inner)
        elif is_list_type(inner) and not nested and not _streamed(details):
            item = Completion(inner.of_type, details, nested=True)
            if item.kind in (LEAF, OBJECT):
                self.kind, self.item = LIST, item


class Step:
    """One response key of a selection set."""

    __slots__ = (
        "name",
        "field_name",
        "details",
        "field",
        "return_type",
        "read",
        "call",
        "complete",
        "leaf",
        "object_read",
        "coerce",
        "leaf_type",
        "subfields",
        "nodes",
        "arguments",
    )

    def __init__(
        self,
        name: str,
        details: FieldDetailsList,
        field: GraphQLField | None,
        read: Callable[[Any], Any] | None = None,
        call: Callable[[Any, Any, dict[str, Any]], Any] | None = None,
    ):
        self.name = name
        self.field_name = details[0].node.name.value
        self.details = details
        self.field = field
        self.return_type: Any = field.type if field is not None else None
        self.read = read
        self.call = call
        planned = field is not None and (read is not None or call is not None)
        self.complete = Completion(field.type, details) if planned else None  # type: ignore[union-attr]
        # A leaf read directly: the executor completes it in its field loop.
        kind = self.complete.kind if read is not None and self.complete is not None else None
        self.leaf = kind == LEAF
        self.object_read = kind == OBJECT  # likewise, an object
        self.coerce = self.complete.coerce if self.leaf else None  # type: ignore[union-attr]
        self.leaf_type = self.complete.leaf_type if self.leaf else None  # type: ignore[union-attr]
        self.subfields: Any = None  # (grouped fields, defer usages, steps) of its objects
        self.nodes: list[Any] | None = None  # the field nodes, once listed
        self.arguments: dict[str, Any] | None = None  # the argument values, when constant


class Planner:
    """Steps for the selection sets of one schema (one per request: plans are cheap)."""

    def __init__(self, schema: Any):
        strawberry_schema = schema.extensions.get(BACKREF)
        self.schema = schema
        # Exception handlers wrap every resolver that is not an attribute read.
        self.resolvers_direct = strawberry_schema is not None and not getattr(
            strawberry_schema, "exception_handlers", ()
        )
        self.config = getattr(strawberry_schema, "config", None)
        converter = getattr(strawberry_schema, "schema_converter", None)
        self.scalar_registry = getattr(converter, "scalar_registry", {})

    def steps(self, parent_type: GraphQLObjectType, grouped: Any) -> list[Step]:
        """The steps of a grouped field set of `parent_type`, in response order."""
        steps = []
        for name, details in grouped.items():
            node = details[0].node
            field = self.schema.get_field(parent_type, node.name.value)
            if field is None:
                steps.append(Step(name, details, None))
                continue
            read = self._reader(parent_type, field, node)
            call = self._caller(field) if read is None else None
            steps.append(Step(name, details, field, read, call))
        return steps

    def _reader(
        self, parent_type: GraphQLObjectType, field: GraphQLField, node: Any
    ) -> Callable[[Any], Any] | None:
        """The field's value for a source, when reading it needs no info or arguments."""
        if field is TypeNameMetaFieldDef:
            type_name = parent_type.name
            return lambda _source: type_name
        if field.args or node.arguments:
            return None
        definition = field.extensions.get(BACKREF)
        if not isinstance(definition, StrawberryField) or field.resolve is None:
            return None
        name = getattr(field.resolve, "__name__", "")
        if name == "_get_basic_result" and definition.is_basic_field:
            # What Strawberry's basic resolver does: default_resolver(source, python_name).
            default = definition.default_resolver
            python_name = definition.python_name
            if default is builtins.getattr:
                return attrgetter(python_name)
            return lambda source: default(source, python_name)
        resolver = definition.base_resolver
        if (
            self.resolvers_direct
            and name == "_resolver"
            and resolver is not None
            and not definition.extensions
            and not resolver.is_async
            and not resolver.arguments
            and resolver.self_parameter is not None
            and resolver.info_parameter is None
            and resolver.root_parameter is None
            and resolver.parent_parameter is None
            and callable(resolver.wrapped_func)
        ):
            # A synchronous resolver taking only `self`: Strawberry calls `resolver(source)`.
            return resolver.wrapped_func  # type: ignore[no-any-return]
        return None

    def _caller(self, field: GraphQLField) -> Callable[[Any, Any, dict[str, Any]], Any] | None:
        """Strawberry's resolver chain for a field without extensions, minus its overhead."""
        definition = field.extensions.get(BACKREF)
        if (
            not self.resolvers_direct
            or self.config is None
            or not isinstance(definition, StrawberryField)
            or definition.extensions
            or definition.base_resolver is None
            or getattr(field.resolve, "__name__", "") not in ("_resolver", "_async_resolver")
            or not callable(definition.base_resolver.wrapped_func)
        ):
            return None
        resolver = definition.base_resolver
        # (GraphQL name, Python name, value used as is): what `convert_arguments` maps.
        arguments: list[tuple[str, str, bool]] = []
        for argument in definition.arguments:
            kind = argument.type
            if isinstance(kind, StrawberryMaybe):
                return None  # Some(...) wrapping: leave it to Strawberry
            inner = kind.of_type if isinstance(kind, StrawberryOptional) else kind
            as_is = inner is not GlobalID and is_scalar(inner, self.scalar_registry)
            graphql_name = self.config.name_converter.from_argument(argument)
            arguments.append((graphql_name, argument.python_name, as_is))
        function = resolver.wrapped_func
        pass_self = resolver.self_parameter is not None
        source_names = [p.name for p in (resolver.root_parameter, resolver.parent_parameter) if p]
        info_name = resolver.info_parameter.name if resolver.info_parameter else None
        info_class = self.config.info_class

        def call(source: Any, info: Any, values: dict[str, Any]) -> Any:
            kwargs: dict[str, Any] = {}
            for graphql_name, python_name, as_is in arguments:
                if graphql_name in values:
                    value = values[graphql_name]
                    # `convert_argument` returns null, and a scalar's value, unchanged.
                    if value is not None and not as_is:
                        return CONVERT
                    kwargs[python_name] = value
            for name in source_names:
                kwargs[name] = source
            if info_name is not None:
                kwargs[info_name] = info_class(_raw_info=info, _field=definition)
            return function(source, **kwargs) if pass_self else function(**kwargs)

        return call
