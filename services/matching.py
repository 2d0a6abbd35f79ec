"""Criteria of event definitions: validation, and matching in SQL (backfill) and Python (live).

A criterion is a raw event type narrowed by an optional CSS selector on the element
hierarchy, conditions on `target_text` and `path`, and property conditions, all ANDed.
The SQL and the Python matcher implement the same rules (tests hold them to each other):

- A property is *set* when it holds a string, a number or a boolean.
- EQUALS and IN compare like with like: a string value with the condition's text, a number
  with the condition's number (the condition "49" is also the number 49), a boolean with
  true/false (or the texts "true"/"false").
- GREATER_THAN … LESS_OR_EQUAL need a numeric condition value and match numbers only.
- CONTAINS and NOT_CONTAINS ignore case (ASCII letters only on SQLite, whose lower() folds
  nothing else); STARTS_WITH, ENDS_WITH and MATCHES (`*` = any run of characters, anchored
  at both ends) are case-sensitive; the string operators match string values only.
- The negative operators (NOT_EQUALS, NOT_CONTAINS, NOT_IN, IS_NOT_SET) also match events
  that lack the property; the others never do.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    Float,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    false,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import ColumnElement

from services import limits
from services.errors import InvalidInput
from services.selectors import Selector, compile_selector

MAX_CRITERIA = 20
MAX_CONDITIONS = 20
MAX_IN_VALUES = 1000
MAX_CONDITION_VALUE = 4096
MAX_SELECTOR = 4096

NUMERIC_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "GREATER_THAN": operator.gt,
    "GREATER_OR_EQUAL": operator.ge,
    "LESS_THAN": operator.lt,
    "LESS_OR_EQUAL": operator.le,
}
# Each negative operator is the complement of a positive one, missing properties included.
NEGATIONS = {
    "NOT_EQUALS": "EQUALS",
    "NOT_CONTAINS": "CONTAINS",
    "NOT_IN": "IN",
    "IS_NOT_SET": "IS_SET",
}
TEXT_OPERATORS = {"EQUALS", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "MATCHES"}
OPERATORS = frozenset({*TEXT_OPERATORS, "IS_SET", "IN", *NUMERIC_OPERATORS, *NEGATIONS})
# Operators a StringMatch (targetText, path) accepts: its value is one string.
STRING_MATCH_OPERATORS = frozenset(
    {*TEXT_OPERATORS, "IS_SET", "NOT_EQUALS", "NOT_CONTAINS", "IS_NOT_SET"}
)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)
class StringMatch:
    """A condition on one string property of an event (targetText, path)."""

    op: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class PropertyCondition:
    """A condition on one event property; `value` is a scalar, or a list for IN/NOT_IN."""

    property: str
    op: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class Criterion:
    """One alternative of a definition: a raw type and narrowing conditions, all ANDed."""

    type: str
    selector: str | None = None
    target_text: StringMatch | None = None
    path: StringMatch | None = None
    properties: tuple[PropertyCondition, ...] = ()

    @property
    def condition_count(self) -> int:
        """Its weight in the precedence rule: selector, target text, path, each property."""
        narrowing = (self.selector, self.target_text, self.path)
        return sum(part is not None for part in narrowing) + len(self.properties)

    def conditions(self) -> list[PropertyCondition]:
        """Target text, path and property conditions, all as property conditions."""
        found = [
            PropertyCondition(name, match.op, match.value)
            for name, match in (("target_text", self.target_text), ("path", self.path))
            if match is not None
        ]
        return found + list(self.properties)

    def to_json(self) -> dict[str, Any]:
        """The stored form (event_definitions.criteria holds a list of these)."""
        return {
            "type": self.type,
            "selector": self.selector,
            "target_text": _match_json(self.target_text),
            "path": _match_json(self.path),
            "properties": [
                {"property": c.property, "op": c.op, "value": c.value} for c in self.properties
            ],
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Criterion:
        """A criterion from its stored form."""
        return cls(
            type=document["type"],
            selector=document.get("selector"),
            target_text=_match_from_json(document.get("target_text")),
            path=_match_from_json(document.get("path")),
            properties=tuple(
                PropertyCondition(c["property"], c["op"], c.get("value"))
                for c in document.get("properties") or ()
            ),
        )


def _match_json(match: StringMatch | None) -> dict[str, Any] | None:
    return None if match is None else {"op": match.op, "value": match.value}


def _match_from_json(document: Mapping[str, Any] | None) -> StringMatch | None:
    return None if document is None else StringMatch(document["op"], document.get("value"))


# ---------------------------------------------------------------- validation


def validate_criteria(
    criteria: Sequence[Criterion], *, field: str = "criteria", allow_empty: bool = False
) -> tuple[Criterion, ...]:
    """Clean criteria, or InvalidInput naming the field (`criteria[1].path.op`) and a code."""
    if not criteria and not allow_empty:
        raise InvalidInput(
            "a definition needs at least one criterion", field=field, code="NO_CRITERIA"
        )
    if len(criteria) > MAX_CRITERIA:
        raise InvalidInput(
            f"a definition has at most {MAX_CRITERIA} criteria; this one has {len(criteria)}",
            field=field,
            code="TOO_MANY_CRITERIA",
        )
    return tuple(_criterion(c, f"{field}[{i}]") for i, c in enumerate(criteria))


def _criterion(criterion: Criterion, field: str) -> Criterion:
    selector = criterion.selector.strip() if criterion.selector else None
    if selector:
        if len(selector) > MAX_SELECTOR:
            raise InvalidInput(
                f"a selector has at most {MAX_SELECTOR} characters",
                field=f"{field}.selector",
                code="INVALID_SELECTOR",
            )
        try:
            compile_selector(selector)
        except InvalidInput as error:
            raise InvalidInput(error.message, field=f"{field}.selector", code=error.code) from None
    if len(criterion.properties) > MAX_CONDITIONS:
        raise InvalidInput(
            f"a criterion has at most {MAX_CONDITIONS} property conditions",
            field=f"{field}.properties",
            code="TOO_MANY_CONDITIONS",
        )
    return Criterion(
        type=limits.event_name(criterion.type, field=f"{field}.type"),
        selector=selector or None,
        target_text=_string_match(criterion.target_text, f"{field}.targetText"),
        path=_string_match(criterion.path, f"{field}.path"),
        properties=tuple(
            _property_condition(c, f"{field}.properties[{i}]")
            for i, c in enumerate(criterion.properties)
        ),
    )


def _operator(op: Any, field: str, allowed: frozenset[str]) -> str:
    name = op.name if isinstance(op, Enum) else op
    if name not in allowed:
        raise InvalidInput(
            f"operator {name!r} is not one of {', '.join(sorted(allowed))}",
            field=f"{field}.op",
            code="INVALID_OPERATOR",
        )
    return str(name)


def _string_match(match: StringMatch | None, field: str) -> StringMatch | None:
    if match is None:
        return None
    op = _operator(match.op, field, STRING_MATCH_OPERATORS)
    if op in ("IS_SET", "IS_NOT_SET"):
        return StringMatch(op)
    if not isinstance(match.value, str):
        raise InvalidInput(
            f"{op} needs a string value", field=f"{field}.value", code="MISSING_VALUE"
        )
    return StringMatch(op, _text_value(match.value, f"{field}.value"))


def _property_condition(condition: PropertyCondition, field: str) -> PropertyCondition:
    name = condition.property
    if not isinstance(name, str) or not name or len(name) > limits.MAX_KEY:
        raise InvalidInput(
            f"a property name is a string of 1 to {limits.MAX_KEY} characters",
            field=f"{field}.property",
            code="INVALID_PROPERTY_NAME",
        )
    op = _operator(condition.op, field, OPERATORS)
    value, where = condition.value, f"{field}.value"
    if op in ("IS_SET", "IS_NOT_SET"):
        return PropertyCondition(name, op)
    if op in ("IN", "NOT_IN"):
        values = list(value) if isinstance(value, list | tuple) else [value]
        if not values or len(values) > MAX_IN_VALUES:
            raise InvalidInput(
                f"{op} needs a list of 1 to {MAX_IN_VALUES} values",
                field=where,
                code="MISSING_VALUE",
            )
        return PropertyCondition(name, op, [_scalar(v, where) for v in values])
    scalar = _scalar(value, where)
    if op in NUMERIC_OPERATORS and _operand(scalar).number is None:
        raise InvalidInput(
            f"{op} compares numbers; give a number", field=where, code="INVALID_VALUE"
        )
    return PropertyCondition(name, op, scalar)


def _scalar(value: Any, field: str) -> Any:
    if value is None:
        raise InvalidInput("this operator needs a value", field=field, code="MISSING_VALUE")
    if isinstance(value, bool | int | float) and _finite(value):
        return value
    if isinstance(value, str):
        return _text_value(value, field)
    raise InvalidInput(
        "a condition value is a string, a number or a boolean", field=field, code="INVALID_VALUE"
    )


def _finite(value: bool | int | float) -> bool:
    return not isinstance(value, float) or value == value and abs(value) != float("inf")


def _text_value(value: str, field: str) -> str:
    if len(value) > MAX_CONDITION_VALUE:
        raise InvalidInput(
            f"a condition value has at most {MAX_CONDITION_VALUE} characters",
            field=field,
            code="INVALID_VALUE",
        )
    return value


@dataclass(frozen=True, slots=True)
class _Operand:
    """A condition value read every way a property value can be compared with it."""

    text: str
    number: int | float | None
    boolean: bool | None


def _operand(value: Any) -> _Operand:
    if isinstance(value, bool):
        return _Operand("true" if value else "false", None, value)
    if isinstance(value, int | float):
        return _Operand(_number_text(value), value, None)
    text = str(value)
    return _Operand(text, _parse_number(text), {"true": True, "false": False}.get(text))


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def _parse_number(text: str) -> int | float | None:
    if not _NUMBER.fullmatch(text):
        return None
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    number = float(text)
    return number if _finite(number) else None


# ---------------------------------------------------------------- Python matching

PropertyTest = Callable[[Mapping[str, Any]], bool]


def fold_for(dialect: str) -> Callable[[str], str]:
    """Case folding as the database's lower() does it, so that both matchers agree."""
    if dialect == "sqlite":
        return lambda text: text.translate(_ASCII_LOWER)
    return str.lower


def python_matcher(
    criterion: Criterion, *, dialect: str
) -> Callable[[str, Mapping[str, Any]], bool]:
    """A predicate (type, properties) -> bool equal to the criterion's SQL on `dialect`."""
    fold = fold_for(dialect)
    tests = [_python_condition(c, fold) for c in criterion.conditions()]
    selector = compile_selector(criterion.selector) if criterion.selector else None
    wanted = criterion.type

    def matches(event_type: str, properties: Mapping[str, Any]) -> bool:
        if event_type != wanted or not all(test(properties) for test in tests):
            return False
        if selector is None:
            return True
        hierarchy = properties.get("hierarchy")
        return isinstance(hierarchy, str) and selector.matches(hierarchy)

    return matches


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _python_condition(condition: PropertyCondition, fold: Callable[[str], str]) -> PropertyTest:
    name, op = condition.property, condition.op
    if op in NEGATIONS:
        positive = _python_condition(PropertyCondition(name, NEGATIONS[op], condition.value), fold)
        return lambda properties: not positive(properties)
    if op == "IS_SET":
        return lambda properties: _kind(properties.get(name)) is not None
    if op in ("EQUALS", "IN"):
        operands = [_operand(v) for v in (condition.value if op == "IN" else [condition.value])]
        texts = {o.text for o in operands}
        numbers = {o.number for o in operands if o.number is not None}
        booleans = {o.boolean for o in operands if o.boolean is not None}

        def equals(properties: Mapping[str, Any]) -> bool:
            value = properties.get(name)
            kind = _kind(value)
            if kind == "string":
                return value in texts
            if kind == "number":
                return value in numbers
            return kind == "boolean" and value in booleans

        return equals
    if op in NUMERIC_OPERATORS:
        compare, bound = NUMERIC_OPERATORS[op], _operand(condition.value).number

        def numeric(properties: Mapping[str, Any]) -> bool:
            value = properties.get(name)
            return _kind(value) == "number" and compare(value, bound)

        return numeric
    return _python_text_condition(name, op, _operand(condition.value).text, fold)


def _python_text_condition(
    name: str, op: str, wanted: str, fold: Callable[[str], str]
) -> PropertyTest:
    if op == "CONTAINS":
        needle = fold(wanted)
        check: Callable[[str], bool] = lambda value: needle in fold(value)  # noqa: E731
    elif op == "STARTS_WITH":
        check = lambda value: value.startswith(wanted)  # noqa: E731
    elif op == "ENDS_WITH":
        check = lambda value: value.endswith(wanted)  # noqa: E731
    else:
        pattern = re.compile(".*".join(map(re.escape, wanted.split("*"))), re.DOTALL)
        check = lambda value: pattern.fullmatch(value) is not None  # noqa: E731

    def text(properties: Mapping[str, Any]) -> bool:
        value = properties.get(name)
        return isinstance(value, str) and check(value)

    return text


# ---------------------------------------------------------------- SQL matching

_SQLITE_KINDS = {"string": ("text",), "number": ("integer", "real"), "boolean": ("true", "false")}
_PG_KINDS = {"string": ("string",), "number": ("number",), "boolean": ("boolean",)}


class _Property:
    """Typed reads of one key of a JSON column, in the dialect's JSON functions."""

    def __init__(self, column: Any, key: str, dialect: str):
        self.sqlite = dialect == "sqlite"
        if self.sqlite:
            path = f'$."{key}"'
            self._type = func.json_type(column, path)
            self._value = func.json_extract(column, path)
        else:
            name = bindparam(None, key, Text)
            self._type = func.jsonb_typeof(column.op("->")(name))
            self._value = column.op("->>", return_type=Text)(name)

    def is_kind(self, *kinds: str) -> ColumnElement[bool]:
        table = _SQLITE_KINDS if self.sqlite else _PG_KINDS
        return self._type.in_([name for kind in kinds for name in table[kind]])

    def text(self) -> Any:
        """The value of a string property (compare under `is_kind("string")`)."""
        return self._value

    def number(self) -> Any:
        """The value of a number property, NULL for any other kind."""
        if self.sqlite:
            return self._value
        # PostgreSQL may evaluate AND operands in any order: guard the cast itself.
        return case((self._type == "number", cast(self._value, Float)))

    def is_boolean(self, value: bool) -> ColumnElement[bool]:
        if self.sqlite:
            return self._type == ("true" if value else "false")
        return and_(self._type == "boolean", self._value == ("true" if value else "false"))


def sql_expressible(criterion: Criterion, dialect: str) -> bool:
    """Whether every condition of the criterion compiles to SQL on `dialect`."""
    if dialect != "sqlite":
        return True
    # SQLite's JSON paths cannot quote these characters; such keys are matched in Python.
    return not any(re.search(r'["\\\x00-\x1f\x7f]', c.property) for c in criterion.conditions())


def sql_condition(criterion: Criterion, column: Any, *, dialect: str) -> ColumnElement[bool]:
    """The criterion's conditions on the JSON column `column`, except type and selector."""
    parts = [_sql_condition(c, column, dialect) for c in criterion.conditions()]
    return and_(true(), *parts)


def _sql_condition(condition: PropertyCondition, column: Any, dialect: str) -> ColumnElement[bool]:
    op = condition.op
    if op in NEGATIONS:
        positive = _sql_condition(
            PropertyCondition(condition.property, NEGATIONS[op], condition.value), column, dialect
        )
        return ~func.coalesce(positive, false())
    value = _Property(column, condition.property, dialect)
    if op == "IS_SET":
        return value.is_kind("string", "number", "boolean")
    if op in ("EQUALS", "IN"):
        operands = [_operand(v) for v in (condition.value if op == "IN" else [condition.value])]
        numbers = sorted({o.number for o in operands if o.number is not None})
        booleans = sorted({o.boolean for o in operands if o.boolean is not None})
        alternatives = [
            and_(value.is_kind("string"), value.text().in_(sorted({o.text for o in operands})))
        ]
        if numbers:
            alternatives.append(and_(value.is_kind("number"), value.number().in_(numbers)))
        alternatives.extend(value.is_boolean(b) for b in booleans)
        return or_(*alternatives)
    if op in NUMERIC_OPERATORS:
        bound = _operand(condition.value).number
        # On SQLite any text compares greater than any number: test the kind first.
        compare = NUMERIC_OPERATORS[op](value.number(), bindparam(None, bound, Float))
        return and_(value.is_kind("number"), compare)
    return and_(value.is_kind("string"), _sql_text(value, op, _operand(condition.value).text))


def _sql_text(value: _Property, op: str, wanted: str) -> ColumnElement[bool]:
    text = value.text()
    if op == "CONTAINS":
        find = func.instr if value.sqlite else func.strpos
        return find(func.lower(text), func.lower(wanted)) > 0
    if op == "STARTS_WITH":
        return func.substr(text, 1, len(wanted)) == wanted
    if op == "ENDS_WITH":
        return func.substr(text, func.length(text) - len(wanted) + 1) == wanted
    parts = wanted.split("*")
    if value.sqlite:
        glob = "*".join(re.sub(r"([?\[])", r"[\1]", part) for part in parts)
        return text.op("GLOB")(glob)
    like = "%".join(re.sub(r"([\\%_])", r"\\\1", part) for part in parts)
    return text.like(like, escape="\\")


def hierarchy(column: Any, *, dialect: str) -> tuple[Any, ColumnElement[bool]]:
    """The element hierarchy of events, and the condition that they have one."""
    value = _Property(column, "hierarchy", dialect)
    return value.text(), value.is_kind("string")


def in_texts(expression: Any, texts: Sequence[str], *, dialect: str) -> ColumnElement[bool]:
    """`expression IN texts` with one bound parameter, however many texts there are."""
    if dialect == "sqlite":
        listed = func.json_each(orjson.dumps(list(texts)).decode()).table_valued("value")
        return expression.in_(select(listed.c.value))
    return expression == any_(bindparam(None, list(texts), ARRAY(Text)))


def compiled_selector(criterion: Criterion) -> Selector | None:
    """The criterion's compiled selector, if it has one."""
    return compile_selector(criterion.selector) if criterion.selector else None
