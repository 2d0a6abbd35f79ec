"""Property conditions (services/conditions.py) compiled to SQL for SQLite and PostgreSQL.

An operand is one property as SQL: a member of a JSON document column (any characters in
its name), or a plain column (identity and email text, userId integer). Each operand reads
its value by the rules of models/property_values.py; the operators are composed from those
reads once, in `condition_sql`, for every operand and dialect.

Exactness: PostgreSQL compares `numeric`, never a float. SQLite compares JSON integers and
strings of up to 18 digits natively against bounds made integral in Python (so plain
columns keep their indexes), stored doubles natively against an edge double computed in
Python (`double_edge`), and reads other numeric strings and the text form of doubles
through the registered `usertrail_*` functions. Case folding for CONTAINS: ICU lower-casing
on PostgreSQL (the database locale's lower() may fold ASCII only, or differently), Python's
on SQLite; both read a final sigma as sigma.

Longer than ~400 lines on purpose: the four operands share the numeric edge rules above
and one composition of the operators; checking one operator means reading one file.
"""

from __future__ import annotations

import math
import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import (
    Integer,
    Numeric,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
)
from sqlalchemy import true as sql_true
from sqlalchemy.sql.elements import ColumnElement

from models.property_values import (
    MAX_NUMERIC_TEXT,
    NUMERIC_PATTERN,
    WHITESPACE,
    fold,
    number,
    number_text,
)
from services.conditions import NEGATIONS, PropertyCondition, is_number

Condition = ColumnElement[bool]
SQL_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "EQUALS": operator.eq,
    "GREATER_THAN": operator.gt,
    "GREATER_OR_EQUAL": operator.ge,
    "LESS_THAN": operator.lt,
    "LESS_OR_EQUAL": operator.le,
}
INT64 = (-(2**63), 2**63 - 1)
# A numeric string as PostgreSQL's regular expressions read it (no \s: its set is locale's).
PG_NUMERIC = f"^[{WHITESPACE}]*{NUMERIC_PATTERN}[{WHITESPACE}]*$"
# Names SQLite's quoted JSON path cannot spell: JSON escapes them in the stored text.
_UNQUOTABLE = re.compile(r'["\\\x00-\x1f]')
# Strings with any other character are not numeric: SQLite skips reading them in Python.
NOT_NUMERIC_GLOB = f"*[^0-9.eE+{WHITESPACE}-]*"
_CANONICAL_INTEGER = re.compile(r"-?[1-9][0-9]*|0")


def condition_sql(condition: PropertyCondition, operand: Operand) -> Condition:
    """SQL true exactly where services.conditions.predicate holds (SPEC §5a)."""
    op = condition.op
    if op in NEGATIONS:
        positive = PropertyCondition(condition.property, NEGATIONS[op], condition.value)
        return not_(func.coalesce(condition_sql(positive, operand), false()))
    if op == "IS_SET":
        return operand.present()
    if op in ("EQUALS", "IN"):
        values = condition.values()
        parts: list[Condition] = []
        texts = sorted({v for v in values if isinstance(v, str)})
        if texts:
            parts.append(operand.text_in(texts))
        bounds = sorted({n for v in values if is_number(v) and (n := number(v)) is not None})
        if bounds:
            parts.append(operand.number_in(bounds))
        parts += [operand.boolean(b) for b in sorted({v for v in values if isinstance(v, bool)})]
        return or_(*parts)
    if op in SQL_COMPARISONS:
        bound = number(condition.value)
        assert bound is not None, "validated"
        return operand.compare(op, bound)
    wanted = str(condition.value)
    if wanted == "" and op != "MATCHES":
        return operand.present()
    if op == "CONTAINS":
        return operand.contains(wanted)
    text = operand.text()
    if op == "STARTS_WITH":
        return func.substr(text, 1, len(wanted)) == wanted
    if op == "ENDS_WITH":
        if operand.dialect == "postgresql":
            return func.right(text, len(wanted)) == wanted
        return func.substr(text, -len(wanted)) == wanted
    if op == "MATCHES":
        return operand.matches(wanted)
    raise AssertionError(op)


def integer_comparison(column: Any, op: str, bound: Decimal) -> Condition:
    """`column op bound` for a column of integers within 64 bits, exact, index-friendly."""
    floor = int(bound.to_integral_value(rounding=ROUND_FLOOR))
    integral = bound == floor
    if op == "EQUALS":
        if not integral or not INT64[0] <= floor <= INT64[1]:
            return false()
        return column == floor
    # For a fractional bound x: n > x and n >= x mean n > floor(x); n < x, n <= x: n <= floor(x).
    if op == "GREATER_OR_EQUAL" and not integral:
        op = "GREATER_THAN"
    if op == "LESS_THAN" and not integral:
        op = "LESS_OR_EQUAL"
    upward = op in ("GREATER_THAN", "GREATER_OR_EQUAL")
    if floor > INT64[1]:
        return sql_true() if not upward else false()
    if floor < INT64[0]:
        return sql_true() if upward else false()
    return SQL_COMPARISONS[op](column, floor)


def double_comparison(column: Any, op: str, bound: Decimal) -> Condition:
    """`column op bound` for a column of doubles, each read as its shortest decimal form."""
    edge = double_edge(op, bound)
    if isinstance(edge, bool):
        return sql_true() if edge else false()
    comparison, value = edge
    return SQL_COMPARISONS[comparison](column, value)


def double_edge(op: str, bound: Decimal) -> tuple[str, float] | bool:
    """`(op', d)` such that for every finite double v, (v read as its shortest decimal form)
    op bound exactly when v op' d; or a constant when every or no double does.

    That reading is monotonic in the double, so the doubles on one side of `bound` are those
    on one side of an edge double, found from the double nearest `bound` in a step or two.
    """
    nearest = float(bound)
    if op == "EQUALS":
        exact = math.isfinite(nearest) and number(nearest) == bound
        return ("EQUALS", nearest) if exact else False
    holds = SQL_COMPARISONS[op]
    upward = op in ("GREATER_THAN", "GREATER_OR_EQUAL")
    if not math.isfinite(nearest):  # beyond every double
        return upward != (nearest > 0)
    # Walk from the nearest double to the last one (going down for >, up for <) that holds.
    toward, away = (-math.inf, math.inf) if upward else (math.inf, -math.inf)
    edge = nearest
    while not holds(number(edge), bound):
        edge = math.nextafter(edge, away)
        if not math.isfinite(edge):
            return False
    while math.isfinite(step := math.nextafter(edge, toward)) and holds(number(step), bound):
        edge = step
    return ("GREATER_OR_EQUAL", edge) if upward else ("LESS_OR_EQUAL", edge)


def exact_doubles(bounds: Sequence[Decimal]) -> list[float]:
    """The doubles whose shortest decimal form equals one of `bounds`."""
    found = [(float(b), b) for b in bounds]
    return [d for d, b in found if math.isfinite(d) and number(d) == b]


def canonical_integers(texts: Sequence[str]) -> list[int]:
    """The texts that are a 64-bit integer's text form, as integers."""
    found = [int(t) for t in texts if _CANONICAL_INTEGER.fullmatch(t)]
    return [n for n in found if INT64[0] <= n <= INT64[1]]


def number_texts(texts: Sequence[str]) -> list[str]:
    """The texts that are some number's text form (`49`, `0.5`; not `049`, `4.9e1`)."""
    return [t for t in texts if (n := number(t)) is not None and number_text(n) == t]


def wildcard_like(pattern: str) -> str:
    """MATCHES as a LIKE pattern with `\\` as escape."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def wildcard_glob(pattern: str) -> str:
    """MATCHES as a GLOB pattern: GLOB's own metacharacters ? and [ put in brackets."""
    return "".join(f"[{c}]" if c in "?[" else c for c in pattern)


class Operand(ABC):
    """One property as SQL; `text` is its text form, NULL when absent."""

    dialect: str

    @abstractmethod
    def present(self) -> Condition: ...

    @abstractmethod
    def text(self) -> Any: ...

    @abstractmethod
    def text_in(self, texts: Sequence[str]) -> Condition: ...

    @abstractmethod
    def number_in(self, bounds: Sequence[Decimal]) -> Condition: ...

    @abstractmethod
    def compare(self, op: str, bound: Decimal) -> Condition: ...

    @abstractmethod
    def boolean(self, value: bool) -> Condition: ...

    def contains(self, wanted: str) -> Condition:
        """CONTAINS: the folded text form holds the folded `wanted`."""
        if self.dialect == "postgresql":
            folded = func.replace(func.lower(self.text().collate("und-x-icu")), "ς", "σ")
            return func.strpos(folded, fold(wanted)) > 0
        return func.instr(func.usertrail_fold(self.text()), fold(wanted)) > 0

    def matches(self, pattern: str) -> Condition:
        """MATCHES, case-sensitive, anchored."""
        if self.dialect == "postgresql":
            return self.text().like(wildcard_like(pattern), escape="\\")
        return self.text().op("GLOB", is_comparison=True)(wildcard_glob(pattern))


def _word(value: bool) -> str:
    return "true" if value else "false"


def pg_number(text: Any) -> Any:
    """A PostgreSQL text as an exact number when it is numeric (the CASE guards the cast)."""
    numeric = and_(
        func.length(text) <= MAX_NUMERIC_TEXT, text.op("~", is_comparison=True)(PG_NUMERIC)
    )
    return case((numeric, cast(func.btrim(text, WHITESPACE), Numeric)))


def _numeric(value: Decimal) -> Any:
    return bindparam(None, value, Numeric(asdecimal=True))


class PostgresJson(Operand):
    """A member of a jsonb document; the name is a bound parameter, so any text."""

    dialect = "postgresql"

    def __init__(self, document: Any, name: str):
        self.kind = func.jsonb_typeof(document.op("->")(bindparam(None, name, Text)))
        self.raw = document.op("->>", return_type=Text)(bindparam(None, name, Text))

    def present(self) -> Condition:
        return self.kind.in_(["string", "number", "boolean"])

    def string(self) -> tuple[Any, Condition]:
        """The value where it is a string, and the condition that it is one."""
        return self.raw, self.kind == "string"

    def _number_text(self) -> Any:
        return cast(func.trim_scale(cast(self.raw, Numeric)), Text)

    def number(self) -> Any:
        """The value as an exact `numeric` where it is numeric, else NULL."""
        return case(
            (self.kind == "number", cast(self.raw, Numeric)),
            (self.kind == "string", pg_number(self.raw)),
        )

    def text(self) -> Any:
        return case(
            (self.kind == "number", self._number_text()),
            (self.kind.in_(["string", "boolean"]), self.raw),
        )

    def text_in(self, texts: Sequence[str]) -> Condition:
        parts = [and_(self.kind == "string", self.raw.in_(texts))]
        if numeric := number_texts(texts):
            parts.append(and_(self.kind == "number", self._number_text().in_(numeric)))
        if words := [t for t in texts if t in ("true", "false")]:
            parts.append(and_(self.kind == "boolean", self.raw.in_(words)))
        return or_(*parts)

    def number_in(self, bounds: Sequence[Decimal]) -> Condition:
        return self.number().in_([_numeric(b) for b in bounds])

    def compare(self, op: str, bound: Decimal) -> Condition:
        return SQL_COMPARISONS[op](self.number(), _numeric(bound))

    def boolean(self, value: bool) -> Condition:
        return and_(self.kind.in_(["boolean", "string"]), func.lower(self.raw) == _word(value))


class SqliteJson(Operand):
    """A member of a JSON text document, by quoted path, or by name through Python."""

    dialect = "sqlite"

    def __init__(self, document: Any, name: str):
        if _UNQUOTABLE.search(name):
            document, path = func.usertrail_member(document, bindparam(None, name, String)), "$"
        else:
            path = f'$."{name}"'
        self.kind = func.json_type(document, path)
        self.raw = func.json_extract(document, path)
        self.json = document.op("->", return_type=String)(path)  # the value's JSON text

    def present(self) -> Condition:
        return self.kind.in_(["text", "integer", "real", "true", "false"])

    def string(self) -> tuple[Any, Condition]:
        """The value where it is a string, and the condition that it is one."""
        return self.raw, self.kind == "text"

    def text(self) -> Any:
        return self._by_kind(
            text=self.raw,
            integer=cast(self.raw, String),
            real=func.usertrail_text(self.json),
            true=literal("true"),
            false=literal("false"),
        )

    def _by_kind(self, **branches: Any) -> Any:
        """CASE on the value's kind: SQLite reads the kind once, then one branch."""
        return case(branches, value=self.kind)

    def _digits(self) -> Condition:
        """(Of a string) at most 18 ASCII digits: an exact 64-bit integer, read natively."""
        glob = self.raw.op("GLOB", is_comparison=True)
        short = func.length(self.raw) <= 18
        return and_(glob("[0-9]*"), not_(glob("*[^0-9]*")), short)

    def _maybe_numeric(self) -> Condition:
        """(Of a string) other characters of numbers: the strings worth reading in Python."""
        glob = self.raw.op("GLOB", is_comparison=True)
        other = or_(glob("*[^0-9]*"), func.length(self.raw) > 18)
        return and_(glob("*[0-9]*"), not_(glob(NOT_NUMERIC_GLOB)), other)

    def text_in(self, texts: Sequence[str]) -> Condition:
        integers = canonical_integers(texts)
        reals = exact_doubles([Decimal(t) for t in number_texts(texts)])
        return self._by_kind(
            text=self.raw.in_(texts),
            integer=self.raw.in_(integers) if integers else false(),
            real=self.raw.in_(reals) if reals else false(),
            true=sql_true() if "true" in texts else false(),
            false=sql_true() if "false" in texts else false(),
        )

    def number_in(self, bounds: Sequence[Decimal]) -> Condition:
        texts = [number_text(b) for b in bounds]
        integers = canonical_integers(texts)
        reals = exact_doubles(bounds)
        python = and_(self._maybe_numeric(), func.usertrail_number(self.json).in_(texts))
        digits = and_(self._digits(), cast(self.raw, Integer).in_(integers)) if integers else None
        return self._by_kind(
            integer=self.raw.in_(integers) if integers else false(),
            real=self.raw.in_(reals) if reals else false(),
            text=python if digits is None else or_(digits, python),
        )

    def compare(self, op: str, bound: Decimal) -> Condition:
        python = SQL_COMPARISONS[op](func.usertrail_compare(self.json, str(bound)), 0)
        digits = integer_comparison(cast(self.raw, Integer), op, bound)
        return self._by_kind(
            integer=integer_comparison(self.raw, op, bound),
            real=double_comparison(self.raw, op, bound),
            text=or_(and_(self._digits(), digits), and_(self._maybe_numeric(), python)),
        )

    def boolean(self, value: bool) -> Condition:
        word = _word(value)
        return self._by_kind(text=func.lower(self.raw) == word, **{word: sql_true()})


class TextColumn(Operand):
    """A plain text column (identity, email): a string property when not NULL."""

    def __init__(self, column: Any, dialect: str):
        self.column, self.dialect = column, dialect

    def present(self) -> Condition:
        return self.column.is_not(None)

    def text(self) -> Any:
        return self.column

    def text_in(self, texts: Sequence[str]) -> Condition:
        if len(texts) == 1:
            return self.column == texts[0]
        return self.column.in_(texts)

    def _python(self, function: Any, *arguments: Any) -> Any:
        return function(func.json_quote(self.column), *arguments)

    def number_in(self, bounds: Sequence[Decimal]) -> Condition:
        if self.dialect == "postgresql":
            return pg_number(self.column).in_([_numeric(b) for b in bounds])
        texts = [number_text(b) for b in bounds]
        return self._python(func.usertrail_number).in_(texts)

    def compare(self, op: str, bound: Decimal) -> Condition:
        if self.dialect == "postgresql":
            return SQL_COMPARISONS[op](pg_number(self.column), _numeric(bound))
        return SQL_COMPARISONS[op](self._python(func.usertrail_compare, str(bound)), 0)

    def boolean(self, value: bool) -> Condition:
        return func.lower(self.column) == _word(value)


class IntegerColumn(Operand):
    """A plain integer column (userId): a string property of digits, compared exactly."""

    def __init__(self, column: Any, dialect: str):
        self.column, self.dialect = column, dialect

    def present(self) -> Condition:
        return self.column.is_not(None)

    def text(self) -> Any:
        return cast(self.column, String)

    def text_in(self, texts: Sequence[str]) -> Condition:
        integers = canonical_integers(texts)
        return self.column.in_(integers) if integers else false()

    def number_in(self, bounds: Sequence[Decimal]) -> Condition:
        return or_(*[integer_comparison(self.column, "EQUALS", b) for b in bounds])

    def compare(self, op: str, bound: Decimal) -> Condition:
        return and_(self.present(), integer_comparison(self.column, op, bound))

    def boolean(self, value: bool) -> Condition:
        return false()


def json_operand(document: Any, name: str, dialect: str) -> PostgresJson | SqliteJson:
    """The property `name` of a JSON document column."""
    return PostgresJson(document, name) if dialect == "postgresql" else SqliteJson(document, name)
