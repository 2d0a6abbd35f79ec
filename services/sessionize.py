"""The session rules of SPEC §2 as a pure function of one user's events.

`sessionize` is the reference: the incremental sessionizer (services/sessionizer.py) feeds
it windows of a user's timeline, and tests compare stored sessions with it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from services.clock import MINUTE_US

CLIENT_SOURCES = ("WEB", "IOS", "ANDROID")
INACTIVITY_US = {"WEB": 30 * MINUTE_US, "IOS": 5 * MINUTE_US, "ANDROID": 5 * MINUTE_US}
SERVER_SESSION_US = 30 * MINUTE_US


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """What sessionization needs to know about an event."""

    id: int
    time_us: int
    source: str
    client_session_id: str | None = None
    replay: bool = False
    page: str | None = None  # see `event_page`
    page_view: bool = False  # a client pageview or screenview

    @property
    def order(self) -> tuple[int, int]:
        return (self.time_us, self.id)

    @property
    def client_key(self) -> tuple[str, str] | None:
        """(source, sessionId) for client events that carry a session id."""
        if self.source == "SERVER" or self.client_session_id is None:
            return None
        return (self.source, self.client_session_id)


@dataclass(slots=True)
class PlannedSession:
    """A session as the rules define it: its events, oldest first, and its window."""

    origin: str  # CLIENT | SERVER
    source: str
    client_session_id: str | None
    events: list[TimelineEvent] = field(default_factory=list)
    active_until_us: int = 0

    @property
    def start_us(self) -> int:
        return self.events[0].time_us

    @property
    def end_us(self) -> int:
        return self.events[-1].time_us

    @property
    def first_event(self) -> TimelineEvent:
        """The event whose traits the session shows: its first client event (or first event)."""
        for event in self.events:
            if event.source != "SERVER":
                return event
        return self.events[0]

    @property
    def replay_available(self) -> bool:
        return self.source == "WEB" and any(e.replay for e in self.events if e.source == "WEB")

    @property
    def pageview_count(self) -> int:
        """Client pageviews and screenviews in the session."""
        return sum(e.page_view for e in self.events)

    @property
    def entry_page(self) -> str | None:
        """Page of the first page view, else of the first client event that has one."""
        return _first_page(self.events)

    @property
    def exit_page(self) -> str | None:
        """Page of the last page view, else of the last client event that has one."""
        return _first_page(self.events[::-1])

    @property
    def event_ids(self) -> frozenset[int]:
        return frozenset(e.id for e in self.events)


PAGE_VIEWS = ("pageview", "screenview")
MAX_PAGE = 4096  # the sessions' entry/exit page columns hold at most this many characters


def event_page(kind: str, source: str, path: Any, name: Any) -> str | None:
    """The page of a client event: its `path` property, or a screenview's screen `name`."""
    if source == "SERVER":
        return None
    if isinstance(path, str) and path:
        return path[:MAX_PAGE]
    if kind == "screenview" and isinstance(name, str) and name:
        return name[:MAX_PAGE]
    return None


def is_page_view(kind: str, source: str) -> bool:
    """Whether an event counts as a page view: a client pageview or screenview."""
    return source != "SERVER" and kind in PAGE_VIEWS


def _first_page(events: Iterable[TimelineEvent]) -> str | None:
    fallback = None
    for event in events:
        if event.page is None:
            continue
        if event.page_view:
            return event.page
        if fallback is None:
            fallback = event.page
    return fallback


def sessionize(events: Iterable[TimelineEvent]) -> list[PlannedSession]:
    """All sessions of one user's events, ordered by (start, first event id)."""
    ordered = sorted(events, key=lambda e: e.order)
    client = _client_sessions(e for e in ordered if e.source != "SERVER")
    server_events = [e for e in ordered if e.source == "SERVER"]
    unassigned = _attach_server_events(client, server_events)
    sessions = client + _server_only_sessions(unassigned)
    for session in sessions:
        session.events.sort(key=lambda e: e.order)
    sessions.sort(key=lambda s: s.events[0].order)
    return sessions


def _client_sessions(events: Iterable[TimelineEvent]) -> list[PlannedSession]:
    by_key: dict[tuple[str, str], PlannedSession] = {}
    open_by_source: dict[str, PlannedSession] = {}
    sessions: list[PlannedSession] = []
    for event in events:  # oldest first
        timeout = INACTIVITY_US[event.source]
        key = event.client_key
        if key is not None:
            session = by_key.get(key)
            if session is None:
                session = by_key[key] = PlannedSession("CLIENT", event.source, key[1])
                sessions.append(session)
        else:
            session = open_by_source.get(event.source)
            if session is None or event.time_us - session.events[-1].time_us >= timeout:
                session = open_by_source[event.source] = PlannedSession(
                    "CLIENT", event.source, None
                )
                sessions.append(session)
        session.events.append(event)
        session.active_until_us = event.time_us + timeout
    sessions.sort(key=lambda s: s.events[0].order)
    return sessions


def _attach_server_events(
    client: list[PlannedSession], server_events: list[TimelineEvent]
) -> list[TimelineEvent]:
    """Put each server event in the latest-started client session whose window holds it.

    Sessions starting at the same instant are ordered by (source, client session id), not by
    event ids, so that the choice does not depend on the order events arrived in.
    """
    client.sort(key=lambda s: (s.start_us, s.source, s.client_session_id or ""))
    starts = [s.start_us for s in client]
    # reach[i]: the furthest window end among client[0..i], to stop the backward scan early.
    reach: list[int] = []
    for session in client:
        reach.append(max(session.active_until_us, reach[-1] if reach else 0))
    unassigned: list[TimelineEvent] = []
    for event in server_events:
        index = bisect.bisect_right(starts, event.time_us) - 1
        while index >= 0 and reach[index] > event.time_us:
            candidate = client[index]
            if candidate.active_until_us > event.time_us:
                candidate.events.append(event)
                break
            index -= 1
        else:
            unassigned.append(event)
    return unassigned


def _server_only_sessions(unassigned: list[TimelineEvent]) -> list[PlannedSession]:
    sessions: list[PlannedSession] = []
    current: PlannedSession | None = None
    for event in unassigned:  # oldest first
        if current is None or event.time_us >= current.active_until_us:
            current = PlannedSession(
                "SERVER", "SERVER", None, [], event.time_us + SERVER_SESSION_US
            )
            sessions.append(current)
        current.events.append(event)
    return sessions
