"""Variables coerced along a plan per input type: graphql-core's values, a fraction of the cost.

graphql-core coerces variables generically: for every value it asks which kind of type it
has (`is_non_null_type`, `is_list_type`, ...), and first walks the whole value once more to
check its nesting depth. A 500-event `trackBatch` spends a third of its GraphQL time there.
`coerce_variables` computes the same `VariableValues` with a coercer per input type, planned
once (fields, defaults, leaf functions), that checks the nesting depth as it goes.

It handles the happy path only. Anything irregular (a missing or unknown field, null for a
non-null type, a scalar refusing its value, a variable with a default, nesting deeper than
graphql-core allows, a `@oneOf` input, a value of an unusual Python type) answers None, and
graphql-core then coerces the variables itself, with its own errors.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from enum import Enum
from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    DocumentNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLID,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    VariableDefinitionNode,
    is_required_input_field,
)
from graphql.execution.get_variable_signature import get_variable_signature
from graphql.execution.values import VariableValues, VariableValueSource
from graphql.language.parser import MAX_NESTING_DEPTH
from graphql.pyutils import Undefined
from graphql.utilities.coerce_input_value import coerce_default_value

from graph.execution import FastExecutor

# A coercer takes a value and its nesting depth as `input_is_nested_too_deeply` counts it.
Coerce = Callable[[Any, int], Any]
# Values graphql-core coerces as a list of one (`is_iterable` is false for them).
SINGLE_ITEM = frozenset({str, int, float, bool, dict})
# graphql-core's leaf types whose `coerce_input_value` returns a value of this type unchanged.
IDENTICAL = ((GraphQLString, str), (GraphQLID, str), (GraphQLBoolean, bool))
MISSING = object()


class Irregular(Exception):
    """The value needs graphql-core's own coercion: an error, a default, deep nesting."""


class _Field:
    __slots__ = ("name", "out_name", "coerce", "required", "default")

    def __init__(self, name: str, out_name: str, coerce: Coerce, required: bool, default: Any):
        self.name = name
        self.out_name = out_name
        self.coerce = coerce
        self.required = required  # missing: graphql-core refuses the object
        self.default = default  # missing: the value (Undefined: none, MISSING: irregular)


class Coercers:
    """The coercers of one schema's input types, planned on first use."""

    def __init__(self) -> None:
        self._named: dict[int, tuple[Any, Coerce]] = {}

    def of(self, type_: GraphQLInputType) -> Coerce:
        """The coercer of `type_` (wrappers are built anew: variable types are per request)."""
        if isinstance(type_, GraphQLNonNull):
            return _non_null(self.of(type_.of_type))
        if isinstance(type_, GraphQLList):
            return _list(self.of(type_.of_type), _list_depth(type_))
        known = self._named.get(id(type_))
        if known is None:
            known = self._named[id(type_)] = (type_, self._plan(type_))
        return known[1]

    def _plan(self, type_: Any) -> Coerce:
        if isinstance(type_, GraphQLInputObjectType):
            return self._input_object(type_)
        if isinstance(type_, GraphQLEnumType):
            return _enum(type_)
        return _scalar(type_)

    def _input_object(self, type_: GraphQLInputObjectType) -> Coerce:
        fields: list[_Field] = []
        names: frozenset[str] = frozenset()
        out_type = None if type_.out_type is GraphQLInputObjectType.out_type else type_.out_type

        def coerce(value: Any, depth: int) -> Any:
            if depth > MAX_NESTING_DEPTH or value is Undefined:
                raise Irregular
            if value is None:
                return None
            if type(value) is not dict or not value.keys() <= names:
                raise Irregular
            inner = depth + 1
            coerced: dict[str, Any] = {}
            for field in fields:
                item = value.get(field.name, MISSING)
                if item is MISSING:
                    if field.required or field.default is MISSING:
                        raise Irregular
                    if field.default is not Undefined:
                        coerced[field.out_name] = field.default
                else:
                    coerced[field.out_name] = field.coerce(item, inner)
            return coerced if out_type is None else out_type(coerced)

        if type_.is_one_of:
            return _irregular
        # Registered before the fields are planned: input types may nest themselves.
        self._named[id(type_)] = (type_, coerce)
        for name, field in type_.fields.items():
            required = is_required_input_field(field)
            try:
                default = Undefined if required else coerce_default_value(field)
            except Exception:  # noqa: BLE001 -- an invalid default: graphql-core reports it
                default = MISSING
            out_name = field.out_name or name
            fields.append(_Field(name, out_name, self.of(field.type), required, default))
        names = frozenset(type_.fields)
        return coerce


def _irregular(value: Any, depth: int) -> Any:
    raise Irregular


def _list_depth(type_: Any) -> int:
    """How many lists `type_` nests directly: graphql-core counts them even for null."""
    depth = 0
    while True:
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if not isinstance(type_, GraphQLList):
            return depth
        depth += 1
        type_ = type_.of_type


def _non_null(coerce_item: Coerce) -> Coerce:
    def coerce(value: Any, depth: int) -> Any:
        if value is None:
            raise Irregular
        return coerce_item(value, depth)

    return coerce


def _list(coerce_item: Coerce, lists: int) -> Coerce:
    def coerce(value: Any, depth: int) -> Any:
        if depth + lists > MAX_NESTING_DEPTH or value is Undefined:
            raise Irregular
        if value is None:
            return None
        if type(value) is list:
            inner = depth + 1
            return [coerce_item(item, inner) for item in value]
        if type(value) in SINGLE_ITEM:
            return [coerce_item(value, depth + 1)]
        raise Irregular

    return coerce


def _null(value: Any, depth: int) -> bool:
    """Whether a leaf value is null; raises Irregular where graphql-core must look at it."""
    if depth > MAX_NESTING_DEPTH or value is Undefined:
        raise Irregular
    return value is None


def _scalar(type_: Any) -> Coerce:
    identical = next((kind for leaf, kind in IDENTICAL if leaf is type_), None)
    parse = type_.coerce_input_value

    def coerce(value: Any, depth: int) -> Any:
        if _null(value, depth):
            return None
        if type(value) is identical:
            return value
        try:
            return parse(value)
        except Exception as refused:  # graphql-core turns any exception into an error
            raise Irregular from refused

    return coerce


def _enum(type_: GraphQLEnumType) -> Coerce:
    """Enum names coerced once each: Enum members are singletons, so the answer never changes."""
    parse = type_.coerce_input_value
    known: dict[str, Any] = {}

    def coerce(value: Any, depth: int) -> Any:
        if _null(value, depth):
            return None
        if type(value) is str:
            found = known.get(value, MISSING)
            if found is not MISSING:
                return found
        try:
            found = parse(value)
        except Exception as refused:  # graphql-core turns any exception into an error
            raise Irregular from refused
        if type(value) is str and isinstance(found, Enum):
            known[value] = found
        return found

    return coerce


def coerce_variables(
    schema: GraphQLSchema,
    definitions: Collection[VariableDefinitionNode],
    inputs: Any,
    coercers: Coercers,
) -> VariableValues | None:
    """graphql-core's `get_variable_values` for valid values without defaults, else None."""
    if type(inputs) is not dict:
        return None
    sources: dict[str, VariableValueSource] = {}
    coerced: dict[str, Any] = {}
    for definition in definitions:
        signature = get_variable_signature(schema, definition)
        if isinstance(signature, GraphQLError):
            return None
        name = signature.name
        value = inputs.get(name, Undefined)
        if value is Undefined:
            if definition.default_value or isinstance(signature.type, GraphQLNonNull):
                return None
            sources[name] = VariableValueSource(signature)
            continue
        sources[name] = VariableValueSource(signature, value)
        try:
            coerced[name] = coercers.of(signature.type)(value, 0)
        except Exception:  # noqa: BLE001 -- Irregular, or what graphql-core's run will report
            return None
    return VariableValues(sources, coerced)


def operation_of(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation graphql-core's `Executor.build` runs, or None where it refuses."""
    operation = None
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            if name is None:
                if operation is not None:
                    return None
                operation = definition
            elif definition.name and definition.name.value == name:
                operation = definition
    return operation


COERCERS: WeakKeyDictionary[GraphQLSchema, Coercers] = WeakKeyDictionary()


class VariablesExecutor(FastExecutor):
    """FastExecutor whose variables are coerced by `coerce_variables` when it can."""

    @classmethod
    def build(  # type: ignore[override]
        cls,
        schema: GraphQLSchema,
        document: DocumentNode,
        root_value: Any = None,
        context_value: Any = None,
        raw_variable_values: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        operation = operation_of(document, operation_name)
        values = None
        if operation is not None and operation.variable_definitions:
            coercers = COERCERS.get(schema)
            if coercers is None:
                coercers = COERCERS[schema] = Coercers()
            values = coerce_variables(
                schema, operation.variable_definitions, raw_variable_values or {}, coercers
            )
        if values is None:
            return super().build(
                schema,
                document,
                root_value,
                context_value,
                raw_variable_values,
                operation_name,
                *args,
                **kwargs,
            )
        # graphql-core builds the executor for the operation without its variables (nothing
        # else changes), then runs it with the variables coerced here.
        bare = replace(operation, variable_definitions=())
        definitions = tuple(bare if d is operation else d for d in document.definitions)
        built = super().build(
            schema,
            DocumentNode(definitions=definitions, loc=document.loc),
            root_value,
            context_value,
            None,
            operation_name,
            *args,
            **kwargs,
        )
        if not isinstance(built, list):
            built.operation = operation
            built.variable_values = values
        return built
