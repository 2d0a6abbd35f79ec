"""Keyset pages: bounds on `first`, opaque cursors, and slicing a fetched page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from graphql import GraphQLError

from graph import ids

T = TypeVar("T")


def check_first(first: int | None, *, default: int, maximum: int, argument: str = "first") -> int:
    """`first` (or its default when null), or a GraphQL error naming it when out of bounds."""
    if first is None:
        return default
    if not 0 <= first <= maximum:
        raise GraphQLError(
            f"`{argument}` must be between 0 and {maximum}; got {first}",
            extensions={"code": "BAD_USER_INPUT", "field": argument},
        )
    return first


def read_cursor(value: str | None, kind: str, size: int = 2) -> tuple[int, ...] | None:
    """The sort key inside a cursor, or a GraphQL error naming `after` when it is not ours."""
    if value is None:
        return None
    decoded = ids.decode(value, kind)
    if decoded is None or len(decoded[1]) != size:
        raise GraphQLError(
            "`after` is not a cursor of this list",
            extensions={"code": "BAD_USER_INPUT", "field": "after"},
        )
    return decoded[1]


def cut(
    rows: Sequence[T], first: int, kind: str, key: Callable[[T], tuple[int, ...]]
) -> tuple[list[tuple[T, str]], bool, str | None]:
    """(rows with cursors, has next page, end cursor) of rows fetched with limit first + 1."""
    shown = [(row, ids.encode(kind, *key(row))) for row in rows[:first]]
    return shown, len(rows) > first, shown[-1][1] if shown else None


def page_info(has_next: bool, end_cursor: str | None) -> Any:
    from graph.common import PageInfo

    return PageInfo(has_next_page=has_next, end_cursor=end_cursor)
