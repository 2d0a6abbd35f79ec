"""Property conditions compiled to SQL over JSON documents and plain columns (SPEC §5).

The same operators serve user properties, event properties and definition criteria.
String comparisons are case-sensitive except CONTAINS / NOT_CONTAINS; numeric operators
compare numbers (JSON numbers, or strings that spell a number); the negative operators
also match rows that lack the property.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, String, and_, case, cast, func, literal, not_, or_
from sqlalchemy.sql.elements import ColumnElement

from services.errors import InvalidInput
from services.limits import storable

OPERATORS = (
    "EQUALS", "NOT_EQUALS", "CONTAINS", "NOT_CONTAINS", "STARTS_WITH", "ENDS_WITH",
    "IS_SET", "IS_NOT_SET", "GREATER_THAN", "GREATER_OR_EQUAL", "LESS_THAN", "LESS_OR_EQUAL",
    "IN", "NOT_IN", "MATCHES",
)  # fmt: skip
NEGATIVE = {"NOT_EQUALS", "NOT_CONTAINS", "NOT_IN", "IS_NOT_SET"}
NUMERIC = {"GREATER_THAN", "GREATER_OR_EQUAL", "LESS_THAN", "LESS_OR_EQUAL"}
NO_VALUE = {"IS_SET", "IS_NOT_SET"}
LIST_VALUE = {"IN", "NOT_IN"}
MAX_IN_VALUES = 1000


@dataclass(frozen=True, slots=True)
class PropertyCondition:
    """`property` `op` `value`, validated by `checked`."""

    property: str
    op: str
    value: Any = None

    def checked(self, field: str) -> PropertyCondition:
        """This condition, or InvalidInput naming `field` when op and value do not fit."""
        if self.op not in OPERATORS:
            raise InvalidInput(
                f"unknown operator {self.op}", field=f"{field}.op", code="INVALID_FILTER"
            )
        if not isinstance(self.property, str) or not self.property:
            raise InvalidInput(
                "property must be a non-empty string",
                field=f"{field}.property",
                code="INVALID_FILTER",
            )
        where = f"{field}.value"
        if self.op in NO_VALUE:
            if self.value is not None:
                raise InvalidInput(f"{self.op} takes no value", field=where, code="INVALID_FILTER")
            return self
        if self.op in LIST_VALUE:
            if not isinstance(self.value, list) or not self.value:
                raise InvalidInput(
                    f"{self.op} needs a non-empty list of values",
                    field=where,
                    code="INVALID_FILTER",
                )
            if len(self.value) > MAX_IN_VALUES:
                raise InvalidInput(
                    f"{self.op} takes at most {MAX_IN_VALUES} values",
                    field=where,
                    code="INVALID_FILTER",
                )
            for item in self.value:
                _scalar(item, where)
            return self
        _scalar(self.value, where)
        if self.op in NUMERIC and (
            isinstance(self.value, bool) or not isinstance(self.value, int | float)
        ):
            raise InvalidInput(
                f"{self.op} compares numbers; give a number", field=where, code="INVALID_FILTER"
            )
        if self.op in {"CONTAINS", "NOT_CONTAINS", "STARTS_WITH", "ENDS_WITH", "MATCHES"} and (
            not isinstance(self.value, str)
        ):
            raise InvalidInput(
                f"{self.op} compares text; give a string", field=where, code="INVALID_FILTER"
            )
        return self


def _scalar(value: Any, where: str) -> None:
    storable(value, where)
    if value is None or isinstance(value, list | dict):
        raise InvalidInput(
            "value must be a string, number or boolean", field=where, code="INVALID_FILTER"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("numbers must be finite", field=where, code="INVALID_FILTER")


def as_text(value: Any) -> str:
    """How a scalar reads as text (booleans as JSON spells them, whole floats without .0)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True, slots=True)
class Operand:
    """A property as SQL: its text, its number (NULL when not numeric), and presence."""

    text: ColumnElement[Any]
    number: ColumnElement[Any]
    present: ColumnElement[bool]


def json_operand(document: Any, key: str, dialect: str) -> Operand:
    """The property `key` of a JSON document column."""
    if dialect == "postgresql":
        text = document[key].as_string()
        kind = func.jsonb_typeof(document[key])
        numeric_text = text.op("~", is_comparison=True)(
            r"^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"
        )
        number = case(
            (kind == "number", cast(text, Float)),
            (and_(kind == "string", numeric_text), cast(text, Float)),
            else_=None,
        )
        return Operand(text, number, kind.is_not(None) & (kind != "null"))
    path = '$."' + key.replace('"', '\\"') + '"'
    kind = func.json_type(document, path)
    raw = func.json_extract(document, path)
    text = case(
        (kind == "true", literal("true")),
        (kind == "false", literal("false")),
        else_=cast(raw, String),
    )
    looks_numeric = and_(
        kind == "text",
        func.trim(raw) != "",
        not_(func.trim(raw).op("GLOB", is_comparison=True)("*[^0-9.eE+-]*")),
        func.trim(raw).op("GLOB", is_comparison=True)("*[0-9]*"),
    )
    number = case(
        (kind.in_(["integer", "real"]), raw), (looks_numeric, cast(raw, Float)), else_=None
    )
    return Operand(text, number, kind.is_not(None) & (kind != "null"))


def column_operand(column: Any, dialect: str, *, numeric: bool = False) -> Operand:
    """A plain column (identity, email, userId) as an operand."""
    if numeric:
        return Operand(cast(column, String), cast(column, Float), column.is_not(None))
    if dialect == "postgresql":
        digits = column.op("~", is_comparison=True)(r"^\s*-?[0-9]+(\.[0-9]+)?\s*$")
    else:
        digits = and_(
            column.op("GLOB", is_comparison=True)("*[0-9]*"),
            not_(column.op("GLOB", is_comparison=True)("*[^0-9.-]*")),
        )
    return Operand(column, case((digits, cast(column, Float)), else_=None), column.is_not(None))


def compile_condition(
    operand: Operand, condition: PropertyCondition, dialect: str
) -> ColumnElement[bool]:
    """SQL for `operand op value`, per the rules in the module docstring."""
    op, value = condition.op, condition.value
    if op == "IS_SET":
        return operand.present
    if op == "IS_NOT_SET":
        return not_(operand.present)
    if op in NEGATIVE:
        positive = {"NOT_EQUALS": "EQUALS", "NOT_CONTAINS": "CONTAINS", "NOT_IN": "IN"}[op]
        matched = compile_condition(
            operand, PropertyCondition(condition.property, positive, value), dialect
        )
        return or_(not_(operand.present), not_(func.coalesce(matched, False)))
    if op in NUMERIC:
        compare = {
            "GREATER_THAN": "__gt__",
            "GREATER_OR_EQUAL": "__ge__",
            "LESS_THAN": "__lt__",
            "LESS_OR_EQUAL": "__le__",
        }[op]
        return getattr(operand.number, compare)(float(value))
    if op == "EQUALS":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return operand.number == float(value)
        return operand.text == as_text(value)
    if op == "IN":
        return operand.text.in_([as_text(v) for v in value])
    if op == "CONTAINS":
        return func.lower(operand.text).contains(value.lower(), autoescape=True)
    if op == "STARTS_WITH":
        return func.substr(operand.text, 1, len(value)) == value
    if op == "ENDS_WITH":
        return func.substr(operand.text, func.length(operand.text) - len(value) + 1) == value
    if op == "MATCHES":
        return wildcard(operand.text, value, dialect)
    raise AssertionError(op)


def wildcard(text: ColumnElement[Any], pattern: str, dialect: str) -> ColumnElement[bool]:
    """Case-sensitive match of `pattern`, where `*` stands for any run of characters."""
    if dialect == "postgresql":
        escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return text.like(escaped.replace("*", "%"), escape="\\")
    # GLOB is case-sensitive; its own metacharacters ? and [ are put in brackets.
    escaped = "".join(f"[{c}]" if c in "?[" else c for c in pattern)
    return text.op("GLOB", is_comparison=True)(escaped)
