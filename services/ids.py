"""Opaque global ids and cursors: url-safe base64 of a typed tuple of integers.

Every integer inside an id fits the column it is compared with: a forged id whose number
is out of range is simply not an id (a node not found, a cursor refused), never a
database error.
"""

from __future__ import annotations

import base64
import binascii

INT64 = 2**63
INT32 = 2**31
# Kinds whose numbers are 32-bit columns (models: SmallKey / Integer ids); all others are
# BIGINT (user, session and event ids, microsecond times in cursors).
NARROW_KINDS = frozenset({"EventDefinition", "Segment"})


def encode(kind: str, *parts: int) -> str:
    """An opaque id, e.g. encode("Session", user_id, session_id)."""
    raw = ":".join([kind, *map(str, parts)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(value: str, kind: str | None = None) -> tuple[str, tuple[int, ...]] | None:
    """(kind, parts) of an id made by `encode`, or None when it is not one (or not of `kind`).

    Numbers must be written as `encode` writes them and fit their column (64-bit signed,
    32-bit for the kinds in NARROW_KINDS).
    """
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
        name, *parts = raw.split(":")
        numbers = tuple(_number(p) for p in parts)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if kind is not None and name != kind:
        return None
    bound = INT32 if name in NARROW_KINDS else INT64
    if not all(-bound <= n < bound for n in numbers):
        return None
    return name, numbers


def _number(text: str) -> int:
    # int() alone also takes " 7", "+7", "0_7" and 4,000-digit numbers.
    digits = text[1:] if text.startswith("-") else text
    if not digits.isdigit() or not digits.isascii() or len(digits) > 20:
        raise ValueError(text)
    return int(text)
