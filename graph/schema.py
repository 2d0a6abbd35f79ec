"""Schema assembly: the Query and Mutation roots and the request-safety extensions."""

from __future__ import annotations

import strawberry

from graph import input_conversion
from graph.common import Node
from graph.context import Builders
from graph.definition import EventDefinition, EventDefinitionPayload
from graph.event import Event
from graph.execution import FastExecutor
from graph.extensions import extensions_for
from graph.live import LiveEvent
from graph.payloads import (
    DeletePayload,
    EventName,
    IdentifyPayload,
    MergeUsersPayload,
    TrackPayload,
    UserPropertiesPayload,
)
from graph.scalars import SCALAR_OVERRIDES
from graph.segment import Segment, SegmentPayload
from graph.session import Session, SessionConnection
from graph.user import User, UserConnection
from resolvers import definitions, lists, live, mutation, query, segments

# The types that fields of the types below them return (graph/context.Builders).
BUILDERS = Builders(session=Session.from_row, user=User.from_row)


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
    event_definitions: list[EventDefinition] = strawberry.field(
        resolver=definitions.event_definitions, description="Defined events, oldest first."
    )
    segments: list[Segment] = strawberry.field(
        resolver=segments.list_segments, description="Saved segments, oldest first."
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
        resolver=mutation.delete_user,
        description="Erase a user, its aliases, sessions and events (GDPR).",
    )
    merge_users: MergeUsersPayload = strawberry.mutation(
        resolver=mutation.merge_users,
        description="Merge the user `from` into `into` (admin), as identify merges: sessions "
        "recomputed, events, definitions, rage clicks and static-segment memberships kept, "
        "`from`'s userId routing to `into`. Merging again answers the survivor (merged false).",
    )
    define_event: EventDefinitionPayload = strawberry.mutation(
        resolver=definitions.define_event,
        description="Define an event; it applies to every stored and future event.",
    )
    update_event_definition: EventDefinitionPayload = strawberry.mutation(
        resolver=definitions.update_event_definition,
        description="Change a definition; matches are recomputed at once.",
    )
    delete_event_definition: DeletePayload = strawberry.mutation(
        resolver=definitions.delete_event_definition,
        description="Delete a definition and its matches.",
    )
    create_segment: SegmentPayload = strawberry.mutation(
        resolver=segments.create_segment, description="Save a segment."
    )
    create_static_segment: SegmentPayload = strawberry.mutation(
        resolver=segments.create_static_segment,
        description="Save a STATIC segment: a fixed list of users (a filter's members now, ids).",
    )
    add_segment_members: SegmentPayload = strawberry.mutation(
        resolver=segments.add_segment_members,
        description="List users in a static segment (User ids or userIds; listed ones ignored).",
    )
    remove_segment_members: SegmentPayload = strawberry.mutation(
        resolver=segments.remove_segment_members,
        description="Unlist users from a static segment (unlisted ones ignored).",
    )
    update_segment: SegmentPayload = strawberry.mutation(
        resolver=segments.update_segment, description="Change a segment."
    )
    delete_segment: DeletePayload = strawberry.mutation(
        resolver=segments.delete_segment,
        description="Delete a segment that no other segment uses.",
    )


@strawberry.type(description="Streams, over WebSocket (graphql-transport-ws).")
class Subscription:
    live_events: LiveEvent = strawberry.subscription(
        resolver=live.live_events,
        description="The environment's events as they are stored (filter: optional).",
    )


def build(*, dev: bool, fast_paths: bool = True) -> strawberry.Schema:
    """The schema with the request-safety extensions of graph/extensions.py.

    `fast_paths` (USERTRAIL_FAST_PATHS): plain fields resolve inline (graph/execution.py) and
    input objects are built along a plan (graph/input_conversion.py): the same results, a
    fraction of the cost. Off: Strawberry's and graphql-core's own execution and conversion.
    """
    input_conversion.enable(fast_paths)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[User, Session, Event, Segment, EventDefinition],
        extensions=extensions_for(dev=dev),
        execution_context_class=FastExecutor if fast_paths else None,
        scalar_overrides=SCALAR_OVERRIDES,
    )


schema = build(dev=True)
