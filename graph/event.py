"""The Event type and its connection."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from graph.common import Node, PageInfo
from graph.definition import EventDefinition
from graph.enums import EventSource
from services import ids
from services.clock import to_datetime

if TYPE_CHECKING:
    from graph.context import Context

# Types above this module, named lazily and never imported (not even for type checkers):
# their modules import this one. Fields build them through Context.build.
SessionType = Annotated["Session", strawberry.lazy("graph.session")]  # type: ignore[name-defined]  # noqa: F821
UserType = Annotated["User", strawberry.lazy("graph.user")]  # type: ignore[name-defined]  # noqa: F821
_new = object.__new__


def _id(self: Event) -> strawberry.ID:
    return strawberry.ID(ids.encode("Event", self.row.user_id, self.row.id))


def _time(self: Event) -> datetime:
    return to_datetime(self.row.time_us)


def _source(self: Event) -> EventSource:
    return EventSource(self.row.source)


@strawberry.type(description="Something a user did, as captured or sent.")
class Event(Node):
    """An event row; fields that take work to compute read the row when selected."""

    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(
        resolver=_id,
        description=(
            "Opaque global id. An id read before a merge moved the event to another user "
            "still finds it through node(id:); the event then answers an id naming its "
            "new user. Null once the user is deleted."
        ),
    )
    type: str = strawberry.field(
        description="Raw type: pageview, click, submit, change, or the custom/server event name."
    )
    time: datetime = strawberry.field(resolver=_time, description="When it happened.")
    source: EventSource = strawberry.field(resolver=_source, description="Where it came from.")
    server_side: bool = strawberry.field(description="True for server-side events.")
    properties: JSON = strawberry.field(
        description="path, domain, target_text, hierarchy, ... and custom properties."
    )

    @classmethod
    def from_row(cls, row: Any) -> Event:
        # The instance the dataclass __init__ makes (tests/graph/test_page_objects.py), without
        # its keyword handling: a page builds one per event, and __init__ took twice as long.
        event = _new(cls)
        event.__dict__.update(
            row=row, type=row.type, server_side=row.source == "SERVER", properties=row.properties
        )
        return event

    @strawberry.field(name="property", description="One property by name, or null.")
    def property_(self, name: str) -> JSON | None:
        return self.row.properties.get(name)

    async def _definitions(self, info: strawberry.Info[Context]) -> list[Any]:
        return await info.context.loaders.event_definitions.load((self.row.user_id, self.row.id))

    @strawberry.field(
        description="Display name: the best matching definition's name, else the raw name."
    )
    async def name(self, info: strawberry.Info[Context]) -> str:
        shown = await self._definitions(info)
        return shown[0].name if shown else self.row.type

    @strawberry.field(description="True when at least one definition matches the event.")
    async def defined(self, info: strawberry.Info[Context]) -> bool:
        return bool(await self._definitions(info))

    @strawberry.field(
        description="The definition whose name is shown (most conditions wins, ties: oldest)."
    )
    async def definition(self, info: strawberry.Info[Context]) -> EventDefinition | None:
        shown = await self._definitions(info)
        return EventDefinition.from_row(shown[0]) if shown else None

    @strawberry.field(description="Every definition matching the event, the shown one first.")
    async def definitions(self, info: strawberry.Info[Context]) -> list[EventDefinition]:
        return [EventDefinition.from_row(row) for row in await self._definitions(info)]

    @strawberry.field(description="Hex colour of `definition`, null for raw events.")
    async def color(self, info: strawberry.Info[Context]) -> str | None:
        shown = await self._definitions(info)
        return shown[0].color if shown else None

    @strawberry.field(
        description="True for a click in a burst of 3+ clicks on one element, each within 1 s."
    )
    async def is_rage_click(self, info: strawberry.Info[Context]) -> bool:
        if self.row.type != "click":
            return False
        return bool(await info.context.loaders.rage_click.load((self.row.user_id, self.row.id)))

    @strawberry.field(description="The session the event belongs to.")
    async def session(self, info: strawberry.Info[Context]) -> SessionType:
        row = await info.context.loaders.session.load((self.row.user_id, self.row.session_id))
        return info.context.build.session(row)  # type: ignore[no-any-return]

    @strawberry.field(description="The user who did it.")
    async def user(self, info: strawberry.Info[Context]) -> UserType:
        row = await info.context.loaders.user.load(self.row.user_id)
        return info.context.build.user(row)  # type: ignore[no-any-return]


def _cursor(self: EventEdge) -> str:
    return ids.encode("ec", self.node.row.time_us, self.node.row.id)


@strawberry.type(description="An event in a list.")
class EventEdge:
    node: Event = strawberry.field(description="The event.")
    cursor: str = strawberry.field(resolver=_cursor, description="Cursor of this position.")

    @classmethod
    def of(cls, node: Event) -> EventEdge:
        """`EventEdge(node=node)`, built as Event.from_row builds its event."""
        edge = _new(cls)
        edge.__dict__["node"] = node
        return edge


@strawberry.type(description="A page of events.")
class EventConnection:
    edges: list[EventEdge] = strawberry.field(description="The events of this page.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")
    total_count: int = strawberry.field(description="Number of events in the whole list.")
