"""Keyset pages: bounds on `first`, opaque cursors, and slicing a fetched page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, Generic, TypeVar, cast

from graphql import GraphQLError

from graph import ids
from graph.common import PageInfo

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


def cut_rows(
    rows: Sequence[T], first: int, kind: str, key: Callable[[T], tuple[int, ...]]
) -> tuple[Sequence[T], bool, Callable[[], str | None]]:
    """(rows, has next page, end cursor as a function) of rows fetched with limit first + 1.

    For edges that encode their own cursor and a pageInfo that encodes its end cursor, when
    they are selected.
    """
    shown = rows[:first]
    return shown, len(rows) > first, lambda: ids.encode(kind, *key(shown[-1])) if shown else None


def page_info(has_next: bool, end_cursor: str | None | Callable[[], str | None]) -> PageInfo:
    """The pageInfo of a page; `end_cursor` may be a function computing it when selected."""
    return PageInfo(has_next_page=has_next, end=end_cursor)


class Deferred(Generic[T]):
    """An awaitable that starts its work only when awaited.

    graphql-core awaits a field value that is awaitable, and nothing else awaits it: as the
    value of a plain field, the work (a count, say) runs only when the field is selected.
    """

    __slots__ = ("_start",)

    def __init__(self, start: Callable[[], Awaitable[T]]):
        self._start = start

    def __await__(self) -> Generator[Any, None, T]:
        return self._start().__await__()


def deferred(start: Callable[[], Awaitable[T]]) -> T:
    """A plain field's value computed by `start()` if, and only if, the field is selected.

    Typed as the value the field declares: the executor resolves it before anyone reads it.
    """
    return cast(T, Deferred(start))
