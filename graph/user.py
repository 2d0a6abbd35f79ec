"""The User type."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from graph.arguments import checked, event_match, user_session_filter
from graph.common import Location, Node, PageInfo
from graph.pagination import cut, deferred, first_argument, given, last_argument, window
from graph.session import Session, SessionConnection, SessionEdge, wanted_events
from services import ids
from services.clock import to_datetime
from services.users import all_properties, display_name

if TYPE_CHECKING:
    from graph.context import Context
    from graph.filters import EventMatch, UserSessionFilter

SessionType = Annotated["Session", strawberry.lazy("graph.session")]
SessionConnectionType = Annotated["SessionConnection", strawberry.lazy("graph.session")]
UserSessionFilterInput = Annotated["UserSessionFilter", strawberry.lazy("graph.filters")]
EventMatchInput = Annotated["EventMatch", strawberry.lazy("graph.filters")]
MAX_SESSIONS_PAGE = 100


@strawberry.type(description="A property of a user, as listed on the user's profile.")
class UserProperty:
    name: str = strawberry.field(description="Property name.")
    value: JSON | None = strawberry.field(description="Property value.")
    autocaptured: bool = strawberry.field(
        description="True for properties Usertrail sets itself (Initial …, Date First Seen, …)."
    )


def _id(self: User) -> strawberry.ID:
    return strawberry.ID(ids.encode("User", self.row.user_id))


def _display_name(self: User) -> str:
    return display_name(self.row)


def _first_seen(self: User) -> datetime:
    return to_datetime(self.row.first_seen_us)


def _last_seen(self: User) -> datetime:
    return to_datetime(self.row.last_seen_us)


@strawberry.type(description="A person using the product, anonymous or identified.")
class User(Node):
    """A user row; fields that take work to compute read the row when selected."""

    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(
        resolver=_id,
        description=(
            "Opaque global id. Stable for the user's life; after a merge (identify, alias) "
            "node(id:) of the merged user's id answers the user it was merged into, under "
            "that user's own id. Null once the user is deleted."
        ),
    )
    user_id: str = strawberry.field(description="Numeric user id (0 .. 2^53-1), as a string.")
    identity: str | None = strawberry.field(description="The identity, when identified.")
    display_name: str = strawberry.field(
        resolver=_display_name,
        description='Identity, else the Email property, else "User <userId>".',
    )
    first_seen: datetime = strawberry.field(
        resolver=_first_seen, description='Time of the first event ("Date First Seen").'
    )
    last_seen: datetime = strawberry.field(
        resolver=_last_seen, description="Time of the latest event."
    )

    @classmethod
    def from_row(cls, row: Any) -> User:
        return cls(row=row, user_id=str(row.user_id), identity=row.identity)

    @strawberry.field(description="Every user property: autocaptured and custom.")
    def properties(self) -> JSON:
        return all_properties(self.row)

    @strawberry.field(name="property", description="One property by name, or null.")
    def property_(self, name: str) -> JSON | None:
        return all_properties(self.row).get(name)

    @strawberry.field(
        description="The searchable property list of the user's profile, sorted by "
        "name; `search` matches names and values, case-insensitively."
    )
    def property_list(self, search: str | None = None) -> list[UserProperty]:
        from services.users import property_list

        return [
            UserProperty(name=name, value=value, autocaptured=auto)
            for name, value, auto in property_list(self.row, search)
        ]

    @strawberry.field(description="Location of the user's first session.")
    def initial_location(self) -> Location | None:
        auto = self.row.autocaptured or {}
        return Location.of(
            auto.get("Initial Country"), auto.get("Initial Region"), auto.get("Initial City")
        )

    @strawberry.field(description="The user's earliest session.")
    async def first_session(self, info: strawberry.Info[Context]) -> SessionType | None:
        row = await info.context.loaders.first_session.load(self.row.user_id)
        return Session.from_row(row) if row is not None else None

    @strawberry.field(description="The user's latest session.")
    async def last_session(self, info: strawberry.Info[Context]) -> SessionType | None:
        row = await info.context.loaders.last_session.load(self.row.user_id)
        return Session.from_row(row) if row is not None else None

    # Both kept exact on the user row by the SortKeys projection (services/projections.py).
    @strawberry.field(description="Number of sessions.")
    def session_count(self) -> int:
        return int(self.row.session_count)

    @strawberry.field(description="Number of events.")
    def event_count(self) -> int:
        return int(self.row.event_count)

    @strawberry.field(
        description="The user's sessions, newest first: `first`/`after` page forward, "
        "`last`/`before` backward."
    )
    async def sessions(
        self,
        info: strawberry.Info[Context],
        first: Annotated[int | None, first_argument(MAX_SESSIONS_PAGE)] = 20,
        after: str | None = None,
        filter: UserSessionFilterInput | None = None,
        highlight: EventMatchInput | None = None,
        last: Annotated[int | None, last_argument("sessions", MAX_SESSIONS_PAGE)] = None,
        before: str | None = None,
    ) -> SessionConnectionType:
        asked = window(
            first,
            after,
            last,
            before,
            kind="sc",
            default=20,
            maximum=MAX_SESSIONS_PAGE,
            first_given=lambda: given(info, "first"),
        )
        narrowing = checked(lambda: user_session_filter(filter))
        if narrowing is not None:
            checked(lambda: narrowing.checked())
        marked = checked(lambda: event_match(highlight, "highlight"))
        if marked is not None:
            checked(lambda: marked.checked("highlight"))
        loaders = info.context.loaders
        user_id = self.row.user_id
        events = wanted_events(info, "edges.node")  # read with the sessions, if asked
        rows = await loaders.session_page.load(
            (user_id, asked.limit, asked.cursor, asked.backward, narrowing, events)
        )
        shown, page = cut(rows, asked, "sc", lambda r: (r.start_us, r.id))

        async def total() -> int:  # counted only when totalCount is selected
            if narrowing is None:
                return int(self.row.session_count)
            return await loaders.session_count.load((user_id, narrowing))

        return SessionConnection(
            edges=[
                SessionEdge(node=Session.from_row(row, highlight=marked), cursor=cursor)
                for row, cursor in shown
            ],
            page_info=page,
            total_count=deferred(total),
        )


@strawberry.type(description="A user in a list.")
class UserEdge:
    node: User = strawberry.field(description="The user.")
    cursor: str = strawberry.field(description="Cursor of this position.")


@strawberry.type(description="A page of users.")
class UserConnection:
    edges: list[UserEdge] = strawberry.field(description="The users of this page.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")
    total_count: int = strawberry.field(description="Number of users in the whole list.")
