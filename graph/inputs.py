"""Inputs of the ingestion mutations."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from graph import input_conversion
from graph.enums import EventSource
from graph.scalars import CHECKED_PER_ITEM
from services.limits import MAX_EVENT_PROPERTIES, MAX_USER_PROPERTIES, MAX_USER_PROPERTY_BYTES


@strawberry.input(description="Where an event happened, as the caller knows it.")
class EventContext:
    user_agent: str | None = strawberry.field(default=None, description="The user agent string.")
    ip: str | None = strawberry.field(default=None, description="Client IP address.")
    url: str | None = strawberry.field(
        default=None, description="Full page URL: domain, path, query, hash derive from it."
    )
    referrer: str | None = strawberry.field(default=None, description="Referrer URL.")
    title: str | None = strawberry.field(default=None, description="Page title.")
    screen_width: int | None = strawberry.field(default=None, description="Screen width (px).")
    screen_height: int | None = strawberry.field(default=None, description="Screen height (px).")
    library: str | None = strawberry.field(
        default=None, description='Sending library, e.g. "web", "ios", "android", "server".'
    )
    app_name: str | None = strawberry.field(default=None, description="Mobile app name.")
    app_version: str | None = strawberry.field(default=None, description="Mobile app version.")
    location: JSON | None = strawberry.field(
        default=None, description="{country, region, city} when the caller knows it."
    )


@strawberry.input(
    description="One event. Exactly one of userId / identity identifies the user, "
    "except that a client SDK may send both (then it is also an identify call)."
)
class TrackInput:
    event: str = strawberry.field(description="Raw type or custom event name, 1..1024 chars.")
    user_id: str | None = strawberry.field(default=None, description="Numeric user id.")
    identity: str | None = strawberry.field(default=None, description="The user's identity.")
    session_id: str | None = strawberry.field(
        default=None, description="Client session id; absent = sessionize by inactivity."
    )
    source: EventSource | None = strawberry.field(
        default=EventSource.SERVER, description="Where the event comes from."
    )
    timestamp: datetime | None = strawberry.field(
        default=None,
        description="When it happened, ISO 8601 / RFC 3339 (`2026-03-02T10:00:00Z`, "
        "`2026-03-02T12:00:00+02:00`); without an offset: UTC. Default: the time received. "
        "An unreadable timestamp, one before 2000 or more than a day ahead refuses this event "
        "alone (INVALID_TIMESTAMP); the others are stored.",
        metadata=CHECKED_PER_ITEM,
    )
    properties: JSON | None = strawberry.field(
        default=None,
        description=f"Event properties (flat), at most {MAX_EVENT_PROPERTIES} "
        "(TOO_MANY_PROPERTIES).",
    )
    context: EventContext | None = strawberry.field(
        default=None, description="Page, device, location."
    )
    idempotency_key: str | None = strawberry.field(
        default=None, description="The same key twice stores one event."
    )


@strawberry.input(description="Attach an identity to an anonymous user.")
class IdentifyInput:
    user_id: str = strawberry.field(description="The anonymous user's id.")
    identity: str = strawberry.field(description="The identity to give it.")
    timestamp: datetime | None = strawberry.field(
        default=None,
        description="When it happened, ISO 8601 / RFC 3339; without an offset: UTC. An "
        "unreadable one is refused as INVALID_TIMESTAMP in `errors`.",
        metadata=CHECKED_PER_ITEM,
    )


@strawberry.input(description="Properties for one user, named by identity or userId.")
class UserPropertiesInput:
    identity: str | None = strawberry.field(default=None, description="The user's identity.")
    user_id: str | None = strawberry.field(default=None, description="The user's id.")
    properties: JSON = strawberry.field(
        description="Properties to set (overwrite per key). A user holds at most "
        f"{MAX_USER_PROPERTIES} custom properties and {MAX_USER_PROPERTY_BYTES // 1024} KiB of "
        "them as JSON; a call that would add more is refused "
        "(TOO_MANY_PROPERTIES). In a merge the identified user's properties are kept, then "
        "the other's in name order while they fit."
    )


# Converted with a cached plan rather than Strawberry's per-field type dispatch
# (graph/input_conversion.py): a 500-event trackBatch converts in a few milliseconds.
input_conversion.install(EventContext, TrackInput, IdentifyInput, UserPropertiesInput)
