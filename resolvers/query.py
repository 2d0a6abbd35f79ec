"""Read resolvers: look-ups by id, userId or identity, always inside the request's environment."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError

from graph import ids
from graph.common import Node
from graph.definition import EventDefinition
from graph.event import Event
from graph.segment import Segment
from graph.session import Session
from graph.user import User
from resolvers.context import Context
from resolvers.lists import named_user
from services import segments

Info = strawberry.Info[Context]


async def node(info: Info, id: strawberry.ID) -> Node | None:
    decoded = ids.decode(id)
    if decoded is None:
        return None
    kind, parts = decoded
    loaders = info.context.loaders
    row: Any
    if kind == "User" and len(parts) == 1:
        row = await loaders.user.load(parts[0])
        return User.from_row(row) if row is not None else None
    if kind == "Session" and len(parts) == 2:
        row = await loaders.session.load(parts)
        return Session.from_row(row) if row is not None else None
    if kind == "EventDefinition" and len(parts) == 1:
        row = await loaders.definition.load(parts[0])
        return EventDefinition.from_row(row) if row is not None else None
    if kind == "Segment" and len(parts) == 1:
        async with info.context.db.read() as conn:
            row = await segments.get(
                conn, environment_id=info.context.environment_id, segment_id=parts[0]
            )
        return Segment.from_row(row) if row is not None else None
    if kind == "Event" and len(parts) == 2:
        row = await loaders.event.load(parts)
        return Event.from_row(row) if row is not None else None
    return None


async def user(info: Info, user_id: str | None = None, identity: str | None = None) -> User | None:
    if (user_id is None) == (identity is None):
        raise GraphQLError(
            "give exactly one of `userId` or `identity`",
            extensions={"code": "BAD_USER_INPUT", "field": "userId"},
        )
    found = await named_user(info, user_id, identity)
    ctx = info.context
    if found is None:
        return None
    row = await ctx.loaders.user.load(found)
    return User.from_row(row) if row is not None else None
