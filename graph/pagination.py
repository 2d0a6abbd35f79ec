"""Keyset pages: the window `first`/`after` or `last`/`before` ask for, opaque cursors, and
slicing a page read for a window."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import strawberry
from graphql import GraphQLError

from graph.common import PageInfo
from services import ids

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


def read_cursor(
    value: str | None, kind: str, size: int = 2, argument: str = "after"
) -> tuple[int, ...] | None:
    """The sort key inside a cursor, or a GraphQL error naming `argument` when it is not ours."""
    if value is None:
        return None
    decoded = ids.decode(value, kind)
    if decoded is None or len(decoded[1]) != size:
        raise GraphQLError(
            f"`{argument}` is not a cursor of this list",
            extensions={"code": "BAD_USER_INPUT", "field": argument},
        )
    return decoded[1]


def first_argument(maximum: int) -> Any:
    """`first`'s argument definition: its bound, and that its default yields to `last`."""
    return strawberry.argument(
        description=f"Page size forward, at most {maximum}; its default holds only without `last`."
    )


def last_argument(items: str, maximum: int) -> Any:
    """`last`'s argument definition."""
    return strawberry.argument(
        description=f"Page size backward: the {items} right before `before` (without it, the "
        f"list's last ones), in list order; at most {maximum}. Leave `first` out (or null)."
    )


@dataclass(frozen=True, slots=True)
class Window:
    """The page a connection field asks for: `size` items after `cursor` in list order, or,
    `backward`, the `size` items right before it (before the end of the list without one)."""

    size: int
    cursor: tuple[Any, ...] | None
    backward: bool = False

    @property
    def limit(self) -> int:
        """Rows to read, nearest the cursor first: one more than shown tells if more lie beyond."""
        return self.size + 1


def _refused(message: str, argument: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT", "field": argument})


def window(
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    *,
    kind: str,
    default: int,
    maximum: int,
    size: int = 2,
    first_given: bool | Callable[[], bool] = True,
    read: Callable[[str | None, str], tuple[Any, ...] | None] | None = None,
) -> Window:
    """The page `first`/`after` (forward) or `last`/`before` (backward) ask for, or a GraphQL
    error naming the argument at fault.

    The directions do not mix: `first` with `last`, `after` with `last` and `before` without
    `last` are refused. `first_given` says whether `first` was written in the query (a value
    it holds by default yields to `last`); a function is called only when it matters.
    `read(value, argument)` reads a cursor instead of `read_cursor` (a list whose cursors hold
    more than integers).
    """
    if read is None:

        def read(value: str | None, argument: str) -> tuple[Any, ...] | None:
            return read_cursor(value, kind, size, argument)

    if last is None:
        if before is not None:
            raise _refused("`before` pages backward: give it with `last`", "before")
        return Window(
            check_first(first, default=default, maximum=maximum),
            read(after, "after"),
        )
    if first is not None and (first_given() if callable(first_given) else first_given):
        raise _refused("give `first` (forward) or `last` (backward), not both", "last")
    if after is not None:
        raise _refused("`after` pages forward: give it with `first`, or use `before`", "after")
    return Window(
        check_first(last, default=default, maximum=maximum, argument="last"),
        read(before, "before"),
        backward=True,
    )


def given(info: Any, argument: str) -> bool:
    """Whether the current field's selection writes `argument` with a value (not null, not an
    unset variable): a default yields to the other direction's arguments."""
    return any(
        getattr(field, "arguments", {}).get(argument) is not None for field in info.selected_fields
    )


def cut(
    rows: Sequence[T],
    window: Window,
    kind: str,
    key: Callable[[T], tuple[int, ...]],
    encode: Callable[[T], str] | None = None,
) -> tuple[list[tuple[T, str]], PageInfo]:
    """(rows in list order with their cursors, pageInfo) of rows read for `window` (limit
    window.limit, nearest the cursor first); `encode` makes a row's cursor instead of
    ids.encode(kind, *key(row))."""
    shown, info = cut_rows(rows, window, kind, key)
    edges = [(row, encode(row) if encode else ids.encode(kind, *key(row))) for row in shown]
    if edges:
        info.start, info.end = edges[0][1], edges[-1][1]
    return edges, info


def cut_rows(
    rows: Sequence[T], window: Window, kind: str, key: Callable[[T], tuple[int, ...]]
) -> tuple[Sequence[T], PageInfo]:
    """(rows in list order, pageInfo) of rows read for `window` (limit window.limit, nearest
    the cursor first); the pageInfo encodes its cursors only when they are selected.

    Paging forward, more rows than shown mean a next page, and a cursor a previous one (the
    item it marks); backward the other way round. Rows read backward are put back in list
    order, as Relay wants a page's edges.
    """
    shown = rows[: window.size]
    beyond = len(rows) > window.size
    if window.backward:
        shown = shown[::-1]
    return shown, PageInfo(
        has_next_page=window.cursor is not None if window.backward else beyond,
        has_previous_page=beyond if window.backward else window.cursor is not None,
        start=lambda: ids.encode(kind, *key(shown[0])) if shown else None,
        end=lambda: ids.encode(kind, *key(shown[-1])) if shown else None,
    )


def page_info(
    *,
    has_next: bool = False,
    has_previous: bool = False,
    start: str | None = None,
    end: str | None = None,
) -> PageInfo:
    """A pageInfo of known values (an empty page, by default)."""
    return PageInfo(has_next_page=has_next, has_previous_page=has_previous, start=start, end=end)


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
