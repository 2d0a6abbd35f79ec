"""Payloads of the ingestion mutations."""

from __future__ import annotations

import strawberry

from graph.common import UserError
from graph.event import Event
from graph.user import User


@strawberry.type(description="Result of track / trackBatch / addUserPropertiesBatch.")
class TrackPayload:
    accepted: int = strawberry.field(description="Items stored.")
    duplicates: int = strawberry.field(description="Items skipped as already seen.")
    errors: list[UserError] = strawberry.field(description="Items refused, with reasons.")
    event: Event | None = strawberry.field(
        default=None,
        description="The stored event (single track only); an ingest key may select its id only.",
    )


@strawberry.type(description="Result of identify.")
class IdentifyPayload:
    user: User | None = strawberry.field(
        description="The identified user; an ingest key may select its id and userId only."
    )
    merged: bool = strawberry.field(
        description="True when the anonymous user was merged into an identified one."
    )
    errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.type(description="Result of addUserProperties.")
class UserPropertiesPayload:
    user: User | None = strawberry.field(
        description="The updated user; an ingest key may select its id and userId only."
    )
    errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.type(description="An event type for filter drop-downs.")
class EventName:
    type: str = strawberry.field(description="Raw event type.")
    server_side: bool = strawberry.field(description="True for server-side events.")
    count: int = strawberry.field(description="How many such events (in the range).")


@strawberry.type(description="Result of a delete.")
class DeletePayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        description="Global id of what was deleted."
    )
    errors: list[UserError] = strawberry.field(description="Why nothing was deleted, if so.")


@strawberry.type(description="Result of mergeUsers.")
class MergeUsersPayload:
    user: User | None = strawberry.field(description="The surviving user (`into`).")
    merged: bool = strawberry.field(
        description="True when this call merged; false when both ids named one user already."
    )
    errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")
