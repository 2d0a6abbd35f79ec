"""The segments a user filter names: loaded and size-checked first, then handed to a compiler.

Compiling inlines each named segment's filter, and compiling is synchronous, so the saved
filters are read before anything compiles and given to the compiler it builds
(`filter_compiler`): a compiler never learns about segments after it was made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from graph.arguments import bad_input
from services import segments
from services.errors import UsertrailError
from services.filter_size import RequestBudget, expanded_size, within_limits
from services.filters import Compiler, UserFilter

if TYPE_CHECKING:
    from graph.context import Context
    from graph.loaders import Loaders

BUDGET = "filter_budget"  # the request's RequestBudget, in Context.extras


def request_budget(context: Context) -> RequestBudget:
    """The filter conditions this request has compiled so far."""
    budget = context.extras.get(BUDGET)
    if budget is None:
        budget = context.extras[BUDGET] = RequestBudget()
    return budget  # type: ignore[no-any-return]


async def segment_filters(
    conn: AsyncConnection,
    environment_id: int,
    wanted: UserFilter,
    *,
    budget: RequestBudget | None = None,
) -> dict[int, UserFilter]:
    """The filters of the segments `wanted` names, by segment id.

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
    return found


def filter_compiler(
    loaders: Loaders, named: Mapping[int, UserFilter], *, now_us: int | None = None
) -> Compiler:
    """The request's filter compiler, holding the `named` segments (and another moment)."""
    compiler = loaders.compiler()
    return replace(
        compiler,
        segments=dict(named),
        now_us=now_us if now_us is not None else compiler.now_us,
    )
