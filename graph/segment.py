"""The Segment type: a saved UserFilter (DYNAMIC) or a fixed list of users (STATIC)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.scalars import JSON

from graph.common import Node, UserError
from graph.enums import SegmentKind
from graph.filters import UserFilter
from graph.named_segments import filter_compiler, request_budget, segment_filters
from services import filters, ids, listing, segment_members
from services.clock import to_datetime

if TYPE_CHECKING:
    from graph.context import Context


def public_filter(document: Any) -> Any:
    """The saved filter with definition and segment ids as global ids."""
    if isinstance(document, list):
        return [public_filter(item) for item in document]
    if not isinstance(document, dict):
        return document
    shown = {}
    for key, value in document.items():
        if key == "definitionId" and value is not None:
            shown[key] = ids.encode("EventDefinition", value)
        elif key == "segmentId" and value is not None:
            shown[key] = ids.encode("Segment", value)
        else:
            shown[key] = public_filter(value)
    return shown


@strawberry.type(
    description="A saved, named UserFilter (DYNAMIC), or a fixed list of users (STATIC)."
)
class Segment(Node):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id.")
    name: str = strawberry.field(description="Name, unique in the environment.")
    description: str | None = strawberry.field(description="What the segment is for.")
    kind: SegmentKind = strawberry.field(
        description="DYNAMIC: whoever its filter selects when asked; STATIC: the users it lists."
    )
    filter: JSON = strawberry.field(description="The UserFilter as saved ({} when STATIC).")
    created_at: datetime = strawberry.field(description="When it was created.")

    @classmethod
    def from_row(cls, row: Any) -> Segment:
        return cls(
            row=row,
            id=strawberry.ID(ids.encode("Segment", row.id)),
            name=row.name,
            description=row.description,
            kind=SegmentKind(row.kind),
            filter=public_filter(row.filter),
            created_at=to_datetime(row.created_us),
        )

    @strawberry.field(
        description="STATIC: how many users it lists (whenever they were last seen); "
        "null for a DYNAMIC segment (see userCount)."
    )
    async def member_count(self, info: strawberry.Info[Context]) -> int | None:
        if self.kind is not SegmentKind.STATIC:
            return None
        ctx = info.context
        async with ctx.db.read() as conn:
            return await segment_members.count(
                conn, environment_id=ctx.environment_id, segment_id=self.row.id
            )

    @strawberry.field(
        description="Members now: DYNAMIC, its filter's (seen range default 7 days); "
        "STATIC, every user it lists."
    )
    async def user_count(self, info: strawberry.Info[Context]) -> int:
        ctx = info.context
        # A filter holding only the segment, with no seen range of its own beside the segment's.
        only = filters.UserFilter(segment_id=self.row.id)
        async with ctx.db.read() as conn:
            named = await segment_filters(
                conn, ctx.environment_id, only, budget=request_budget(ctx)
            )
        conditions = filter_compiler(ctx.loaders, named).users(only, default_seen=None)
        async with ctx.db.read() as conn:
            return await listing.count(
                conn, listing.U, [listing.U.c.environment_id == ctx.environment_id, *conditions]
            )


@strawberry.input(description="A segment to save.")
class SegmentInput:
    name: str = strawberry.field(description="Name, unique in the environment.")
    description: str | None = strawberry.field(default=None, description="What it is for.")
    filter: UserFilter = strawberry.field(
        description="Who belongs to it ({} for a STATIC segment, whose list changes through "
        "addSegmentMembers / removeSegmentMembers)."
    )


@strawberry.input(
    description="A STATIC segment to make: the users `filter` selects now and those `userIds` "
    "name (one or both; a user named twice is listed once)."
)
class StaticSegmentInput:
    name: str = strawberry.field(description="Name, unique in the environment.")
    description: str | None = strawberry.field(default=None, description="What it is for.")
    filter: UserFilter | None = strawberry.field(
        default=None,
        description="List its members now: a snapshot, which later data does not change (its "
        "seen range defaults to 7 days, as a dynamic segment's).",
    )
    user_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Users to list, by User id or userId (at most 1000)."
    )


@strawberry.type(
    description="Result of createSegment / createStaticSegment / updateSegment and of adding "
    "or removing a static segment's members."
)
class SegmentPayload:
    segment: Segment | None = strawberry.field(description="The saved segment.")
    errors: list[UserError] = strawberry.field(description="Why nothing was saved, if so.")
