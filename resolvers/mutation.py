"""Ingestion mutations and erasing a user: GraphQL inputs to service calls, errors to UserErrors."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from graph.common import UserError
from graph.context import Context
from graph.enums import EventSource
from graph.event import Event
from graph.inputs import EventContext, IdentifyInput, TrackInput, UserPropertiesInput
from graph.payloads import (
    DeletePayload,
    IdentifyPayload,
    MergeUsersPayload,
    TrackPayload,
    UserPropertiesPayload,
)
from graph.user import User
from services import ids, ingest
from services import users as user_service
from services.errors import Problem, UsertrailError

Info = strawberry.Info[Context]


def _context(value: EventContext | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "userAgent": value.user_agent,
        "ip": value.ip,
        "url": value.url,
        "referrer": value.referrer,
        "title": value.title,
        "screenWidth": value.screen_width,
        "screenHeight": value.screen_height,
        "library": value.library,
        "appName": value.app_name,
        "appVersion": value.app_version,
        "location": value.location,
    }


def _track_item(value: TrackInput) -> ingest.TrackItem:
    return ingest.TrackItem(
        event=value.event,
        user_id=value.user_id,
        identity=value.identity,
        session_id=value.session_id,
        source=(value.source or EventSource.SERVER).value,
        timestamp=value.timestamp,
        properties=value.properties,
        context=_context(value.context),
        idempotency_key=value.idempotency_key,
    )


def _single(problems: list[Problem]) -> list[UserError]:
    """Errors of a one-item call carry no batch index."""
    return UserError.many(p.at(None) for p in problems)


def _refused(error: UsertrailError) -> TrackPayload:
    return TrackPayload(accepted=0, duplicates=0, errors=[UserError.from_problem(error.problem)])


async def track(info: Info, input: TrackInput) -> TrackPayload:
    ctx = info.context
    try:
        outcome = await ingest.track(
            ctx.db,
            environment_id=ctx.environment_id,
            items=[_track_item(input)],
            field_name="input",
            sender=ctx.sender,
        )
    except UsertrailError as error:
        return _refused(error)
    event = None
    if 0 in outcome.stored:
        row = await ctx.loaders.event.load(outcome.stored[0])
        event = Event.from_row(row) if row is not None else None
    return TrackPayload(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        errors=_single(outcome.problems),
        event=event,
    )


async def track_batch(info: Info, events: list[TrackInput]) -> TrackPayload:
    ctx = info.context
    try:
        outcome = await ingest.track(
            ctx.db,
            environment_id=ctx.environment_id,
            items=[_track_item(e) for e in events],
            sender=ctx.sender,
        )
    except UsertrailError as error:
        return _refused(error)
    return TrackPayload(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        errors=UserError.many(outcome.problems),
    )


async def identify(info: Info, input: IdentifyInput) -> IdentifyPayload:
    ctx = info.context
    try:
        done = await ingest.identify(
            ctx.db,
            environment_id=ctx.environment_id,
            user_id=input.user_id,
            identity=input.identity,
            timestamp=input.timestamp,
        )
    except UsertrailError as error:
        return IdentifyPayload(
            user=None, merged=False, errors=[UserError.from_problem(error.problem)]
        )
    row = await ctx.loaders.user.load(done.user_id)
    return IdentifyPayload(user=User.from_row(row), merged=done.merged, errors=[])


def _properties_item(value: UserPropertiesInput) -> ingest.UserPropertiesItem:
    return ingest.UserPropertiesItem(
        properties=value.properties, user_id=value.user_id, identity=value.identity
    )


async def add_user_properties(info: Info, input: UserPropertiesInput) -> UserPropertiesPayload:
    ctx = info.context
    try:
        outcome = await ingest.add_user_properties(
            ctx.db,
            environment_id=ctx.environment_id,
            items=[_properties_item(input)],
            field_name="input",
        )
    except UsertrailError as error:
        return UserPropertiesPayload(user=None, errors=[UserError.from_problem(error.problem)])
    if 0 not in outcome.users:
        return UserPropertiesPayload(user=None, errors=_single(outcome.problems))
    row = await ctx.loaders.user.load(outcome.users[0])
    return UserPropertiesPayload(user=User.from_row(row), errors=[])


async def add_user_properties_batch(info: Info, users: list[UserPropertiesInput]) -> TrackPayload:
    ctx = info.context
    try:
        outcome = await ingest.add_user_properties(
            ctx.db, environment_id=ctx.environment_id, items=[_properties_item(u) for u in users]
        )
    except UsertrailError as error:
        return _refused(error)
    return TrackPayload(
        accepted=outcome.accepted, duplicates=0, errors=UserError.many(outcome.problems)
    )


async def delete_user(
    info: Info,
    user_id: str | None = None,
    identity_value: Annotated[str | None, strawberry.argument(name="identity")] = None,
) -> DeletePayload:
    """Erase a user with its aliases, sessions and events, in one transaction."""
    ctx = info.context
    if (user_id is None) == (identity_value is None):
        return DeletePayload(
            deleted_id=None,
            errors=[
                UserError(
                    index=None,
                    field="userId",
                    message="give exactly one of userId or identity",
                    code="INVALID_INPUT",
                )
            ],
        )
    try:
        deleted = await user_service.delete_user(
            ctx.db, environment_id=ctx.environment_id, user_id=user_id, identity=identity_value
        )
    except UsertrailError as error:
        return DeletePayload(deleted_id=None, errors=[UserError.from_problem(error.problem)])
    return DeletePayload(deleted_id=strawberry.ID(ids.encode("User", deleted)), errors=[])


async def merge_users(
    info: Info,
    into: strawberry.ID,
    from_: Annotated[strawberry.ID, strawberry.argument(name="from")],
) -> MergeUsersPayload:
    """Merge one user into another by hand, as identify merges an anonymous user."""
    ctx = info.context
    try:
        done = await user_service.merge_users(
            ctx.db, environment_id=ctx.environment_id, into=into, from_=from_
        )
    except UsertrailError as error:
        return MergeUsersPayload(
            user=None, merged=False, errors=[UserError.from_problem(error.problem)]
        )
    row = await ctx.loaders.user.load(done.user_id)
    return MergeUsersPayload(user=User.from_row(row), merged=done.merged, errors=[])
