"""Schema assembly: the Query and Mutation roots and the request-safety extensions."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)

from graph.common import Node
from graph.event import Event
from graph.payloads import IdentifyPayload, TrackPayload, UserPropertiesPayload
from graph.session import Session
from graph.user import User
from graph.payloads import DeletePayload, EventName
from graph.session import SessionConnection
from graph.user import UserConnection
from resolvers import lists, mutation, query


@strawberry.type(description="Reading users, sessions and events.")
class Query:
    node: Node | None = strawberry.field(
        resolver=query.node, description="Any object by its global id."
    )
    user: User | None = strawberry.field(
        resolver=query.user, description="One user by userId or identity."
    )
    users: UserConnection = strawberry.field(
        resolver=lists.users, description="Users, newest activity first (default: last 7 days)."
    )
    sessions: SessionConnection = strawberry.field(
        resolver=lists.sessions, description="The Sessions page: newest first (default: 7 days)."
    )
    event_names: list[EventName] = strawberry.field(
        resolver=lists.event_names, description="Every raw event type seen, for drop-downs."
    )


@strawberry.type(description="Sending events and user data.")
class Mutation:
    track: TrackPayload = strawberry.mutation(
        resolver=mutation.track, description="Store one event."
    )
    track_batch: TrackPayload = strawberry.mutation(
        resolver=mutation.track_batch, description="Store up to 1000 events."
    )
    identify: IdentifyPayload = strawberry.mutation(
        resolver=mutation.identify, description="Attach an identity to an anonymous user."
    )
    add_user_properties: UserPropertiesPayload = strawberry.mutation(
        resolver=mutation.add_user_properties, description="Set properties of one user."
    )
    add_user_properties_batch: TrackPayload = strawberry.mutation(
        resolver=mutation.add_user_properties_batch,
        description="Set properties of up to 1000 users.",
    )
    delete_user: DeletePayload = strawberry.mutation(
        resolver=lists.delete_user,
        description="Erase a user, its aliases, sessions and events (GDPR).",
    )


def is_unexpected(error: GraphQLError) -> bool:
    """Mask only errors raised by bugs; validation, limit and input errors stay readable."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def build(*, dev: bool) -> strawberry.Schema:
    """The schema, with limits on depth, aliases and tokens; errors masked outside dev mode."""
    extensions = [
        lambda: QueryDepthLimiter(max_depth=12),
        lambda: MaxAliasesLimiter(max_alias_count=30),
        lambda: MaxTokensLimiter(max_token_count=5000),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    if not dev:
        extensions.append(lambda: MaskErrors(should_mask_error=is_unexpected))
    return strawberry.Schema(
        query=Query, mutation=Mutation, types=[User, Session, Event], extensions=extensions
    )


schema = build(dev=True)
