"""How a stored property value reads (SPEC §5a): its text form, its number, its case fold.

These rules sit with the database setup because SQLite connections register them as SQL
functions: where SQLite has no exact equivalent (numbers read from text, Unicode case
folding), its SQL calls this very code, so a condition means the same in SQL and in the
Python evaluation of services/conditions.py. PostgreSQL reproduces them in SQL there.

A numeric string is at most `MAX_NUMERIC_TEXT` characters with an exponent of at most four
digits: bounds that keep PostgreSQL's exact `numeric` within its range for every value.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

# Whitespace a numeric string may carry around its number (ASCII, as PostgreSQL's btrim).
WHITESPACE = " \t\n\r\f\v"
NUMERIC_PATTERN = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,4})?"
MAX_NUMERIC_TEXT = 1000
_NUMERIC = re.compile(NUMERIC_PATTERN)


def number(value: Any) -> Decimal | None:
    """The exact number a stored value reads as, or None when it is not numeric."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest form, which is what JSON stores
    if isinstance(value, str) and len(value) <= MAX_NUMERIC_TEXT:
        stripped = value.strip(WHITESPACE)
        if _NUMERIC.fullmatch(stripped):
            return Decimal(stripped)
    return None


def number_text(exact: Decimal) -> str:
    """A number in its shortest plain form: no exponent, no trailing fraction zeros."""
    if exact == 0:
        return "0"
    text = format(exact, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def text_form(value: Any) -> str | None:
    """A string as it is, a number in its shortest form, a boolean as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        exact = number(value)
        return None if exact is None else number_text(exact)
    return None


def sort_text(exact: Decimal) -> str:
    """A text whose binary order is the numbers' order (SQLite sorts numbers by it, exactly):
    sign class, then the decimal exponent, then the digits (all inverted for negatives)."""
    if exact == 0:
        return "1"
    sign, digits, exponent = exact.normalize().as_tuple()
    assert isinstance(exponent, int)
    magnitude = exponent + len(digits) + 50000  # the exponent of the leading digit, offset
    mantissa = "".join(map(str, digits))
    if not sign:
        return f"2{magnitude:05d}{mantissa}"
    inverted = "".join(str(9 - int(d)) for d in mantissa)
    return f"0{99999 - magnitude:05d}{inverted}~"


def fold(text: str) -> str:
    """Unicode lower-casing, final sigma read as sigma (PostgreSQL does it with ICU)."""
    return text.lower().replace("ς", "σ")


# ---------------------------------------------------------------- SQLite functions


def _json_text(json_text: str | None) -> str | None:
    return None if json_text is None else text_form(orjson.loads(json_text))


def _json_compare(json_text: str | None, bound: str | None) -> int | None:
    """-1, 0 or 1 as the JSON value compares with the number `bound`; NULL if not numeric."""
    if json_text is None or bound is None:
        return None
    exact = number(orjson.loads(json_text))
    if exact is None:
        return None
    wanted = Decimal(bound)
    return (exact > wanted) - (exact < wanted)


def _json_number_text(json_text: str | None) -> str | None:
    """The JSON value's number in its shortest form (equal numbers, equal texts), or NULL."""
    if json_text is None:
        return None
    exact = number(orjson.loads(json_text))
    return None if exact is None else number_text(exact)


def _json_sort_number(json_text: str | None) -> str | None:
    """`sort_text` of the JSON value's number, or NULL when it is not numeric."""
    if json_text is None:
        return None
    exact = number(orjson.loads(json_text))
    return None if exact is None else sort_text(exact)


def _fold(text: str | None) -> str | None:
    return None if text is None else fold(text)


def _json_member(document: str | None, name: str | None) -> str | None:
    """The JSON text of member `name` of a JSON object (any characters in the name)."""
    if document is None or name is None:
        return None
    found = orjson.loads(document)
    if not isinstance(found, dict) or name not in found:
        return None
    return orjson.dumps(found[name]).decode()


# The SQL functions property conditions compile to: name, argument count, function.
SQLITE_FUNCTIONS: tuple[tuple[str, int, Callable[..., Any]], ...] = (
    ("usertrail_text", 1, _json_text),
    ("usertrail_compare", 2, _json_compare),
    ("usertrail_number", 1, _json_number_text),
    ("usertrail_sort_number", 1, _json_sort_number),
    ("usertrail_fold", 1, _fold),
    ("usertrail_member", 2, _json_member),
)


def register_sqlite(connection: sqlite3.Connection) -> None:
    """Make these rules SQL functions of a new SQLite connection."""
    for name, arguments, function in SQLITE_FUNCTIONS:
        connection.create_function(name, arguments, function, deterministic=True)
