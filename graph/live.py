"""The live events subscription's filter and message."""

from __future__ import annotations

import strawberry

from graph.enums import EventSource
from graph.event import Event


@strawberry.input(
    description="Which stored events `liveEvents` streams; what is given is ANDed. "
    "At most one of userId / identity."
)
class LiveEventFilter:
    user_id: str | None = strawberry.field(
        default=None, description="Only this user's events (merges followed)."
    )
    identity: str | None = strawberry.field(
        default=None, description="Only the events of the user with this identity."
    )
    type: str | None = strawberry.field(
        default=None, description="Only events of this raw type (pageview, click, or a name)."
    )
    server_side: bool | None = strawberry.field(
        default=None, description="true: server-side events only; false: client events only."
    )
    sources: list[EventSource] | None = strawberry.field(
        default=None, description="Only events from these sources."
    )


@strawberry.type(description="One message of `liveEvents`: an event as it was stored.")
class LiveEvent:
    event: Event | None = strawberry.field(
        description="The stored event, with its session and user; null on a message that "
        "only reports dropped events."
    )
    dropped: int = strawberry.field(
        description="Events of this subscription left out just before this message because "
        "the client read too slowly (the server keeps a bounded queue per subscription): "
        "0 when none were."
    )
