"""Criteria of event definitions: validation, and matching in SQL (backfill) and Python (live).

A criterion is a raw event type narrowed by an optional CSS selector on the element
hierarchy, conditions on `target_text` and `path`, and property conditions, all ANDed.
Target text, path and property conditions are property conditions of services/conditions.py
(SPEC §5a): one implementation, so the backfill of a definition (SQL) and the live match of
later events (Python) agree on both databases. Only the selector is matched here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ARRAY, Text, and_, any_, bindparam, func, select, true
from sqlalchemy.sql.elements import ColumnElement

from services import limits
from services.condition_sql import condition_sql, json_operand
from services.conditions import (
    MAX_CONDITION_VALUE,
    MAX_IN_VALUES,
    NO_VALUE,
    OPERATORS,
    TEXT_OPERATORS,
    PropertyCondition,
    operator_name,
    predicate,
    validate,
)
from services.errors import InvalidInput
from services.selectors import Selector, compile_selector

__all__ = ["MAX_IN_VALUES", "OPERATORS", "Criterion", "PropertyCondition", "StringMatch"]

MAX_CRITERIA = 20
MAX_CONDITIONS = 20
MAX_SELECTOR = limits.MAX_SELECTOR_LENGTH

# Operators a StringMatch (targetText, path) accepts: its value is one string.
STRING_MATCH_OPERATORS = frozenset(
    {"EQUALS", *TEXT_OPERATORS, "IS_SET", "NOT_EQUALS", "NOT_CONTAINS", "IS_NOT_SET"}
)


@dataclass(frozen=True, slots=True)
class StringMatch:
    """A condition on one string property of an event (targetText, path)."""

    op: str
    value: str | None = None


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
                {"property": c.property, "op": c.op, "value": c.document_value()}
                for c in self.properties
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
            validate(c, f"{field}.properties[{i}]") for i, c in enumerate(criterion.properties)
        ),
    )


def _string_match(match: StringMatch | None, field: str) -> StringMatch | None:
    """The clean match (operator of STRING_MATCH_OPERATORS, a string value unless IS_(NOT_)SET),
    or InvalidInput naming `field`'s part."""
    if match is None:
        return None
    op = operator_name(match.op, f"{field}.op", STRING_MATCH_OPERATORS)
    if op in NO_VALUE:
        return StringMatch(op)
    if not isinstance(match.value, str):
        raise InvalidInput(
            f"{op} needs a string value", field=f"{field}.value", code="MISSING_VALUE"
        )
    if len(match.value) > MAX_CONDITION_VALUE:
        raise InvalidInput(
            f"a condition value has at most {MAX_CONDITION_VALUE} characters",
            field=f"{field}.value",
            code="INVALID_VALUE",
        )
    return StringMatch(op, match.value)


checked_string_match = _string_match  # also the session filters' entry and exit pages


# ---------------------------------------------------------------- matching


def python_matcher(criterion: Criterion) -> Callable[[str, Mapping[str, Any]], bool]:
    """A predicate (type, properties) -> bool equal to the criterion's SQL."""
    tests = [predicate(c) for c in criterion.conditions()]
    # Stored selectors may predate a lowered limit: matching them never refuses.
    selector = compile_selector(criterion.selector, limited=False) if criterion.selector else None
    wanted = criterion.type

    def matches(event_type: str, properties: Mapping[str, Any]) -> bool:
        if event_type != wanted or not all(test(properties) for test in tests):
            return False
        if selector is None:
            return True
        hierarchy = properties.get("hierarchy")
        return isinstance(hierarchy, str) and selector.matches(hierarchy)

    return matches


def sql_condition(criterion: Criterion, column: Any, *, dialect: str) -> ColumnElement[bool]:
    """The criterion's conditions on the JSON column `column`, except type and selector."""
    parts = [
        condition_sql(c, json_operand(column, c.property, dialect)) for c in criterion.conditions()
    ]
    return and_(true(), *parts)


def hierarchy(column: Any, *, dialect: str) -> tuple[Any, ColumnElement[bool]]:
    """The element hierarchy of events, and the condition that they have one (a string)."""
    return json_operand(column, "hierarchy", dialect).string()


def in_texts(expression: Any, texts: Sequence[str], *, dialect: str) -> ColumnElement[bool]:
    """`expression IN texts` with one bound parameter, however many texts there are."""
    if dialect == "sqlite":
        listed = func.json_each(orjson.dumps(list(texts)).decode()).table_valued("value")
        return expression.in_(select(listed.c.value))
    return expression == any_(bindparam(None, list(texts), ARRAY(Text)))


def compiled_selector(criterion: Criterion) -> Selector | None:
    """The criterion's compiled selector, if it has one."""
    return compile_selector(criterion.selector) if criterion.selector else None
