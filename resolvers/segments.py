"""Segment queries and mutations (graph/named_segments.py resolves the segments a filter names)."""

from __future__ import annotations

import strawberry

from graph.arguments import node_id, user_filter
from graph.common import UserError
from graph.context import Context
from graph.payloads import DeletePayload
from graph.segment import Segment, SegmentInput, SegmentPayload, StaticSegmentInput
from services import segments, static_segments
from services.errors import InvalidItems, UsertrailError

Info = strawberry.Info[Context]


async def list_segments(info: Info) -> list[Segment]:
    async with info.context.db.read() as conn:
        rows = await segments.list_(conn, environment_id=info.context.environment_id)
    return [Segment.from_row(row) for row in rows]


def _error(error: UsertrailError) -> SegmentPayload:
    problems = error.problems if isinstance(error, InvalidItems) else [error.problem]
    return SegmentPayload(segment=None, errors=UserError.many(problems))


async def create_segment(info: Info, input: SegmentInput) -> SegmentPayload:
    ctx = info.context
    try:
        wanted = user_filter(input.filter, "input.filter")
        row = await segments.create(
            ctx.db,
            environment_id=ctx.environment_id,
            name=input.name,
            description=input.description,
            user_filter=wanted,
        )
    except UsertrailError as error:
        return _error(error)
    return SegmentPayload(segment=Segment.from_row(row), errors=[])


async def create_static_segment(info: Info, input: StaticSegmentInput) -> SegmentPayload:
    ctx = info.context
    try:
        wanted = user_filter(input.filter, "input.filter") if input.filter is not None else None
        row = await static_segments.create(
            ctx.db,
            environment_id=ctx.environment_id,
            name=input.name,
            description=input.description,
            user_filter=wanted,
            user_ids=input.user_ids,
        )
    except UsertrailError as error:
        return _error(error)
    return SegmentPayload(segment=Segment.from_row(row), errors=[])


async def add_segment_members(
    info: Info, id: strawberry.ID, user_ids: list[strawberry.ID]
) -> SegmentPayload:
    ctx = info.context
    try:
        row = await static_segments.add_members(
            ctx.db, environment_id=ctx.environment_id, segment_id=_segment_id(id), user_ids=user_ids
        )
    except UsertrailError as error:
        return _error(error)
    return SegmentPayload(segment=Segment.from_row(row), errors=[])


async def remove_segment_members(
    info: Info, id: strawberry.ID, user_ids: list[strawberry.ID]
) -> SegmentPayload:
    ctx = info.context
    try:
        row = await static_segments.remove_members(
            ctx.db, environment_id=ctx.environment_id, segment_id=_segment_id(id), user_ids=user_ids
        )
    except UsertrailError as error:
        return _error(error)
    return SegmentPayload(segment=Segment.from_row(row), errors=[])


async def update_segment(info: Info, id: strawberry.ID, input: SegmentInput) -> SegmentPayload:
    ctx = info.context
    try:
        segment_id = _segment_id(id)
        wanted = user_filter(input.filter, "input.filter")
        row = await segments.update(
            ctx.db,
            environment_id=ctx.environment_id,
            segment_id=segment_id,
            name=input.name,
            description=input.description,
            user_filter=wanted,
        )
    except UsertrailError as error:
        return _error(error)
    return SegmentPayload(segment=Segment.from_row(row), errors=[])


async def delete_segment(info: Info, id: strawberry.ID) -> DeletePayload:
    ctx = info.context
    try:
        await segments.delete(ctx.db, environment_id=ctx.environment_id, segment_id=_segment_id(id))
    except UsertrailError as error:
        return DeletePayload(deleted_id=None, errors=[UserError.from_problem(error.problem)])
    return DeletePayload(deleted_id=id, errors=[])


def _segment_id(value: strawberry.ID) -> int:
    from graphql import GraphQLError

    from services.errors import NotFound

    try:
        found = node_id(value, "Segment", "id")
    except GraphQLError:
        found = None
    if found is None:
        raise NotFound("no such segment", field="id", code="UNKNOWN_SEGMENT")
    return found
