"""The Session type and its connection."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from graph.common import Location, Node, PageInfo
from graph.definition import EventDefinition
from graph.enums import DeviceType, EventSource, SessionOrigin
from graph.event import Event, EventConnection, EventEdge
from graph.lookahead import selected_arguments
from graph.pagination import (
    Window,
    check_first,
    cut_rows,
    first_argument,
    given,
    last_argument,
    window,
)
from services import ids
from services.clock import to_datetime

if TYPE_CHECKING:
    from graph.context import Context

# The type above this module, named lazily and never imported (not even for type checkers):
# its module imports this one. Session.user builds it through Context.build.
UserType = Annotated["User", strawberry.lazy("graph.user")]  # type: ignore[name-defined]  # noqa: F821
EventConnectionType = Annotated["EventConnection", strawberry.lazy("graph.event")]
DefinitionType = Annotated["EventDefinition", strawberry.lazy("graph.definition")]
MAX_EVENTS_PAGE = 500


def _id(self: Session) -> strawberry.ID:
    return strawberry.ID(ids.encode("Session", self.row.user_id, self.row.id))


def _origin(self: Session) -> SessionOrigin:
    return SessionOrigin(self.row.origin)


def _source(self: Session) -> EventSource:
    return EventSource(self.row.source)


def _start_time(self: Session) -> datetime:
    return to_datetime(self.row.start_us)


def _end_time(self: Session) -> datetime:
    return to_datetime(self.row.end_us)


def _device_type(self: Session) -> DeviceType | None:
    return DeviceType(self.row.device_type) if self.row.device_type else None


def _location(self: Session) -> Location | None:
    return Location.of(self.row.country, self.row.region, self.row.city)


@strawberry.type(description="A visit: a user's events grouped by the session rules.")
class Session(Node):
    """A session row; fields that take work to compute read the row when selected."""

    row: strawberry.Private[Any]
    highlight: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(
        resolver=_id,
        description=(
            "Opaque global id, valid while the session exists: a session extended by new "
            "events keeps it, but a merge recomputes the merged user's sessions under new "
            "ids, and node(id:) of an id read before answers null (refetch through the "
            "user, or through an event's session)."
        ),
    )
    origin: SessionOrigin = strawberry.field(
        resolver=_origin,
        description="CLIENT, or SERVER for a session made only of server-side events.",
    )
    source: EventSource = strawberry.field(
        resolver=_source, description="WEB / IOS / ANDROID, or SERVER for a server-only session."
    )
    start_time: datetime = strawberry.field(
        resolver=_start_time, description="Time of the first event."
    )
    end_time: datetime = strawberry.field(resolver=_end_time, description="Time of the last event.")
    duration_seconds: int = strawberry.field(description="endTime - startTime, in seconds.")
    browser: str | None = strawberry.field(
        description='Browser and major version, e.g. "Chrome 131".'
    )
    platform: str | None = strawberry.field(
        description='Operating system, e.g. "Mac OS X 10.15", "iOS 17.2", "Android 14".'
    )
    device_type: DeviceType | None = strawberry.field(
        resolver=_device_type, description="Kind of device."
    )
    location: Location | None = strawberry.field(
        resolver=_location, description="Where the session happened."
    )
    landing_page: str | None = strawberry.field(description="URL of the first client event.")
    referrer: str | None = strawberry.field(description="Referrer of the first client event.")
    utm: JSON = strawberry.field(
        description="{source, medium, campaign, term, content} of the landing page."
    )
    replay_available: bool = strawberry.field(
        description="True for web sessions with recorded replay data."
    )
    event_count: int = strawberry.field(description="Number of events in the session.")
    entry_page: str | None = strawberry.field(
        description="Path of the session's first page view (a web pageview's path, a mobile "
        "screenview's screen name), else of its first client event that has a page; null for "
        "server-only sessions and sessions without a page."
    )
    exit_page: str | None = strawberry.field(
        description="Path of the session's last page view, else of its last client event that "
        "has a page; null for server-only sessions and sessions without a page."
    )
    pageview_count: int = strawberry.field(
        description="Number of page views in the session: web pageviews and mobile "
        "screenviews; 0 for server-only sessions."
    )

    @classmethod
    def from_row(cls, row: Any, *, highlight: Any = None) -> Session:
        """The session of a row; `highlight` is the EventMatch the enclosing query asked for."""
        return cls(
            row=row,
            highlight=highlight,
            duration_seconds=(row.end_us - row.start_us) // 1_000_000,
            browser=row.browser,
            platform=row.platform,
            landing_page=row.landing_page,
            referrer=row.referrer,
            utm=row.utm or {},
            replay_available=row.replay_available,
            event_count=row.event_count,
            entry_page=row.entry_page,
            exit_page=row.exit_page,
            pageview_count=row.pageview_count,
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

    @strawberry.field(
        description="The same user's session just before this one, in the order of the user's "
        "sessions (start time, then id); null for the user's first session."
    )
    async def previous_session(self, info: strawberry.Info[Context]) -> Session | None:
        previous, _ = await info.context.loaders.session_neighbours.load(
            (self.row.user_id, self.row.id)
        )
        return Session.from_row(previous, highlight=self.highlight) if previous else None

    @strawberry.field(
        description="The same user's session just after this one, in the order of the user's "
        "sessions (start time, then id); null for the user's latest session."
    )
    async def next_session(self, info: strawberry.Info[Context]) -> Session | None:
        _, following = await info.context.loaders.session_neighbours.load(
            (self.row.user_id, self.row.id)
        )
        return Session.from_row(following, highlight=self.highlight) if following else None

    @strawberry.field(description="The user the session belongs to.")
    async def user(self, info: strawberry.Info[Context]) -> UserType:
        row = await info.context.loaders.user.load(self.row.user_id)
        return info.context.build.user(row)  # type: ignore[no-any-return]

    @strawberry.field(
        description="The session's events, oldest first: `first`/`after` page forward, "
        "`last`/`before` backward."
    )
    def events(
        self,
        info: strawberry.Info[Context],
        first: Annotated[int | None, first_argument(MAX_EVENTS_PAGE)] = 100,
        after: str | None = None,
        last: Annotated[int | None, last_argument("events", MAX_EVENTS_PAGE)] = None,
        before: str | None = None,
    ) -> EventConnectionType:
        # Synchronous when the page is loaded already (wanted_events), else awaitable.
        asked = window(
            first,
            after,
            last,
            before,
            kind="ec",
            default=100,
            maximum=MAX_EVENTS_PAGE,
            first_given=lambda: given(info, "first"),
        )
        rows = info.context.loaders.event_page.load(
            ((self.row.user_id, self.row.id), asked.limit, asked.cursor, asked.backward)
        )
        if rows.done() and not rows.cancelled() and rows.exception() is None:
            return self._events(rows.result(), asked)
        return cast("EventConnection", self._events_later(rows, asked))

    async def _events_later(self, rows: Awaitable[list[Any]], asked: Window) -> EventConnection:
        return self._events(await rows, asked)

    def _events(self, rows: list[Any], asked: Window) -> EventConnection:
        shown, info = cut_rows(rows, asked, "ec", lambda r: (r.time_us, r.id))
        edge, event = EventEdge.of, Event.from_row
        return EventConnection(
            edges=[edge(event(row)) for row in shown],
            page_info=info,
            total_count=self.row.event_count,
        )


def wanted_events(info: strawberry.Info[Context], path: str) -> tuple[int, Any, bool] | None:
    """(limit, cursor, backward) of the events page the query asks of every session at `path`
    ("edges.node" below the current field), for the loader to read with the sessions; None when
    unsure.

    Only a plain selection is read (graph/lookahead.py), with valid arguments the same for
    every session: `Session.events` then finds each page loaded and completes at once.
    """
    wanted = selected_arguments(info, (*path.split("."), "events"))
    if not wanted or any(arguments != wanted[0] for arguments in wanted):
        return None
    arguments = wanted[0]

    def number(name: str) -> int | None:
        value = arguments.get(name)
        return int(value) if isinstance(value, str) else value

    try:
        asked = window(
            number("first"),
            arguments.get("after"),
            number("last"),
            arguments.get("before"),
            kind="ec",
            default=100,
            maximum=MAX_EVENTS_PAGE,
            first_given=arguments.get("first") is not None,
        )
    except (GraphQLError, TypeError, ValueError):
        return None
    return asked.limit, asked.cursor, asked.backward


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
