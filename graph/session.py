"""The Session type and its connection."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from graph import ids
from graph.common import Location, Node, PageInfo
from graph.enums import DeviceType, EventSource, SessionOrigin
from graph.pagination import check_first, cut, page_info, read_cursor
from services.clock import to_datetime

if TYPE_CHECKING:
    from graph.definition import EventDefinition
    from graph.event import EventConnection
    from graph.user import User
    from resolvers.context import Context

UserType = Annotated["User", strawberry.lazy("graph.user")]
EventConnectionType = Annotated["EventConnection", strawberry.lazy("graph.event")]
DefinitionType = Annotated["EventDefinition", strawberry.lazy("graph.definition")]
MAX_EVENTS_PAGE = 500


@strawberry.type(description="A visit: a user's events grouped by the session rules.")
class Session(Node):
    row: strawberry.Private[Any]
    highlight: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id.")
    origin: SessionOrigin = strawberry.field(
        description="CLIENT, or SERVER for a session made only of server-side events."
    )
    source: EventSource = strawberry.field(
        description="WEB / IOS / ANDROID, or SERVER for a server-only session."
    )
    start_time: datetime = strawberry.field(description="Time of the first event.")
    end_time: datetime = strawberry.field(description="Time of the last event.")
    duration_seconds: int = strawberry.field(description="endTime - startTime, in seconds.")
    browser: str | None = strawberry.field(
        description='Browser and major version, e.g. "Chrome 131".'
    )
    platform: str | None = strawberry.field(
        description='Operating system, e.g. "Mac OS X 10.15", "iOS 17.2", "Android 14".'
    )
    device_type: DeviceType | None = strawberry.field(description="Kind of device.")
    location: Location | None = strawberry.field(description="Where the session happened.")
    landing_page: str | None = strawberry.field(description="URL of the first client event.")
    referrer: str | None = strawberry.field(description="Referrer of the first client event.")
    utm: JSON = strawberry.field(
        description="{source, medium, campaign, term, content} of the landing page."
    )
    replay_available: bool = strawberry.field(
        description="True for web sessions with recorded replay data."
    )
    event_count: int = strawberry.field(description="Number of events in the session.")

    @classmethod
    def from_row(cls, row: Any, *, highlight: Any = None) -> Session:
        """The session of a row; `highlight` is the EventMatch the enclosing query asked for."""
        return cls(
            row=row,
            highlight=highlight,
            id=strawberry.ID(ids.encode("Session", row.user_id, row.id)),
            origin=SessionOrigin(row.origin),
            source=EventSource(row.source),
            start_time=to_datetime(row.start_us),
            end_time=to_datetime(row.end_us),
            duration_seconds=(row.end_us - row.start_us) // 1_000_000,
            browser=row.browser,
            platform=row.platform,
            device_type=DeviceType(row.device_type) if row.device_type else None,
            location=Location.of(row.country, row.region, row.city),
            landing_page=row.landing_page,
            referrer=row.referrer,
            utm=row.utm or {},
            replay_available=row.replay_available,
            event_count=row.event_count,
        )

    @strawberry.field(
        description="True when the enclosing query asked to highlight an event this session "
        "contains."
    )
    async def highlighted(self, info: strawberry.Info[Context]) -> bool:
        if self.highlight is None:
            return False
        key = ((self.row.user_id, self.row.id), self.highlight)
        return bool(await info.context.loaders.highlighted.load(key))

    @strawberry.field(description="The session's most frequent events, most frequent first.")
    async def most_frequent_events(
        self, info: strawberry.Info[Context], limit: int | None = 5
    ) -> list[EventFrequency]:
        from graph.definition import EventDefinition

        shown = check_first(limit, default=5, maximum=100, argument="limit")
        loaders = info.context.loaders
        groups = await loaders.event_type_counts.load((self.row.user_id, self.row.id))
        wanted = sorted({d for _, d, _ in groups if d is not None})
        rows = dict(zip(wanted, await loaders.definition.load_many(wanted), strict=True))
        named: dict[str, tuple[Any, int]] = {}
        for kind, definition_id, count in groups:
            row = rows.get(definition_id) if definition_id is not None else None
            name = row.name if row is not None else kind
            previous, total = named.get(name, (row, 0))
            named[name] = (previous or row, total + count)
        ranked = sorted(named.items(), key=lambda item: (-item[1][1], item[0]))[:shown]
        return [
            EventFrequency(
                name=name,
                definition=EventDefinition.from_row(row) if row is not None else None,
                count=count,
            )
            for name, (row, count) in ranked
        ]

    @strawberry.field(description="True when one of its events is a rage click.")
    async def has_rage_click(self, info: strawberry.Info[Context]) -> bool:
        key = (self.row.user_id, self.row.id)
        return bool(await info.context.loaders.session_has_rage_click.load(key))

    @strawberry.field(description="The user the session belongs to.")
    async def user(self, info: strawberry.Info[Context]) -> UserType:
        from graph.user import User

        return User.from_row(await info.context.loaders.user.load(self.row.user_id))

    @strawberry.field(description="The session's events, oldest first.")
    async def events(
        self, info: strawberry.Info[Context], first: int | None = 100, after: str | None = None
    ) -> EventConnectionType:
        from graph.event import Event, EventConnection, EventEdge

        first = check_first(first, default=100, maximum=MAX_EVENTS_PAGE)
        cursor = read_cursor(after, "ec")
        rows = await info.context.loaders.event_page.load(
            ((self.row.user_id, self.row.id), first + 1, cursor)
        )
        shown, has_next, end = cut(rows, first, "ec", lambda r: (r.time_us, r.id))
        return EventConnection(
            edges=[EventEdge(node=Event.from_row(row), cursor=c) for row, c in shown],
            page_info=page_info(has_next, end),
            total_count=self.row.event_count,
        )


@strawberry.type(description="How often an event occurs in a session.")
class EventFrequency:
    name: str = strawberry.field(description="Display name (defined event name, else raw name).")
    definition: DefinitionType | None = strawberry.field(
        description="The defined event counted, null for raw events."
    )
    count: int = strawberry.field(description="Occurrences in the session.")


@strawberry.type(description="A session in a list.")
class SessionEdge:
    node: Session = strawberry.field(description="The session.")
    cursor: str = strawberry.field(description="Cursor of this position.")


@strawberry.type(description="A page of sessions.")
class SessionConnection:
    edges: list[SessionEdge] = strawberry.field(description="The sessions of this page.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")
    total_count: int = strawberry.field(description="Number of sessions in the whole list.")
