"""The Event type and its connection."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from graph import ids
from graph.common import Node, PageInfo
from graph.enums import EventSource
from services.clock import to_datetime

if TYPE_CHECKING:
    from graph.session import Session
    from graph.user import User
    from resolvers.context import Context

SessionType = Annotated["Session", strawberry.lazy("graph.session")]
UserType = Annotated["User", strawberry.lazy("graph.user")]


@strawberry.type(description="Something a user did, as captured or sent.")
class Event(Node):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id.")
    type: str = strawberry.field(
        description="Raw type: pageview, click, submit, change, or the custom/server event name."
    )
    name: str = strawberry.field(
        description="Display name: the best matching definition's name, else the raw name."
    )
    time: datetime = strawberry.field(description="When it happened.")
    source: EventSource = strawberry.field(description="Where it came from.")
    server_side: bool = strawberry.field(description="True for server-side events.")
    properties: JSON = strawberry.field(
        description="path, domain, target_text, hierarchy, ... and custom properties."
    )

    @classmethod
    def from_row(cls, row: Any) -> Event:
        return cls(
            row=row,
            id=strawberry.ID(ids.encode("Event", row.user_id, row.id)),
            type=row.type,
            name=row.type,
            time=to_datetime(row.time_us),
            source=EventSource(row.source),
            server_side=row.source == "SERVER",
            properties=row.properties,
        )

    @strawberry.field(name="property", description="One property by name, or null.")
    def property_(self, name: str) -> JSON | None:
        return self.row.properties.get(name)

    @strawberry.field(description="The session the event belongs to.")
    async def session(self, info: strawberry.Info[Context]) -> SessionType:
        from graph.session import Session

        row = await info.context.loaders.session.load((self.row.user_id, self.row.session_id))
        return Session.from_row(row)

    @strawberry.field(description="The user who did it.")
    async def user(self, info: strawberry.Info[Context]) -> UserType:
        from graph.user import User

        return User.from_row(await info.context.loaders.user.load(self.row.user_id))


@strawberry.type(description="An event in a list.")
class EventEdge:
    node: Event = strawberry.field(description="The event.")
    cursor: str = strawberry.field(description="Cursor of this position.")


@strawberry.type(description="A page of events.")
class EventConnection:
    edges: list[EventEdge] = strawberry.field(description="The events of this page.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")
    total_count: int = strawberry.field(description="Number of events in the whole list.")
