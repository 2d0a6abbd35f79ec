"""Small shared types: pagination info, locations, user errors, the Node interface."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import strawberry

from services.errors import Problem


@strawberry.interface(description="An object with a global id, valid inside its environment.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global id.")


def _start_cursor(self: PageInfo) -> str | None:
    start = self.start
    return start() if callable(start) else start


def _end_cursor(self: PageInfo) -> str | None:
    end = self.end
    return end() if callable(end) else end


@strawberry.type(
    description="Where a page of a connection starts and ends (Relay's PageInfo). Lists are "
    "keyset lists: a cursor marks a position, and pages before or after it are read from there."
)
class PageInfo:
    # The cursors, or functions encoding them (when the field is selected).
    start: strawberry.Private[str | None | Callable[[], str | None]]
    end: strawberry.Private[str | None | Callable[[], str | None]]
    has_next_page: bool = strawberry.field(
        description="True when items follow this page. Paging forward (`first`): whether more "
        "items follow. Paging backward (`last`): true when `before` is given, false from the "
        "end of the list: the item `before` marks followed the page when its cursor was handed "
        "out (it may have been deleted or filtered out since)."
    )
    has_previous_page: bool = strawberry.field(
        description="True when items precede this page. Paging backward (`last`): whether more "
        "items precede it. Paging forward (`first`): true when `after` is given, false on a "
        "first page: the item `after` marks preceded the page when its cursor was handed out "
        "(it may have been deleted or filtered out since)."
    )
    start_cursor: str | None = strawberry.field(
        resolver=_start_cursor,
        description="Cursor of the page's first item (null when empty): pass as `before` with "
        "`last` to fetch the page before.",
    )
    end_cursor: str | None = strawberry.field(
        resolver=_end_cursor,
        description="Cursor of the page's last item (null when empty): pass as `after` with "
        "`first` to fetch the page after.",
    )


@strawberry.type(description="A geographic location, as precise as known.")
class Location:
    country: str | None = strawberry.field(description="Country code or name.")
    region: str | None = strawberry.field(description="Region or state.")
    city: str | None = strawberry.field(description="City.")

    @classmethod
    def of(cls, country: str | None, region: str | None, city: str | None) -> Location | None:
        """A location, or None when nothing is known."""
        if country is None and region is None and city is None:
            return None
        return cls(country=country, region=region, city=city)


@strawberry.type(description="An expected failure, reported in a mutation payload.")
class UserError:
    index: int | None = strawberry.field(
        description="Position in a batch, when the error is about one item."
    )
    field: str | None = strawberry.field(description="The input field at fault.")
    message: str = strawberry.field(description="What went wrong and how to fix it.")
    code: str = strawberry.field(
        description="Stable code, e.g. INVALID_TIMESTAMP, PROPERTY_TOO_LONG, UNKNOWN_USER."
    )

    @classmethod
    def from_problem(cls, problem: Problem) -> UserError:
        return cls(
            index=problem.index, field=problem.field, message=problem.message, code=problem.code
        )

    @classmethod
    def many(cls, problems: Iterable[Problem]) -> list[UserError]:
        return [cls.from_problem(p) for p in problems]
