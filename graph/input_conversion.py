"""Fast conversion of GraphQL input objects to Strawberry input classes.

Strawberry converts every field of every input object by inspecting its type anew (generics,
name conversion, Maybe, lazy types): ~20 µs per field, 0.2 s for a 500-event `trackBatch`.
`install` gives input classes Strawberry's `from_input` hook with a plan computed once per
class: each field is copied (scalars, enums), built by the nested input class's plan, or,
for anything else (Maybe, GlobalID, lazy or generic types), converted by Strawberry itself.
The result is the instance Strawberry would build: graphql-core has already coerced and
validated the value, filled in published defaults and left out omitted fields.

One check is added: a DateTime field holding a value the scalar could not read
(`UnreadableTime`, graph/scalars.py) is refused with BAD_USER_INPUT naming the argument
(`filter.seen.from`), unless the field is marked `CHECKED_PER_ITEM` (ingestion timestamps,
refused per event by the service). Every input class with a DateTime field is installed
(tests/graph/test_bad_timestamps.py checks it), so no such value reaches a resolver unseen.

Fast path (USERTRAIL_FAST_PATHS, on by default; off: `enable(False)` and Strawberry's own
`convert_argument`). Replaces: Strawberry's per-field input conversion. Pays: a 500-event
`trackBatch` takes 2.1× the CPU (2.3-2.8× the wall time) without it (`python -m bench.internals`,
December 2026). Written for strawberry-graphql 0.341.3 (`StrawberryObjectDefinition.from_input`,
`InputContext`); pyproject.toml bounds it and requirements.lock pins it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from graphql import GraphQLError
from strawberry.relay import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.unset import UNSET

from graph.scalars import checked_per_item, unreadable_time_refusal
from services.clock import UnreadableTime

Convert = Callable[[Any, InputContext, str], Any]


@dataclass(frozen=True, slots=True)
class _Field:
    graphql_name: str
    python_name: str
    convert: Convert | None  # None: the value is used as it is


class _Unreadable(Exception):
    """An UnreadableTime where none may be; `path` grows as it leaves nested inputs."""

    def __init__(self, sent: Any):
        super().__init__()
        self.sent = sent
        self.path: list[str | int] = []

    def refusal(self, outer: tuple[str | int, ...]) -> GraphQLError:
        where = ".".join(
            f"{part}" if isinstance(part, str) else f"[{part}]" for part in (*outer, *self.path)
        ).replace(".[", "[")
        return unreadable_time_refusal(self.sent, where)


# Every installed class and its builder, so that `enable(False)` can give them back.
INSTALLED: dict[type, _Builder] = {}
enabled = True


def install(*classes: type) -> None:
    """Convert these Strawberry input classes (and the inputs they nest) with a cached plan."""
    for cls in classes:
        definition = cls.__strawberry_definition__
        if not definition.is_input:
            raise TypeError(f"{cls.__name__} is not a Strawberry input type")
        builder = INSTALLED[cls] = _Builder(cls)
        definition.from_input = builder.build if enabled else None


def enable(on: bool) -> None:
    """Installed classes converted here (on) or by Strawberry's own `convert_argument` (off).

    The hook lives on the classes, so this holds for every schema of the process: the last
    `graph.schema.build` decides (USERTRAIL_FAST_PATHS is one setting per process anyway).
    """
    global enabled
    enabled = on
    for cls, builder in INSTALLED.items():
        cls.__strawberry_definition__.from_input = builder.build if on else None


class _Builder:
    """Builds instances of one input class; its plan is made on first use (types resolved)."""

    def __init__(self, cls: type):
        self.cls = cls
        self.fields: list[_Field] | None = None

    def build(self, cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        """Strawberry's `from_input`: the instance, or a GraphQL error naming a bad DateTime."""
        try:
            return self.make(cls, value, context)
        except _Unreadable as refused:
            raise refused.refusal(context.path) from None

    def make(self, cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        """The instance; `_Unreadable` for a DateTime no field here may hold."""
        fields = self.fields if self.fields is not None else self._plan(context)
        kwargs: dict[str, Any] = {}
        for field in fields:
            if field.graphql_name in value:
                item = value[field.graphql_name]
                if field.convert is not None and item is not None and item is not UNSET:
                    try:
                        item = field.convert(item, context, field.graphql_name)
                    except _Unreadable as refused:
                        refused.path.insert(0, field.graphql_name)
                        raise
                kwargs[field.python_name] = item
        return cls(**kwargs)

    def _plan(self, context: InputContext) -> list[_Field]:
        definition = self.cls.__strawberry_definition__
        fields = []
        for field in definition.fields:
            type_ = field.resolve_type(type_definition=definition)
            convert = _converter(type_, context)
            if _is_datetime(type_) and not checked_per_item(field):
                convert = _readable_time
            fields.append(
                _Field(context.config.name_converter.from_field(field), field.python_name, convert)
            )
        self.fields = fields
        return fields


def _is_datetime(type_: Any) -> bool:
    if isinstance(type_, StrawberryOptional) and not isinstance(type_, StrawberryMaybe):
        type_ = type_.of_type
    return type_ is datetime


def _readable_time(value: Any, _context: InputContext, _name: str) -> Any:
    if isinstance(value, UnreadableTime):
        raise _Unreadable(value.sent)
    return value


def _converter(type_: Any, context: InputContext) -> Convert | None:
    """How to convert a non-null value of `type_`; None when it needs no conversion."""
    if isinstance(type_, StrawberryOptional) and not isinstance(type_, StrawberryMaybe):
        return _converter(type_.of_type, context)
    if _is_plain_leaf(type_, context):
        return None
    if isinstance(type_, StrawberryList):
        inner = type_.of_type
        if isinstance(inner, StrawberryOptional) and not isinstance(inner, StrawberryMaybe):
            inner = inner.of_type
        if _is_plain_leaf(inner, context):
            return _copy_list  # as Strawberry does: defaults are shared between requests
        if _is_input(inner):
            return _list_of(inner)
    elif _is_input(type_):
        return _nested(type_)
    return lambda value, ctx, name: ctx.convert(value, type_, name)


def _is_plain_leaf(type_: Any, context: InputContext) -> bool:
    if type_ is GlobalID:
        return False
    return is_scalar(type_, context.scalar_registry) or (
        isinstance(type_, StrawberryEnumDefinition) or has_enum_definition(type_)
    )


def _is_input(type_: Any) -> bool:
    return (
        isinstance(type_, type)
        and has_object_definition(type_)
        and type_.__strawberry_definition__.is_input
    )


def _copy_list(value: Any, _context: InputContext, _name: str) -> list[Any]:
    return list(value)


def _nested(cls: type) -> Convert:
    def convert(value: Any, context: InputContext, name: str) -> Any:
        return _build(cls, value, context, name)

    return convert


def _list_of(cls: type) -> Convert:
    def convert(value: Any, context: InputContext, name: str) -> list[Any]:
        built = []
        for index, item in enumerate(value):
            try:
                built.append(None if item is None else _build(cls, item, context, name))
            except _Unreadable as refused:
                refused.path.insert(0, index)
                raise
        return built

    return convert


def _build(cls: type, value: Any, context: InputContext, name: str) -> Any:
    """An instance of `cls` by its own `from_input` (without Strawberry's type dispatch)."""
    build = cls.__strawberry_definition__.from_input
    if build is None:
        return context.convert(value, cls, name)
    builder = getattr(build, "__self__", None)
    if isinstance(builder, _Builder):  # a bad DateTime inside is named from the outer input
        return builder.make(cls, value, context)
    return build(cls, value, context)
