"""Read resolvers: look-ups by id, userId or identity, always inside the request's environment.

Ids survive merges (graph/user.py, graph/event.py say what each id promises): a user merged
into another answers the surviving user, and an event moved by a merge is found through the
merged user's userId alias (services/identity.merge re-points it at the survivor).
"""

from __future__ import annotations

import functools
from typing import Any

import strawberry
from graphql import GraphQLError

from graph.common import Node
from graph.context import Context
from graph.definition import EventDefinition
from graph.event import Event
from graph.segment import Segment
from graph.session import Session
from graph.user import User
from services import ids, limits, segments
from services.errors import UsertrailError
from services.identity import UserKey

Info = strawberry.Info[Context]


async def node(info: Info, id: strawberry.ID) -> Node | None:
    decoded = ids.decode(id)
    if decoded is None:
        return None
    kind, parts = decoded
    loaders = info.context.loaders
    row: Any
    if kind == "User" and len(parts) == 1:
        row = await loaders.user_by_key.load(_user_id_key(parts[0]))
        return User.from_row(row) if row is not None else None
    if kind == "Session" and len(parts) == 2:
        # A merge recomputes the merged user's sessions under new ids: no routing here, an
        # old id answers null (the schema says so).
        row = await loaders.session.load(parts)
        return Session.from_row(row) if row is not None else None
    if kind == "EventDefinition" and len(parts) == 1:
        row = await loaders.definition.load(parts[0])
        return EventDefinition.from_row(row) if row is not None else None
    if kind == "Segment" and len(parts) == 1:
        row = await loaders.read(functools.partial(segments.get, segment_id=parts[0]))
        return Segment.from_row(row) if row is not None else None
    if kind == "Event" and len(parts) == 2:
        row = await loaders.event.load(parts)
        if row is None:  # moved by a merge? then its user's id routes to where it went
            owner = await loaders.user_by_key.load(_user_id_key(parts[0]))
            if owner is not None and owner.user_id != parts[0]:
                row = await loaders.event.load((owner.user_id, parts[1]))
        return Event.from_row(row) if row is not None else None
    return None


def _user_id_key(user_id: int) -> UserKey:
    return UserKey("user_id", str(user_id))


async def user(info: Info, user_id: str | None = None, identity: str | None = None) -> User | None:
    if (user_id is None) == (identity is None):
        raise GraphQLError(
            "give exactly one of `userId` or `identity`",
            extensions={"code": "BAD_USER_INPUT", "field": "userId"},
        )
    try:
        key = (
            UserKey("user_id", str(limits.user_id(user_id)))
            if user_id is not None
            else UserKey("identity", limits.storable(str(identity), "identity"))
        )
    except UsertrailError as error:
        raise GraphQLError(
            f"{error.field}: {error.message}",
            extensions={"code": error.code, "field": error.field},
        ) from None
    row = await info.context.loaders.user_by_key.load(key)
    return User.from_row(row) if row is not None else None
