"""Filter arguments to validated service filters; invalid ones become errors naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError

from graph import filters as inputs
from graph.scalars import unreadable_time_refusal
from services import filters, ids
from services.clock import UnreadableTime, to_micros
from services.conditions import PropertyCondition
from services.errors import UsertrailError
from services.matching import StringMatch
from services.session_shape import Bounds, SessionShape

T = TypeVar("T")


def bad_input(error: UsertrailError) -> GraphQLError:
    """A GraphQL error carrying the service error's field and code."""
    return GraphQLError(
        f"{error.field}: {error.message}" if error.field else error.message,
        extensions={"code": error.code, "field": error.field},
    )


def checked(build: Callable[[], T]) -> T:
    """Run a conversion, turning service validation errors into GraphQL errors."""
    try:
        return build()
    except UsertrailError as error:
        raise bad_input(error) from None


def node_id(value: strawberry.ID | None, kind: str, field: str) -> int | None:
    """The number inside a global id of `kind`, or a GraphQL error naming `field`."""
    if value is None:
        return None
    decoded = ids.decode(str(value), kind)
    if decoded is None or len(decoded[1]) != 1:
        raise GraphQLError(
            f"{field}: not an id of a {kind}", extensions={"code": "INVALID_FILTER", "field": field}
        )
    return decoded[1][0]


def time_range(value: inputs.TimeRange | None, field: str = "time") -> filters.TimeRange | None:
    """The service's time range; an unreadable `from`/`to` is a GraphQL error naming it.

    graph/input_conversion.py refuses those while it builds the input (fast paths on); this
    check is the one Strawberry's own conversion (USERTRAIL_FAST_PATHS=0) reaches."""
    if value is None:
        return None
    for name, sent in (("from", value.from_), ("to", value.to)):
        if isinstance(sent, UnreadableTime):
            raise unreadable_time_refusal(sent.sent, f"{field}.{name}")
    return filters.TimeRange(
        last_days=value.last_days,
        from_us=to_micros(value.from_) if value.from_ is not None else None,
        to_us=to_micros(value.to) if value.to is not None else None,
    )


def conditions(values: list[inputs.PropertyCondition] | None) -> tuple[PropertyCondition, ...]:
    return tuple(PropertyCondition(c.property, c.op.value, c.value) for c in values or [])


def event_match(value: inputs.EventMatch | None, field: str) -> filters.EventMatch | None:
    if value is None:
        return None
    return filters.EventMatch(
        definition_id=node_id(value.definition_id, "EventDefinition", f"{field}.definitionId"),
        type=value.type,
        where=conditions(value.where),
    )


def user_filter(value: inputs.UserFilter | None, field: str = "filter") -> filters.UserFilter:
    if value is None:
        return filters.UserFilter()
    return filters.UserFilter(
        seen=time_range(value.seen, f"{field}.seen"),
        properties=conditions(value.properties),
        events=tuple(
            filters.EventCondition(
                event=event_match(c.event, f"{field}.events[{i}].event"),  # type: ignore[arg-type]
                did=c.did if c.did is not None else True,
                at_least=c.at_least if c.at_least is not None else 1,
                time=time_range(c.time, f"{field}.events[{i}].time"),
            )
            for i, c in enumerate(value.events or [])
        ),
        any_of=tuple(
            user_filter(f, f"{field}.anyOf[{i}]") for i, f in enumerate(value.any_of or [])
        ),
        segment_id=node_id(value.segment_id, "Segment", f"{field}.segmentId"),
    )


def session_filter(value: inputs.SessionFilter | None) -> filters.SessionFilter:
    if value is None:
        return filters.SessionFilter()
    return filters.SessionFilter(
        time=time_range(value.time, "filter.time"),
        event=event_match(value.event, "filter.event"),
        user_id=None,
        identity=value.identity,
        user_properties=conditions(value.user_properties),
        sources=tuple(s.value for s in value.sources or []),
        include_server_only=bool(value.include_server_only),
        shape=session_shape(value),
    )


def user_session_filter(value: inputs.UserSessionFilter | None) -> filters.UserSessionFilter | None:
    if value is None:
        return None
    return filters.UserSessionFilter(
        time=time_range(value.time, "filter.time"),
        event=event_match(value.event, "filter.event"),
        sources=tuple(s.value for s in value.sources or []),
        shape=session_shape(value),
    )


def session_shape(value: inputs.SessionFilter | inputs.UserSessionFilter) -> SessionShape:
    """The conditions on a session's entry/exit page, duration and page views."""

    def match(given: Any) -> StringMatch | None:
        return None if given is None else StringMatch(given.op.value, given.value)

    def bounds(given: inputs.IntRange | None) -> Bounds | None:
        return None if given is None else Bounds(given.at_least, given.at_most)

    return SessionShape(
        entry_page=match(value.entry_page),
        exit_page=match(value.exit_page),
        duration=bounds(value.duration),
        pageviews=bounds(value.pageviews),
    )
