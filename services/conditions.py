"""Property conditions (SPEC §5a): one meaning in filters, event `where`, definitions, segments.

This module holds the condition, its validation (one set of error codes) and its Python
evaluation, used to match events live at ingestion. services/condition_sql.py compiles the
same condition to SQL for SQLite and PostgreSQL (filters and the backfill of definitions);
tests/services/test_conditions.py holds the two forms to each other and to SPEC §5a. How a
stored value reads (text form, number, case fold) is in models/property_values.py, which
SQLite also calls from SQL.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from models.property_values import fold, number, text_form
from services import limits
from services.errors import InvalidInput

MAX_IN_VALUES = 1000
MAX_CONDITION_VALUE = 4096

COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "GREATER_THAN": operator.gt,
    "GREATER_OR_EQUAL": operator.ge,
    "LESS_THAN": operator.lt,
    "LESS_OR_EQUAL": operator.le,
}
# Each negative operator matches exactly where its positive does not, absent included.
NEGATIONS = {
    "NOT_EQUALS": "EQUALS",
    "NOT_CONTAINS": "CONTAINS",
    "NOT_IN": "IN",
    "IS_NOT_SET": "IS_SET",
}
TEXT_OPERATORS = frozenset({"CONTAINS", "STARTS_WITH", "ENDS_WITH", "MATCHES"})
NO_VALUE = frozenset({"IS_SET", "IS_NOT_SET"})
LIST_VALUE = frozenset({"IN", "NOT_IN"})
OPERATORS = frozenset({"EQUALS", "IN", "IS_SET", *TEXT_OPERATORS, *COMPARISONS, *NEGATIONS})

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class PropertyCondition:
    """`property op value`: value a scalar, a tuple for IN / NOT_IN, None for IS_(NOT_)SET."""

    property: str
    op: str
    value: Any = None

    def checked(self, field: str) -> PropertyCondition:
        """This condition in its clean form, or InvalidInput naming `field`'s part and a code."""
        return validate(self, field)

    def document_value(self) -> Any:
        """The value as stored in a JSON document (a list for IN / NOT_IN)."""
        return list(self.value) if isinstance(self.value, tuple) else self.value

    def values(self) -> tuple[Scalar, ...]:
        """The values an EQUALS or IN condition compares with, each of its own kind."""
        if isinstance(self.value, list | tuple):
            return tuple(self.value)
        return (self.value,)


# ---------------------------------------------------------------- validation


def validate(condition: PropertyCondition, field: str) -> PropertyCondition:
    """The clean condition (IN values as a tuple), or InvalidInput naming `field`'s part."""
    name = condition.property
    if not isinstance(name, str) or not name or len(name) > limits.MAX_KEY:
        raise InvalidInput(
            f"a property name is a string of 1 to {limits.MAX_KEY} characters",
            field=f"{field}.property",
            code="INVALID_PROPERTY_NAME",
        )
    limits.storable(name, f"{field}.property")
    op = operator_name(condition.op, f"{field}.op", OPERATORS)
    value, where = condition.value, f"{field}.value"
    if op in NO_VALUE:
        if value is not None:
            raise InvalidInput(f"{op} takes no value", field=where, code="INVALID_VALUE")
        return PropertyCondition(name, op)
    if op in LIST_VALUE:
        if value is None or (isinstance(value, list | tuple) and not value):
            raise InvalidInput(
                f"{op} needs a list of 1 to {MAX_IN_VALUES} values",
                field=where,
                code="MISSING_VALUE",
            )
        if not isinstance(value, list | tuple) or len(value) > MAX_IN_VALUES:
            raise InvalidInput(
                f"{op} needs a list of 1 to {MAX_IN_VALUES} values",
                field=where,
                code="INVALID_VALUE",
            )
        return PropertyCondition(name, op, tuple(_scalar(v, where) for v in value))
    scalar = _scalar(value, where)
    if op in COMPARISONS and condition_number(scalar) is None:
        raise InvalidInput(
            f"{op} compares numbers; give a number or a numeric string",
            field=where,
            code="INVALID_VALUE",
        )
    if (op in TEXT_OPERATORS or op == "NOT_CONTAINS") and not isinstance(scalar, str):
        raise InvalidInput(f"{op} compares text; give a string", field=where, code="INVALID_VALUE")
    return PropertyCondition(name, op, scalar)


def operator_name(op: Any, field: str, allowed: frozenset[str]) -> str:
    """The operator's name (an enum member or a string), or InvalidInput INVALID_OPERATOR."""
    name = op.name if isinstance(op, Enum) else op
    if name not in allowed:
        raise InvalidInput(
            f"operator {name!r} is not one of {', '.join(sorted(allowed))}",
            field=field,
            code="INVALID_OPERATOR",
        )
    return str(name)


def _scalar(value: Any, field: str) -> Scalar:
    if value is None:
        raise InvalidInput("this operator needs a value", field=field, code="MISSING_VALUE")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("numbers must be finite", field=field, code="INVALID_VALUE")
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) > MAX_CONDITION_VALUE:
            raise InvalidInput(
                f"a condition value has at most {MAX_CONDITION_VALUE} characters",
                field=field,
                code="INVALID_VALUE",
            )
        try:
            return limits.storable(value, field)
        except InvalidInput as error:
            raise InvalidInput(error.message, field=field, code="INVALID_VALUE") from None
    raise InvalidInput(
        "a condition value is a string, a number or a boolean", field=field, code="INVALID_VALUE"
    )


def condition_number(value: Any) -> Decimal | None:
    """The number a condition value compares as: a number, or a numeric string."""
    return number(value)


def is_number(value: Any) -> bool:
    """Whether a condition value is a number (not a boolean)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---------------------------------------------------------------- Python evaluation

ValueTest = Callable[[Any], bool]


def holds(condition: PropertyCondition, properties: Mapping[str, Any]) -> bool:
    """Whether `properties` satisfy the condition (compile once with `predicate` in loops)."""
    return predicate(condition)(properties)


def predicate(condition: PropertyCondition) -> Callable[[Mapping[str, Any]], bool]:
    """The condition as a test of a property mapping, exactly as its SQL."""
    name = condition.property
    if condition.op in NEGATIONS:
        positive = value_test(PropertyCondition(name, NEGATIONS[condition.op], condition.value))
        return lambda properties: not positive(properties.get(name))
    test = value_test(condition)
    return lambda properties: test(properties.get(name))


def value_test(condition: PropertyCondition) -> ValueTest:
    """A positive condition as a test of one stored value (None when absent)."""
    op, value = condition.op, condition.value
    if op == "IS_SET":
        return lambda stored: text_form(stored) is not None
    if op in ("EQUALS", "IN"):
        return _equals(condition.values())
    if op in COMPARISONS:
        compare, bound = COMPARISONS[op], condition_number(value)

        def numeric(stored: Any) -> bool:
            exact = number(stored)
            return exact is not None and compare(exact, bound)

        return numeric
    wanted = str(value)
    if op == "CONTAINS":
        needle = fold(wanted)
        return lambda stored: (text := text_form(stored)) is not None and needle in fold(text)
    if op == "STARTS_WITH":
        return lambda stored: (text := text_form(stored)) is not None and text.startswith(wanted)
    if op == "ENDS_WITH":
        return lambda stored: (text := text_form(stored)) is not None and text.endswith(wanted)
    if op == "MATCHES":
        pattern = wildcard_regex(wanted)
        return lambda stored: (
            (text := text_form(stored)) is not None and bool(pattern.fullmatch(text))
        )
    raise AssertionError(op)


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """MATCHES as a regular expression: `*` any run of characters, the rest literal."""
    return re.compile(".*".join(map(re.escape, pattern.split("*"))), re.DOTALL)


def _equals(values: Sequence[Scalar]) -> ValueTest:
    texts = {v for v in values if isinstance(v, str)}
    numbers = {number(v) for v in values if is_number(v)}
    booleans = {v for v in values if isinstance(v, bool)}

    def equals(stored: Any) -> bool:
        if stored is None:
            return False
        if texts and text_form(stored) in texts:
            return True
        if numbers and number(stored) in numbers:
            return True
        if booleans:
            if isinstance(stored, bool):
                return stored in booleans
            if isinstance(stored, str):
                lowered = stored.lower()
                return (lowered == "true" and True in booleans) or (
                    lowered == "false" and False in booleans
                )
        return False

    return equals
