"""Segment queries and mutations; segment ids in filters are resolved before compiling."""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.arguments import bad_input, node_id, user_filter
from graph.common import UserError
from graph.context import Context
from graph.payloads import DeletePayload
from graph.segment import Segment, SegmentInput, SegmentPayload
from services import listing, segments
from services.errors import UsertrailError
from services.filter_size import RequestBudget, expanded_size, within_limits
from services.filters import Compiler, UserFilter

Info = strawberry.Info[Context]
BUDGET = "filter_budget"  # the request's RequestBudget, in Context.extras


def request_budget(context: Context) -> RequestBudget:
    """The filter conditions this request has compiled so far."""
    budget = context.extras.get(BUDGET)
    if budget is None:
        budget = context.extras[BUDGET] = RequestBudget()
    return budget  # type: ignore[no-any-return]


async def load_segments(
    conn: AsyncConnection,
    environment_id: int,
    wanted: UserFilter,
    compiler: Compiler,
    *,
    budget: RequestBudget | None = None,
) -> None:
    """Give `compiler` the filters of the segments `wanted` names.

    A GraphQL error when one is unknown, or when `wanted` with them inlined passes the size
    limits, or the request's `budget` (FILTER_TOO_COMPLEX): checked before anything compiles,
    since compiling inlines.
    """
    try:
        found = await segments.resolve_filters(
            conn, environment_id=environment_id, user_filter=wanted
        )
        size = expanded_size(wanted, found)
        within_limits(size, "filter")
        if budget is not None:
            budget.spend(size, "filter")
    except UsertrailError as error:
        raise bad_input(error) from None
    compiler.segments = found


async def compiled_users(
    info: Info, wanted: UserFilter, compiler: Compiler, *, default_seen: bool = True
) -> list[Any]:
    """Conditions on users for `wanted`, after loading the segments it names."""
    async with info.context.db.read() as conn:
        budget = request_budget(info.context)
        await load_segments(conn, info.context.environment_id, wanted, compiler, budget=budget)
    if default_seen:
        return compiler.users(wanted)
    return compiler.users(wanted, default_seen=None)


async def member_count(info: Info, segment_id: int) -> int:
    ctx = info.context
    compiler = ctx.loaders.compiler()
    # A filter holding only the segment, with no seen range of its own beside the segment's.
    only = UserFilter(segment_id=segment_id)
    conditions = await compiled_users(info, only, compiler, default_seen=False)
    async with ctx.db.read() as conn:
        return await listing.count(
            conn, listing.U, [listing.U.c.environment_id == ctx.environment_id, *conditions]
        )


async def list_segments(info: Info) -> list[Segment]:
    async with info.context.db.read() as conn:
        rows = await segments.list_(conn, environment_id=info.context.environment_id)
    return [Segment.from_row(row) for row in rows]


def _error(error: UsertrailError) -> SegmentPayload:
    return SegmentPayload(segment=None, errors=[UserError.from_problem(error.problem)])


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
