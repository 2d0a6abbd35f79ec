"""The users list's `orderBy`: its input, and the cursors of each order.

Each order has cursors of its own kind, so a cursor read in one order is refused, naming the
argument, in another. Column orders keep integer cursors (services/ids.py); a property
order's cursor holds the property's name, the value's class, number and text (JSON).
"""

from __future__ import annotations

import base64
import binascii
from enum import Enum
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError

from services import ids, user_order

# The default order's cursors, as before orderBy existed.
DEFAULT_KIND = "uc"
_FIELD_LETTERS = {
    "LAST_SEEN": "l",
    "FIRST_SEEN": "f",
    "EVENT_COUNT": "e",
    "SESSION_COUNT": "s",
    "PROPERTY": "p",
}
_KINDS = {f"u{letter}{d[0].lower()}" for letter in _FIELD_LETTERS.values() for d in ("ASC", "DESC")}


@strawberry.enum(description="What the users list is sorted by.")
class UserSortField(Enum):
    LAST_SEEN = "LAST_SEEN"
    FIRST_SEEN = "FIRST_SEEN"
    EVENT_COUNT = "EVENT_COUNT"
    SESSION_COUNT = "SESSION_COUNT"
    PROPERTY = "PROPERTY"


@strawberry.enum(description="ASC: smallest (oldest) first; DESC: largest (newest) first.")
class SortDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input(
    description="How the users list is sorted (default: LAST_SEEN DESC). PROPERTY sorts by "
    "the user property named in `property`: numeric values first, by number; then other "
    "values by their text; users without it last, in both directions. Ties: by userId, in "
    "the same direction."
)
class UserOrder:
    field: UserSortField = strawberry.field(
        default=UserSortField.LAST_SEEN, description="The sort key."
    )
    direction: SortDirection = strawberry.field(
        default=SortDirection.DESC, description="Ascending or descending."
    )
    property: str | None = strawberry.field(
        default=None, description="The user property to sort by; with field PROPERTY only."
    )


def service_order(value: UserOrder | None) -> user_order.UserOrder:
    """The service's order (unchecked)."""
    if value is None:
        return user_order.UserOrder()
    return user_order.UserOrder(value.field.value, value.direction.value, value.property)


def kind(order: user_order.UserOrder) -> str:
    """The cursor kind of an order."""
    if order.is_default:
        return DEFAULT_KIND
    return f"u{_FIELD_LETTERS[order.field]}{order.direction[0].lower()}"


def _refused(argument: str, message: str) -> GraphQLError:
    return GraphQLError(
        f"`{argument}` {message}", extensions={"code": "BAD_USER_INPUT", "field": argument}
    )


def _other_order(argument: str) -> GraphQLError:
    return _refused(
        argument,
        "is a cursor of the users list in another order: page with the orderBy it was read "
        "with, or start again from the first page",
    )


def reader(order: user_order.UserOrder) -> Any:
    """`read(value, argument)` for graph.pagination.window: the position in a cursor of
    this order, or a GraphQL error naming the argument."""
    wanted = kind(order)

    def read(value: str | None, argument: str) -> tuple[Any, ...] | None:
        if value is None:
            return None
        if order.field == "PROPERTY":
            return _read_property(value, wanted, order.name or "", argument)
        if _property_cursor(value) is not None:
            raise _other_order(argument)
        decoded = ids.decode(value, None)
        if decoded is None or decoded[0] not in (_KINDS | {DEFAULT_KIND}) or len(decoded[1]) != 3:
            raise _refused(argument, "is not a cursor of this list")
        if decoded[0] != wanted:
            raise _other_order(argument)
        return decoded[1]

    return read


def encode_property(order: user_order.UserOrder, cursor: user_order.OrderCursor) -> str:
    """A property order's cursor."""
    raw = orjson.dumps([kind(order), order.name, *cursor.key, cursor.user_id, cursor.snapshot_us])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _property_cursor(value: str) -> list[Any] | None:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        parts = orjson.loads(raw)
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        return None
    if not isinstance(parts, list) or len(parts) != 7 or parts[0] not in _KINDS:
        return None
    return parts


def _read_property(value: str, wanted: str, name: str, argument: str) -> tuple[Any, ...]:
    parts = _property_cursor(value)
    if parts is None:
        decoded = ids.decode(value, None)
        if decoded is not None and decoded[0] in _KINDS | {DEFAULT_KIND}:
            raise _other_order(argument)
        raise _refused(argument, "is not a cursor of this list")
    found_kind, found_name, *key, user_id, snapshot = parts
    if found_kind != wanted or found_name != name:
        raise _other_order(argument)
    read = user_order.property_cursor_key(key)
    numbers = [user_id, snapshot]
    valid = all(isinstance(n, int) and -ids.INT64 <= n < ids.INT64 for n in numbers)
    if read is None or not valid or user_order.read_number(read[1]) is None:
        raise _refused(argument, "is not a cursor of this list")
    return read, user_id, snapshot
