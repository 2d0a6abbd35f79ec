"""The `liveEvents` subscription: the request's environment's events as they are stored.

The events come from the process's LiveHub (services/live.py); each message's nested
fields (session, user) read through loaders of their own, so they show the rows as they are
when the message is sent.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from graphql import GraphQLError

from graph.context import Context
from graph.enums import EventSource
from graph.event import Event
from graph.live import LiveEvent, LiveEventFilter
from graph.loaders import Loaders
from services import limits
from services.errors import UsertrailError
from services.identity import UserKey
from services.live import Closed, LiveFilter

Info = strawberry.Info[Context]
SERVER = frozenset({EventSource.SERVER.value})
CLIENT = frozenset(s.value for s in EventSource) - SERVER


async def live_events(
    info: Info, filter: LiveEventFilter | None = None
) -> AsyncGenerator[LiveEvent, None]:
    """Stream events as they are stored, with a count of any dropped for a slow client."""
    context = info.context
    hub = context.live
    if hub is None:
        raise GraphQLError(
            "live events need the server's live hub; subscribe over WebSocket to /graphql",
            extensions={"code": "UNAVAILABLE"},
        )
    wanted = live_filter(filter or LiveEventFilter())
    subscription = hub.subscribe(context.environment_id, wanted)
    try:
        while True:
            try:
                row, dropped = await subscription.next()
            except Closed:
                return  # the stream completes
            # Fresh loaders per message: a connection lives for hours, its rows change.
            context.loaders = Loaders(context.db, context.environment_id)
            yield LiveEvent(event=Event.from_row(row) if row is not None else None, dropped=dropped)
    finally:
        hub.unsubscribe(subscription)


def live_filter(given: LiveEventFilter) -> LiveFilter:
    """The filter as the hub applies it; a GraphQLError naming the field for bad input."""
    if given.user_id is not None and given.identity is not None:
        raise _bad("userId", "give at most one of `userId` or `identity`")
    try:
        user = None
        if given.user_id is not None:
            user = UserKey("user_id", str(limits.user_id(given.user_id)))
        elif given.identity is not None:
            user = UserKey("identity", limits.storable(str(given.identity), "identity"))
    except UsertrailError as error:
        raise _bad(error.field or "filter", f"{error.field}: {error.message}", error.code) from None
    sources = None
    if given.sources is not None:
        sources = frozenset(s.value for s in given.sources)
    if given.server_side is not None:
        side = SERVER if given.server_side else CLIENT
        sources = side if sources is None else sources & side
    return LiveFilter(user=user, type=given.type, sources=sources)


def _bad(field: str, message: str, code: str = "BAD_USER_INPUT") -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, "field": field})
