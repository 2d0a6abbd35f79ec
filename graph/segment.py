"""The Segment type: a saved UserFilter."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.scalars import JSON

from graph.common import Node, UserError
from graph.filters import UserFilter
from graph.named_segments import filter_compiler, request_budget, segment_filters
from services import filters, ids, listing
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


@strawberry.type(description="A saved, named UserFilter (behaviour and user-property conditions).")
class Segment(Node):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id.")
    name: str = strawberry.field(description="Name, unique in the environment.")
    description: str | None = strawberry.field(description="What the segment is for.")
    filter: JSON = strawberry.field(description="The UserFilter as saved.")
    created_at: datetime = strawberry.field(description="When it was created.")

    @classmethod
    def from_row(cls, row: Any) -> Segment:
        return cls(
            row=row,
            id=strawberry.ID(ids.encode("Segment", row.id)),
            name=row.name,
            description=row.description,
            filter=public_filter(row.filter),
            created_at=to_datetime(row.created_us),
        )

    @strawberry.field(description="Members now (its filter's seen range, default 7 days).")
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
    filter: UserFilter = strawberry.field(description="Who belongs to it.")


@strawberry.type(description="Result of createSegment / updateSegment.")
class SegmentPayload:
    segment: Segment | None = strawberry.field(description="The saved segment.")
    errors: list[UserError] = strawberry.field(description="Why nothing was saved, if so.")
