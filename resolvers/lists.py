"""The Users and Sessions pages and event names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncConnection

from graph import filters as inputs
from graph import ordering
from graph.arguments import checked, session_filter, time_range, user_filter
from graph.context import Context
from graph.named_segments import filter_compiler, request_budget, segment_filters
from graph.pagination import cut, deferred, first_argument, given, last_argument, page_info, window
from graph.payloads import EventName
from graph.session import Session, SessionConnection, SessionEdge
from graph.user import User, UserConnection, UserEdge
from services import identity, limits, listing, user_order
from services.errors import UsertrailError
from services.identity import UserKey
from services.listing import UsersCursor
from services.user_order import OrderCursor

Info = strawberry.Info[Context]
MAX_PAGE = 100


async def users(
    info: Info,
    filter: inputs.UserFilter | None = None,
    order_by: Annotated[
        ordering.UserOrder | None,
        strawberry.argument(description="The order (default: last seen, newest first)."),
    ] = None,
    first: Annotated[int | None, first_argument(MAX_PAGE)] = 50,
    after: str | None = None,
    last: Annotated[int | None, last_argument("users", MAX_PAGE)] = None,
    before: str | None = None,
) -> UserConnection:
    """Users newest activity first (or in `orderBy`), keyset-paginated, as of the first
    page's moment."""
    order = checked(lambda: ordering.service_order(order_by).checked())
    kind = ordering.kind(order)
    asked = window(
        first,
        after,
        last,
        before,
        kind=kind,
        default=50,
        maximum=MAX_PAGE,
        size=3,
        first_given=lambda: given(info, "first"),
        read=ordering.reader(order),
    )
    wanted = checked(lambda: user_filter(filter).checked())
    ctx = info.context
    by_last_seen = order.field == "LAST_SEEN"
    if by_last_seen:
        position: Any = UsersCursor(*asked.cursor) if asked.cursor is not None else None
    else:
        position = OrderCursor(*asked.cursor) if asked.cursor is not None else None
        if order.field != "PROPERTY" and position is not None:
            position = OrderCursor((position.key,), position.user_id, position.snapshot_us)
        if position is not None and user_order.expired(position, ctx.loaders.now_us):
            argument = "before" if asked.backward else "after"
            raise GraphQLError(
                f"`{argument}` is a cursor of a listing begun over a day ago: start again "
                "from the first page",
                extensions={"code": "BAD_USER_INPUT", "field": argument},
            )

    async def page(conn: AsyncConnection, environment_id: int) -> tuple[list[Any], list[Any]]:
        named = await segment_filters(conn, environment_id, wanted, budget=request_budget(ctx))
        # A later page compiles as of the first page's moment, kept in its cursor.
        at_us = position.snapshot_us if position is not None else None
        compiler = filter_compiler(ctx.loaders, named, now_us=at_us)
        conditions = compiler.users(wanted)
        if not by_last_seen:
            found = await user_order.users_page(
                conn,
                environment_id=environment_id,
                conditions=conditions,
                order=order,
                limit=asked.limit,
                after=position,
                now_us=compiler.now_us,
                backward=asked.backward,
            )
            return found, conditions
        # Event conditions probed user by user too: a page scans few users when many match.
        per_user = compiler.users(wanted, per_user=True) if compiler.names_events(wanted) else None
        listed = await listing.users_page(
            conn,
            environment_id=environment_id,
            conditions=conditions,
            limit=asked.limit,
            after=position,
            now_us=compiler.now_us,
            per_user=per_user,
            # Oldest activity first is the default list read the other way.
            backward=asked.backward != (order.direction == "ASC"),
        )
        return listed, conditions

    listed, conditions = await ctx.loaders.read(page)
    encode = None
    if order.field == "PROPERTY":
        encode = lambda item: ordering.encode_property(order, item.cursor)  # noqa: E731
    shown, page_bounds = cut(listed, asked, kind, _users_key, encode)
    return UserConnection(
        edges=[UserEdge(node=User.from_row(item.row), cursor=cursor) for item, cursor in shown],
        page_info=page_bounds,
        total_count=deferred(_counter(ctx, listing.U, conditions)),
    )


def _users_key(item: listing.ListedUser | user_order.OrderedUser) -> tuple[int, int, int]:
    """A users cursor: the position as of the snapshot, and the snapshot."""
    at = item.cursor
    if isinstance(at, UsersCursor):
        return at.last_seen_us, at.user_id, at.snapshot_us
    return at.key[0], at.user_id, at.snapshot_us


def _counter(ctx: Context, table: Any, conditions: list[Any]) -> Callable[[], Awaitable[int]]:
    """The count of a page's whole list, for `deferred`: counting every match is the costliest
    part of a page, so it runs only when totalCount is selected."""

    async def count(conn: AsyncConnection, environment_id: int) -> int:
        where = [table.c.environment_id == environment_id, *conditions]
        return await listing.count(conn, table, where)

    return lambda: ctx.loaders.read(count)


async def named_user(
    info: Info, user_id: str | None, identity_value: str | None, *, prefix: str = ""
) -> int | None:
    """The user a userId or identity routes to in this environment (None: nobody).

    An id that cannot be one (not numeric, unstorable text) is a GraphQL error naming
    `prefix` + the argument.
    """
    try:
        key = (
            UserKey("user_id", str(limits.user_id(user_id)))
            if user_id is not None
            else UserKey("identity", limits.storable(str(identity_value), "identity"))
        )
    except UsertrailError as error:
        field = f"{prefix}{error.field}"
        raise GraphQLError(
            f"{field}: {error.message}", extensions={"code": error.code, "field": field}
        ) from None
    async with info.context.db.read() as conn:
        return await identity.resolve_existing(
            conn, environment_id=info.context.environment_id, key=key
        )


async def sessions(
    info: Info,
    filter: inputs.SessionFilter | None = None,
    first: Annotated[int | None, first_argument(MAX_PAGE)] = 50,
    after: str | None = None,
    last: Annotated[int | None, last_argument("sessions", MAX_PAGE)] = None,
    before: str | None = None,
) -> SessionConnection:
    """The Sessions page: newest first, with the documented origin rules."""
    asked = window(
        first,
        after,
        last,
        before,
        kind="sp",
        default=50,
        maximum=MAX_PAGE,
        size=3,
        first_given=lambda: given(info, "first"),
    )
    wanted = checked(lambda: session_filter(filter).checked())
    ctx = info.context
    checked(lambda: request_budget(ctx).spend(wanted.size(), "filter"))
    named = filter is not None and (filter.user_id is not None or filter.identity is not None)
    user_id = (
        await named_user(info, filter.user_id, filter.identity, prefix="filter.") if named else None
    )
    if named and user_id is None:
        return SessionConnection(edges=[], page_info=page_info(), total_count=0)
    conditions = ctx.loaders.compiler().sessions(wanted, user_id=user_id)

    async def page(conn: AsyncConnection, environment_id: int) -> list[Any]:
        return await listing.sessions_page(
            conn,
            environment_id=environment_id,
            conditions=conditions,
            limit=asked.limit,
            cursor=asked.cursor,
            backward=asked.backward,
        )

    rows = await ctx.loaders.read(page)
    shown, page_bounds = cut(rows, asked, "sp", lambda row: (row.start_us, row.user_id, row.id))
    return SessionConnection(
        edges=[SessionEdge(node=Session.from_row(row), cursor=cursor) for row, cursor in shown],
        page_info=page_bounds,
        total_count=deferred(_counter(ctx, listing.S, conditions)),
    )


async def event_names(info: Info, time: inputs.TimeRange | None = None) -> list[EventName]:
    """Every raw event type seen (in the range), server-side ones marked."""
    ctx = info.context
    span = checked(lambda: time_range(time))
    if span is not None:
        checked(lambda: span.checked("time"))
    low, high = span.bounds(ctx.loaders.now_us) if span is not None else (None, None)
    async with ctx.db.read() as conn:
        found = await listing.event_names(
            conn, environment_id=ctx.environment_id, low=low, high=high
        )
    return [EventName(type=kind, server_side=server, count=n) for kind, server, n in found]
